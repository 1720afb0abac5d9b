"""SIZ001–SIZ003: other valid sizes and a batch of two, shapes and values; classifiers and 3D models handled."""

from __future__ import annotations

import pytest

from tests.conftest import load_rdf, save_rdf
from tests.test_validators import runtime_packages as rp

SIZE_RULES = ("SIZ001", "SIZ002", "SIZ003")


@pytest.fixture
def tiny_onnx(package_folder):
    """The session's tiny U-Net package with its ONNX weights only (fast to load, no TF)."""
    return rp.only_weights(package_folder(), "onnx")


def set_output_halo(folder, halo: int):
    rdf = load_rdf(folder)
    for axis in rdf["outputs"][0]["axes"]:
        if "halo" in axis:
            axis["halo"] = halo
    save_rdf(folder, rdf)
    return folder


def test_tiny_unet_passes_every_size_rule(tiny_onnx):
    found = rp.run_rules(tiny_onnx, SIZE_RULES)
    assert {rule_id: rp.statuses(f) for rule_id, f in found.items()} == {rule_id: {"passed"} for rule_id in SIZE_RULES}
    [shapes] = found["SIZ001"]
    assert shapes.details["cases"] == ["test input", "n=2", "n=1", "n=0", "n=0, batch 2"]
    [values] = found["SIZ002"]
    declared = {axis["id"]: axis["halo"] for axis in load_rdf(tiny_onnx)["outputs"][0]["axes"] if "halo" in axis}
    assert values.details["halo"] == declared and values.details["mismatched"] == 0
    [batch] = found["SIZ003"]
    assert batch.details["max_abs"] <= 1e-5


@pytest.mark.slow
def test_output_size_offset_the_model_does_not_give_fails_shapes(tmp_path):
    folder = rp.write_package(
        tmp_path / "p",
        rp.conv_stack(2),
        rp.blob_image((1, 1, 24, 24)),
        rp.image_axes(),
        rp.output_axes(halo=2, offset=2),
    )
    failed = [f for f in rp.run_rules(folder, ("SIZ001",))["SIZ001"] if f.status == "failed"]
    assert {f.details["case"] for f in failed} == {"test input", "n=0", "n=1", "n=2", "n=0, batch 2"}
    at_n0 = next(f for f in failed if f.details["case"] == "n=0")
    assert at_n0.details["shape"] == [1, 1, 16, 16] and at_n0.details["expected"] == "1×1×18×18"


def test_halo_smaller_than_the_border_effects_fails_values(tiny_onnx):
    [finding] = rp.run_rules(set_output_halo(tiny_onnx, 2), ("SIZ002",))["SIZ002"]
    assert finding.status == "failed"
    assert finding.details["halo"] == {"y": 2, "x": 2}
    assert finding.details["max_abs"] > finding.details["atol"] and finding.details["mismatched"] > 0


@pytest.mark.slow
def test_output_depending_on_the_whole_input_fails_values(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.global_mean_model(), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=1)
    )
    [finding] = rp.run_rules(folder, ("SIZ002",))["SIZ002"]
    assert finding.status == "failed" and finding.details["ppm"] > 1e5


@pytest.mark.slow
def test_output_without_halo_is_not_compared_but_measured(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(3), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=None)
    )
    [finding] = rp.run_rules(folder, ("SIZ002",))["SIZ002"]
    assert finding.status == "skipped"
    assert finding.details["undeclared"] == ["y", "x"] and finding.details["max_abs"] > 1e-3


@pytest.mark.slow
def test_batch_entries_that_see_each_other_fail_batch(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.batch_seam_model(), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=1)
    )
    found = rp.run_rules(folder, SIZE_RULES)
    assert rp.statuses(found["SIZ001"]) == {"passed"} and rp.statuses(found["SIZ002"]) == {"passed"}
    [finding] = found["SIZ003"]
    assert finding.status == "failed"
    assert finding.details["max_abs"] > 1e-2 and finding.details["mismatched"] == 16  # one seam row of 16 px


@pytest.mark.slow
def test_fixed_batch_skips_batch_rule_with_the_reason(tmp_path):
    axes = rp.image_axes()
    axes[0]["size"] = 1
    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(2), rp.blob_image((1, 1, 24, 24)), axes, rp.output_axes(halo=2)
    )
    found = rp.run_rules(folder, SIZE_RULES)
    [batch] = found["SIZ003"]
    assert batch.status == "skipped" and "inputs[raw] fix the batch to 1" in batch.message
    [shapes] = found["SIZ001"]
    assert shapes.details["cases"] == ["test input", "n=2", "n=1", "n=0"]


@pytest.mark.slow
def test_fixed_sizes_use_the_test_input_only(tmp_path):
    axes = rp.image_axes(size=24)
    axes[0]["size"] = 1
    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(2), rp.blob_image((1, 1, 24, 24)), axes, rp.output_axes(halo=2)
    )
    found = rp.run_rules(folder, SIZE_RULES)
    assert found["SIZ001"][0].details["cases"] == ["test input"] and found["SIZ001"][0].status == "passed"
    assert [f.status for f in found["SIZ002"]] == ["skipped"] and "input sizes are fixed" in found["SIZ002"][0].message


@pytest.mark.slow
def test_classifier_outputs_are_checked_for_shape_and_batch_not_values(tmp_path):
    classes = [{"type": "batch"}, {"type": "channel", "channel_names": ["a", "b", "c"]}]
    folder = rp.write_package(
        tmp_path / "p", rp.classifier_model(), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), classes
    )
    found = rp.run_rules(folder, SIZE_RULES)
    assert rp.statuses(found["SIZ001"]) == {"passed"} and rp.statuses(found["SIZ003"]) == {"passed"}
    [values] = found["SIZ002"]
    assert values.status == "skipped" and "no axis follows the input size" in values.message


@pytest.mark.slow
def test_3d_model_passes_every_size_rule(tmp_path):
    folder = rp.write_package(
        tmp_path / "p",
        rp.conv_stack(2, dims=3),
        rp.blob_image((1, 1, 12, 16, 16)),
        rp.image_axes("zyx", {"min": 8, "step": 2}),
        rp.output_axes("zyx", halo=2),
    )
    found = rp.run_rules(folder, SIZE_RULES)
    assert {rule_id: rp.statuses(f) for rule_id, f in found.items()} == {rule_id: {"passed"} for rule_id in SIZE_RULES}
    assert found["SIZ002"][0].details["halo"] == {"z": 2, "y": 2, "x": 2}
