"""Predictions keep the input's pixel size, axes and ImageJ/OME metadata: ImageJ hyperstacks, OME-TIFF, plain
TIFFs with resolution tags and OME-Zarr in; the pixel size multiplied where the model rescales an axis, kept
where it crops; nothing invented where the input says nothing; tables of classifiers as they were."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tests.packages import batch, channel, space_in, space_out, write_package
from zoo import api
from zoo.inference.calibration import PixelSize
from zoo.inference.image_io import open_image, write_tiff

torch = pytest.importorskip("torch")

UM = 0.325  # µm per pixel along y and x
DZ = 2.0  # µm between slices


class Same(torch.nn.Module):
    def __init__(self, channels: int = 1):
        super().__init__()
        self.a = torch.nn.Conv2d(1, channels, 3, padding=1)

    def forward(self, x):
        return self.a(x)


class Up2(Same):
    def forward(self, x):
        return torch.nn.functional.interpolate(self.a(x), scale_factor=2.0, mode="nearest")


class Down2(Same):
    def forward(self, x):
        return torch.nn.functional.avg_pool2d(self.a(x), 2)


class Crop(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(1, 1, 5)

    def forward(self, x):
        return self.a(x)


class Same3d(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv3d(1, 1, 3, padding=1)

    def forward(self, x):
        return self.a(x)


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(1, 2)

    def forward(self, x):
        return torch.softmax(self.fc(x.mean(dim=(2, 3))), dim=1)


def yx(sizes, channels=("out",), **output):
    return (
        [batch(), channel("raw"), space_in("y", sizes), space_in("x", sizes)],
        [batch(), channel(*channels), space_out("y", **output), space_out("x", **output)],
    )


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """name -> package folder: 2D models of the input's size (one and two channels), 2× up and down, cropping
    by 4 px, a 3D model and a classifier."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("metadata-models")
    example = np.random.default_rng(0).normal(size=(1, 1, 16, 16)).astype(np.float32)
    cases = {
        "same": (Same(), *yx((8, 1))),
        "two": (Same(2), *yx((8, 1), channels=("a", "b"))),
        "up2": (Up2(), *yx((8, 1), scale=0.5)),
        "down2": (Down2(), *yx((8, 2), scale=2.0)),
        "crop": (Crop(), *yx((8, 1), offset=-4)),
        "classifier": (
            Classifier(),
            [batch(), channel("raw"), space_in("y", (8, 1)), space_in("x", (8, 1))],
            [batch(), channel("no", "yes")],
        ),
    }
    built = {
        name: write_package(root / name, module, example, inputs, outputs, trace=True, normalize=True)
        for name, (module, inputs, outputs) in cases.items()
    }
    volume = np.random.default_rng(0).normal(size=(1, 1, 8, 16, 16)).astype(np.float32)
    built["3d"] = write_package(
        root / "3d",
        Same3d(),
        volume,
        [batch(), channel("raw"), space_in("z", (4, 1)), space_in("y", (8, 1)), space_in("x", (8, 1))],
        [batch(), channel("out"), *(space_out(a) for a in "zyx")],
        trace=True,
        normalize=True,
    )
    return built


def image(shape, seed=1) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=shape) * 10 + 100).astype(np.float32)


def predict(package, path, out, **options):
    result = api.predict(package, [path], out, device="cpu", **options)
    assert result.exit_code == 0, result.items
    return result.items[0].outputs["out"]


