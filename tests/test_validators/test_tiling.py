"""TIL001: a tile with the declared halo equals the whole image; a too-small halo is reported with the one needed.
Also zoo.bioimage.halo's generalisation (per-axis halos, an output layout, a given image)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_rdf, save_rdf
from tests.test_validators import runtime_packages as rp
from zoo.bioimage.halo import centre_tile_difference, measure_halo


def box_filter(layout: str, radius: int):
    """A model that averages (2·radius+1) px along every spatial axis with zero padding: it needs `radius`."""

    def predict(image: np.ndarray) -> np.ndarray:
        out = image.astype(np.float64)
        for axis, letter in enumerate(layout):
            if letter in "zyx":
                padded = np.pad(out, [(radius, radius) if i == axis else (0, 0) for i in range(out.ndim)])
                out = sum(np.take(padded, range(k, k + out.shape[axis]), axis=axis) for k in range(2 * radius + 1))
        return out.astype(np.float32)

    return predict


def test_centre_tile_difference_takes_halos_per_axis_and_an_output_layout():
    image = np.random.default_rng(0).standard_normal((1, 1, 64, 64)).astype(np.float32)
    predict = box_filter("bcyx", 3)
    whole = predict(image)
    assert centre_tile_difference(predict, image, whole, "bcyx", 4, 16, 4) == 0.0
    assert centre_tile_difference(predict, image, whole, "bcyx", {"y": 4, "x": 0}, 16, 4) > 0.1

    def transposed(tile):  # the same model answering in (b, x, y, c) order
        return predict(tile).transpose(0, 3, 2, 1)

    assert (
        centre_tile_difference(
            transposed,
            image,
            whole.transpose(0, 3, 2, 1),
            "bcyx",
            {"y": 4, "x": 4},
            {"y": 16, "x": 8},
            {"y": 4, "x": 4},
            output_layout="bxyc",
        )
        == 0.0
    )


def test_measure_halo_on_a_given_image_starts_where_asked():
    image = np.random.default_rng(1).standard_normal((1, 1, 24, 48, 48)).astype(np.float32)
    predict = box_filter("bczyx", 5)
    whole = predict(image)
    measured = measure_halo(
        predict, "bczyx", 2, 8, image=image, whole=whole, core={"z": 2, "y": 8, "x": 8}, first_halo=4
    )
    assert measured.halo == 6 and measured.checked == [4, 6] and measured.max_abs == 0.0
    assert measured.max_abs_below > 0.1


def test_measure_halo_keeps_its_original_call():
    measured = measure_halo(box_filter("bcyx", 3), "bcyx", 2, 8)
    assert measured.halo == 4 and measured.checked == [2, 4]


@pytest.mark.slow
def test_declared_halo_that_covers_the_model_passes(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(3), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=3)
    )
    [finding] = rp.run_rules(folder, ("TIL001",))["TIL001"]
    assert finding.status == "passed" and finding.details["max_abs"] <= finding.details["tolerance"]


@pytest.mark.slow
def test_too_small_halo_fails_with_the_halo_needed(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(3), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=1)
    )
    [finding] = rp.run_rules(folder, ("TIL001",))["TIL001"]
    assert finding.status == "failed"
    assert finding.details["declared_halo"] == {"y": 1, "x": 1}
    assert finding.details["needed_halo"] == 3 and finding.details["needed_max_abs"] == 0.0
    assert "a halo of 3 on y, x is needed" in finding.message


@pytest.mark.slow
def test_tiny_unet_declared_halo_tiles_exactly_and_a_smaller_one_does_not(package_folder):
    folder = rp.only_weights(package_folder(), "onnx")
    [good] = rp.run_rules(folder, ("TIL001",))["TIL001"]
    assert good.status == "passed", good.message
    rdf = load_rdf(folder)
    declared = next(axis["halo"] for axis in rdf["outputs"][0]["axes"] if "halo" in axis)
    for axis in rdf["outputs"][0]["axes"]:
        if "halo" in axis:
            axis["halo"] = 4
    save_rdf(folder, rdf)
    [bad] = rp.run_rules(folder, ("TIL001",))["TIL001"]
    assert bad.status == "failed"
    assert 4 < bad.details["needed_halo"] <= declared
    assert bad.details["needed_max_abs"] <= bad.details["tolerance"] < bad.details["max_abs"]


@pytest.mark.slow
def test_classifier_and_fixed_size_models_are_skipped_with_the_reason(tmp_path):
    classes = [{"type": "batch"}, {"type": "channel", "channel_names": ["a", "b", "c"]}]
    classifier = rp.write_package(
        tmp_path / "c", rp.classifier_model(), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), classes
    )
    [skipped] = rp.run_rules(classifier, ("TIL001",))["TIL001"]
    assert skipped.status == "skipped" and "no spatial axis follows the input" in skipped.message
    fixed = rp.write_package(
        tmp_path / "f", rp.conv_stack(2), rp.blob_image((1, 1, 24, 24)), rp.image_axes(size=24), rp.output_axes(halo=2)
    )
    [skipped] = rp.run_rules(fixed, ("TIL001",))["TIL001"]
    assert skipped.status == "skipped" and "no spatial axis of parameterized size" in skipped.message


@pytest.mark.slow
def test_3d_model_is_tiled_along_z_y_x(tmp_path):
    folder = rp.write_package(
        tmp_path / "p",
        rp.conv_stack(2, dims=3),
        rp.blob_image((1, 1, 12, 16, 16)),
        rp.image_axes("zyx", {"min": 8, "step": 1}),
        rp.output_axes("zyx", halo=1),
    )
    [finding] = rp.run_rules(folder, ("TIL001",))["TIL001"]
    assert finding.status == "failed"  # two 3×3×3 convolutions need 2 on every axis
    assert finding.details["declared_halo"] == {"z": 1, "y": 1, "x": 1} and finding.details["needed_halo"] == 2