def read_tiff(path) -> dict:
    """What a reader sees of a written TIFF: axes, ImageJ description, OME-XML pixel attributes, x/y pixel size."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        x, y = page.tags["XResolution"].value, page.tags["YResolution"].value
        pixels = {}
        if tif.is_ome:
            pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        return {
            "axes": tif.series[0].axes,
            "shape": tif.series[0].shape,
            "imagej": tif.imagej_metadata,
            "ome": pixels,
            "size": (x[1] / x[0], y[1] / y[0]),
            "resolution_unit": int(page.tags["ResolutionUnit"].value),
        }


def imagej_stack(path, data, axes, **metadata):
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / UM, 1 / UM),
        metadata={"axes": axes, "unit": "um", **metadata},
    )


# ----------------------------------------------------------------------------------------------- ImageJ in


def test_imagej_z_stack_through_a_2d_model_keeps_pixel_size_spacing_and_hyperstack_axes(packages, tmp_path):
    imagej_stack(tmp_path / "stack.tif", image((5, 40, 36)), "ZYX", spacing=DZ)
    written = read_tiff(predict(packages["same"], tmp_path / "stack.tif", tmp_path / "out"))
    assert written["imagej"] is not None and written["axes"] == "ZYX" and written["shape"] == (5, 40, 36)
    assert written["imagej"]["unit"] == "um" and written["imagej"]["spacing"] == pytest.approx(DZ)
    assert written["imagej"]["slices"] == 5 and written["imagej"]["hyperstack"] is True
    assert written["size"] == pytest.approx((UM, UM))


def test_imagej_z_stack_with_two_output_channels_is_a_zcyx_hyperstack(packages, tmp_path):
    imagej_stack(tmp_path / "stack.tif", image((5, 24, 20)), "ZYX", spacing=DZ)
    written = read_tiff(predict(packages["two"], tmp_path / "stack.tif", tmp_path / "out"))
    assert written["axes"] == "ZCYX" and written["shape"] == (5, 2, 24, 20)
    assert (written["imagej"]["channels"], written["imagej"]["slices"]) == (2, 5)
    assert written["imagej"]["spacing"] == pytest.approx(DZ) and written["size"] == pytest.approx((UM, UM))


def test_imagej_hyperstack_through_a_3d_model_keeps_the_voxel_size_and_frame_interval(packages, tmp_path):
    imagej_stack(tmp_path / "movie.tif", image((2, 6, 24, 20)), "TZYX", spacing=DZ, finterval=30.0)
    written = read_tiff(predict(packages["3d"], tmp_path / "movie.tif", tmp_path / "out", tile="4,16,16"))
    assert written["axes"] == "TZYX" and written["shape"] == (2, 6, 24, 20)
    assert written["imagej"]["spacing"] == pytest.approx(DZ) and written["imagej"]["finterval"] == pytest.approx(30)
    assert written["imagej"]["unit"] == "um" and written["size"] == pytest.approx((UM, UM))


# ------------------------------------------------------------------------------------------- OME, plain in


def test_ome_tiff_volume_keeps_its_physical_sizes(packages, tmp_path):
    metadata = {
        "axes": "ZYX",
        "PhysicalSizeX": UM,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": UM,
        "PhysicalSizeYUnit": "µm",
        "PhysicalSizeZ": DZ,
        "PhysicalSizeZUnit": "µm",
    }
    tifffile.imwrite(tmp_path / "vol.ome.tif", image((6, 24, 20)), ome=True, metadata=metadata)
    written = read_tiff(predict(packages["3d"], tmp_path / "vol.ome.tif", tmp_path / "out"))
    assert written["axes"] == "ZYX" and written["imagej"]["unit"] == "um"
    assert written["imagej"]["spacing"] == pytest.approx(DZ) and written["size"] == pytest.approx((UM, UM))
    assert (tmp_path / "out" / "vol_out.tif").exists()


def test_plain_tiff_resolution_tag_becomes_micrometres(packages, tmp_path):
    per_cm = 1e4 / UM
    tifffile.imwrite(tmp_path / "a.tif", image((40, 36)), resolution=(per_cm, per_cm), resolutionunit="CENTIMETER")
    written = read_tiff(predict(packages["same"], tmp_path / "a.tif", tmp_path / "out"))
    assert written["imagej"]["unit"] == "um" and written["size"] == pytest.approx((UM, UM))
    assert "spacing" not in written["imagej"]


def test_five_unnamed_pages_keep_their_axes_and_pixel_size(packages, tmp_path):
    """Pages of unknown meaning (tifffile's Q) have no ImageJ or OME name: tifffile's JSON description keeps them
    apart from z and t, with the pixel size; the resolution tags carry it for other readers."""
    tifffile.imwrite(tmp_path / "pages.tif", image((5, 30, 30)), resolution=(1 / UM, 1 / UM), resolutionunit=5)
    out = predict(packages["same"], tmp_path / "pages.tif", tmp_path / "out")
    written = read_tiff(out)
    assert written["axes"] == "QCYX" and written["shape"] == (5, 1, 30, 30)
    assert written["size"] == pytest.approx((UM * 1e-4, UM * 1e-4)) and written["resolution_unit"] == 3  # cm
    with tifffile.TiffFile(out) as tif:
        description = tif.shaped_metadata[0]
    assert description["PhysicalSizeX"] == pytest.approx(UM) and description["PhysicalSizeXUnit"] == "µm"
    assert open_image(out).calibration == {2: PixelSize(UM, "micrometer"), 3: PixelSize(UM, "micrometer")}


# ---------------------------------------------------------------------------------------- the scale rule


@pytest.mark.parametrize(
    "name,factor,shape", [("up2", 0.5, (48, 40)), ("down2", 2.0, (12, 10)), ("crop", 1.0, (20, 16))]
)
def test_rescaled_outputs_multiply_the_pixel_size_and_cropped_ones_keep_it(packages, tmp_path, name, factor, shape):
    imagej_stack(tmp_path / "stack.tif", image((3, 24, 20)), "ZYX", spacing=DZ)
    written = read_tiff(predict(packages[name], tmp_path / "stack.tif", tmp_path / "out"))
    assert written["shape"] == (3, *shape)
    assert written["size"] == pytest.approx((UM * factor, UM * factor))
    assert written["imagej"]["spacing"] == pytest.approx(DZ)  # z is the batch: not rescaled


def test_classifier_table_is_the_same_for_a_calibrated_input(packages, tmp_path):
    data = image((24, 20))
    tifffile.imwrite(tmp_path / "plain.tif", data)
    imagej_stack(tmp_path / "calibrated.tif", data, "YX")
    result = api.predict(
        packages["classifier"], [tmp_path / "plain.tif", tmp_path / "calibrated.tif"], tmp_path / "out", device="cpu"
    )
    assert result.exit_code == 0
    plain, calibrated = ((tmp_path / "out" / f"{s}_out.csv").read_text() for s in ("plain", "calibrated"))
    assert plain == calibrated and plain.startswith("no,yes\n")


# --------------------------------------------------------------------------------------------------- Zarr


def ome_zarr(path, data, scale, units=True):
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", shape=data.shape, chunks=(4, 16, 16)[-data.ndim :], dtype=data.dtype)[:] = data
    axes = [{"name": n, "type": "space", **({"unit": "micrometer"} if units else {})} for n in "zyx"[-data.ndim :]]
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
        }
    ]
    return path


def written_zarr(path) -> tuple[list, list]:
    import zarr

    multiscale = zarr.open_group(str(path), mode="r").attrs["multiscales"][0]
    scale = multiscale["datasets"][0]["coordinateTransformations"][0]["scale"]
    return [(a["name"], a.get("unit")) for a in multiscale["axes"]], scale


def test_ome_zarr_volume_streamed_tile_by_tile_keeps_its_scale_and_units(packages, tmp_path):
    source = ome_zarr(tmp_path / "vol.ome.zarr", image((8, 32, 32)), [DZ, UM, UM])
    out = predict(packages["3d"], source, tmp_path / "out", tile="4,16,16")
    assert out.name == "vol_out.zarr"
    axes, scale = written_zarr(out)
    assert axes == [("c", None), ("z", "micrometer"), ("y", "micrometer"), ("x", "micrometer")]
    assert scale == pytest.approx([1.0, DZ, UM, UM])
    assert open_image(out).calibration == {
        1: PixelSize(DZ, "micrometer"),
        2: PixelSize(UM, "micrometer"),
        3: PixelSize(UM, "micrometer"),
    }


def test_ome_zarr_into_a_downsampling_model_doubles_the_scale(packages, tmp_path):
    source = ome_zarr(tmp_path / "flat.ome.zarr", image((32, 48)), [UM, UM])
    axes, scale = written_zarr(predict(packages["down2"], source, tmp_path / "out", tile="16,16"))
    assert axes == [("c", None), ("y", "micrometer"), ("x", "micrometer")]
    assert scale == pytest.approx([1.0, 2 * UM, 2 * UM])


def test_array_inside_an_ome_zarr_takes_its_level_scale(packages, tmp_path):
    source = ome_zarr(tmp_path / "flat.ome.zarr", image((32, 48)), [UM, UM])
    assert open_image(source / "0").calibration == {0: PixelSize(UM, "micrometer"), 1: PixelSize(UM, "micrometer")}


# ------------------------------------------------------------------------------------------ nothing in, out


def test_inputs_without_metadata_get_no_invented_pixel_size(packages, tmp_path):
    import zarr

    tifffile.imwrite(tmp_path / "flat.tif", image((40, 36)))
    tifffile.imwrite(tmp_path / "pages.tif", image((5, 30, 30)))
    zarr.save_array(str(tmp_path / "plain.zarr"), image((32, 48)), zarr_format=2)
    ome_zarr(tmp_path / "unscaled.ome.zarr", image((32, 48)), [1.0, 1.0], units=False)
    for name in ("flat.tif", "pages.tif", "plain.zarr", "unscaled.ome.zarr"):
        assert open_image(tmp_path / name).calibration == {}
    flat = read_tiff(predict(packages["up2"], tmp_path / "flat.tif", tmp_path / "out"))
    assert flat["size"] == (1.0, 1.0) and flat["resolution_unit"] == 1  # tifffile's default tags
    assert not {"unit", "spacing", "finterval"} & set(flat["imagej"])
    pages = read_tiff(predict(packages["same"], tmp_path / "pages.tif", tmp_path / "out"))
    assert pages["axes"] == "QCYX" and pages["size"] == (1.0, 1.0) and pages["resolution_unit"] == 1
    with tifffile.TiffFile(tmp_path / "out" / "pages_out.tif") as tif:
        assert set(tif.shaped_metadata[0]) == {"shape", "axes"}
    for name in ("plain.zarr", "unscaled.ome.zarr"):
        axes, scale = written_zarr(predict(packages["down2"], tmp_path / name, tmp_path / "out"))
        assert all(unit is None for _, unit in axes) and scale == [1.0, 1.0, 1.0]


# ------------------------------------------------------------------------------------------------ writing


def test_dtype_imagej_cannot_hold_is_written_as_ome_tiff_with_physical_sizes(tmp_path):
    calibration = {"Z": PixelSize(DZ, "micrometer"), "Y": PixelSize(UM, "micrometer"), "X": PixelSize(UM, "micrometer")}
    write_tiff(tmp_path / "f64.tif", np.zeros((3, 2, 8, 8)), "ZCYX", calibration)
    written = read_tiff(tmp_path / "f64.tif")
    assert written["imagej"] is None and written["axes"] == "ZCYX"
    assert (written["ome"]["PhysicalSizeX"], written["ome"]["PhysicalSizeZ"]) == pytest.approx((UM, DZ))
    assert written["ome"]["PhysicalSizeZUnit"] == "µm"
    assert open_image(tmp_path / "f64.tif").calibration == {
        0: PixelSize(DZ, "micrometer"),
        2: PixelSize(UM, "micrometer"),
        3: PixelSize(UM, "micrometer"),
    }
    write_tiff(tmp_path / "i64.tif", np.zeros((3, 8, 8), np.int64), "ZYX", calibration)  # nor OME: shaped
    written = read_tiff(tmp_path / "i64.tif")
    assert written["axes"] == "ZYX" and written["size"] == pytest.approx((UM * 1e-4, UM * 1e-4))  # px/cm tags
    assert open_image(tmp_path / "i64.tif").calibration == {
        0: PixelSize(DZ, "micrometer"),
        1: PixelSize(UM, "micrometer"),
        2: PixelSize(UM, "micrometer"),
    }
