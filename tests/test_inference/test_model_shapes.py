"""Models whose outputs are not the input's size: cropped (SizeReference offset), scaled (axis scale), with a halo,
without spatial axes at all (a classifier: one CSV row per sample), and 3D models tiled in z, y and x. Each
package is built here from a tiny torch module (tests/test_inference/packages.py)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from tests.packages import batch, channel, space_in, space_out, write_package
from zoo import api
from zoo.errors import ImageError, InputError
from zoo.inference.model import load_model
from zoo.inference.planning import make_plan
from zoo.inference.predict import predict_arrays

torch = pytest.importorskip("torch")


def normalized(image: np.ndarray) -> np.ndarray:
    """What the packages' zero-mean unit-variance pre-processing makes of one sample."""
    return ((image - image.mean()) / (image.std() + 1e-6)).astype(np.float32)


def run_module(module, image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(normalized(image))).numpy()


class Crop(torch.nn.Module):
    """Two unpadded 3×3 convolutions: the output is 4 px shorter than the input along y and x (offset -4)."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(1, 4, 3)
        self.b = torch.nn.Conv2d(4, 1, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class Down2(torch.nn.Module):
    """Padded convolutions around a 2×2 average pool: half the input's size, a halo of 2 output pixels."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.b(torch.nn.functional.avg_pool2d(torch.relu(self.a(x)), 2))


class CropDown2(torch.nn.Module):
    """An unpadded convolution, then a 2×2 pool: (L − 2) / 2 = L / 2 − 1, scale 2 and offset -1, two channels."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(self.a(x), 2)


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.softmax(self.fc(torch.relu(self.a(x)).mean(dim=(2, 3))), dim=1)


class Net3d(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv3d(1, 4, 3, padding=1)
        self.b = torch.nn.Conv3d(4, 1, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.b(torch.relu(self.a(x))))


def yx(sizes, **output):
    return (
        [batch(), channel("raw"), space_in("y", sizes), space_in("x", sizes)],
        [batch(), channel(*output.pop("channels", ("out",))), space_out("y", **output), space_out("x", **output)],
    )


@pytest.fixture(scope="module")
def resized(tmp_path_factory):
    """name -> (package folder, module) for the cropping and scaling models."""
    torch.manual_seed(0)
    example = np.random.default_rng(0).normal(size=(1, 1, 40, 40)).astype(np.float32)
    root = tmp_path_factory.mktemp("resized")
    cases = {
        "crop": (Crop(), *yx((8, 1), offset=-4)),
        "down2": (Down2(), *yx((16, 2), scale=2.0, halo=2)),
        "cropdown2": (CropDown2(), *yx((8, 2), scale=2.0, offset=-1, channels=("a", "b"))),
    }
    return {
        name: (
            write_package(
                root / name,
                module,
                example,
                inputs,
                outputs,
                formats=("torchscript", "onnx"),
                trace=True,
                normalize=True,
            ),
            module,
        )
        for name, (module, inputs, outputs) in cases.items()
    }


def image(shape, seed=1) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=shape) * 10 + 5).astype(np.float32)


@pytest.mark.parametrize(
    "name,expected_shape", [("crop", (1, 1, 53, 39)), ("down2", (1, 1, 28, 21)), ("cropdown2", (1, 2, 27, 20))]
)
@pytest.mark.parametrize("weights", ["onnx", "torchscript"])
def test_resized_outputs_have_the_rdf_shape_and_tile_exactly(resized, name, expected_shape, weights):
    folder, module = resized[name]
    model = load_model(folder, device="cpu", weights=weights)
    try:
        array = image((1, 1, 57, 43))
        whole = predict_arrays(model, array, tile="none")["out"]
        assert whole.shape == expected_shape
        for tile in [(16, 16), (20, 18), (30, 26)]:
            plan = make_plan(model, {"raw": _Shape(array)}, {"y": tile[0], "x": tile[1]}, 2**30, None, None, [])
            assert plan.count > 4
            tiled = predict_arrays(model, array, tile=tile)["out"]
            assert tiled.shape == expected_shape
            assert np.abs(tiled - whole).max() < 1e-5
    finally:
        model.close()
    direct = run_module(module, array[0, 0][None, None])
    assert direct.shape == expected_shape
    if name == "down2":  # padded by the halo at the border, like the reference: equal inside it
        assert np.abs(whole - direct)[..., 2:-2, 2:-2].max() < 1e-5
    else:  # models that crop need no padding: equal everywhere
        assert np.abs(whole - direct).max() < 1e-5


class _Shape:
    def __init__(self, array):
        self.shape = dict(zip(("batch", "channel", "y", "x"), array.shape))


def test_cropping_model_reads_context_after_each_tile_only(resized):
    model = load_model(resized["crop"][0], device="cpu")
    try:
        plan = make_plan(model, {"raw": _Shape(np.zeros((1, 1, 100, 100)))}, {"y": 30, "x": 30}, 2**30, None, None, [])
    finally:
        model.close()
    y = plan.axes[0]
    assert (y.halo, y.after, y.count, y.stride, y.tile) == (0, 4, 4, 25, 29)  # 30 − 4 = 26, balanced to 25
    # 100 is a size the model takes: the last window stays inside the image, whose border it sees unpadded
    assert [y.window(k) for k in (0, 3)] == [(0, 29), (71, 100)]
    assert "halo 0 before, 4 after" in plan.describe()


def test_blending_is_refused_for_resized_outputs(resized):
    model = load_model(resized["down2"][0], device="cpu")
    try:
        with pytest.raises(InputError, match="--blend 0"):
            predict_arrays(model, image((1, 1, 64, 64)), tile=(24, 24), blend=8)
    finally:
        model.close()


def test_resized_output_files_and_zarr_chunks(resized, tmp_path):
    import zarr

    folder, module = resized["cropdown2"]
    array = image((61, 50), seed=4)
    tifffile.imwrite(tmp_path / "a.tif", array)
    group = zarr.open_group(str(tmp_path / "b.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("0", shape=array.shape, chunks=(16, 16), dtype=array.dtype)[:] = array
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "datasets": [{"path": "0"}],
            "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        }
    ]
    result = api.predict(
        folder, [tmp_path / "a.tif", tmp_path / "b.ome.zarr"], tmp_path / "out", device="cpu", tile=(20, 20)
    )
    assert result.exit_code == 0, result.items
    expected = run_module(module, array[None, None])[0]  # (2, 29, 24)
    assert np.abs(tifffile.imread(tmp_path / "out" / "a_out.tif") - expected).max() < 1e-5
    written = zarr.open_group(str(tmp_path / "out" / "b_out.zarr"), mode="r")["0"]
    assert "y: 4×18 (stride 16" in result.items[1].plan and "x: 3×20 (stride 18" in result.items[1].plan
    assert written.shape == expected.shape and written.chunks[1:] == (8, 9)  # the tiles' strides, halved
    assert np.abs(np.asarray(written) - expected).max() < 1e-5


# ----------------------------------------------------------------------------------------------- classifiers


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """A classifier of fixed 32×32 inputs (TorchScript and ONNX) and one of parameterized sizes (16 + n·8)."""
    torch.manual_seed(0)
    module = Classifier()
    example = np.random.default_rng(0).normal(size=(1, 1, 32, 32)).astype(np.float32)
    root = tmp_path_factory.mktemp("classifiers")
    outputs = [batch(), channel("background", "nucleus", "mitosis")]
    fixed = write_package(
        root / "fixed",
        module,
        example,
        [batch(), channel("raw"), space_in("y", 32), space_in("x", 32)],
        outputs,
        formats=("torchscript", "onnx"),
        trace=True,
        normalize=True,
    )
    free = write_package(
        root / "free",
        module,
        example,
        [batch(), channel("raw"), space_in("y", (16, 8)), space_in("x", (16, 8))],
        outputs,
        trace=True,
        normalize=True,
    )
    return fixed, free, module


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=np.float64)


@pytest.mark.parametrize("weights", ["torchscript", "onnx"])
def test_classifier_writes_one_csv_row_per_sample_named_by_channel(classifiers, tmp_path, weights):
    fixed, _, module = classifiers
    import zarr

    single, stack = image((32, 32), seed=2), image((3, 32, 32), seed=3)
    tifffile.imwrite(tmp_path / "one.tif", single)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    zarr.save_array(str(tmp_path / "plain.zarr"), single, zarr_format=2)  # a Zarr input gets a CSV too
    inputs = [tmp_path / "one.tif", tmp_path / "stack.tif", tmp_path / "plain.zarr"]
    result = api.predict(fixed, inputs, tmp_path / "out", device="cpu", weights=weights)
    assert result.exit_code == 0 and result.weight_format == weights
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["one_out.csv", "plain_out.csv", "stack_out.csv"]
    assert np.array_equal(
        read_csv(tmp_path / "out" / "plain_out.csv")[1], read_csv(tmp_path / "out" / "one_out.csv")[1]
    )
    header, rows = read_csv(tmp_path / "out" / "stack_out.csv")
    assert header == ["background", "nucleus", "mitosis"]
    expected = np.concatenate([run_module(module, page[None, None]) for page in stack])
    assert rows.shape == (3, 3) and np.abs(rows - expected).max() < 1e-5
    header, rows = read_csv(tmp_path / "out" / "one_out.csv")
    assert rows.shape == (1, 3) and np.abs(rows - run_module(module, single[None, None])).max() < 1e-5


def test_classifier_of_fixed_size_names_the_size_it_needs(classifiers, tmp_path):
    tifffile.imwrite(tmp_path / "wide.tif", image((32, 40)))
    with pytest.raises(ImageError, match=r"wide.tif: the image is 32×40 \(y×x\).*crop or resize the image to 32×32"):
        api.predict(classifiers[0], [tmp_path / "wide.tif"], tmp_path / "out", device="cpu")
    with pytest.raises(InputError, match="cannot be tiled"):
        api.predict(classifiers[0], [tmp_path / "wide.tif"], tmp_path / "out", device="cpu", tile="16,16")
    assert not (tmp_path / "out").exists()


def test_classifier_of_parameterized_size_sees_the_whole_image_padded_up_with_a_warning(classifiers, tmp_path):
    _, free, module = classifiers
    valid, odd = image((40, 48), seed=5), image((37, 40), seed=6)
    tifffile.imwrite(tmp_path / "valid.tif", valid)
    tifffile.imwrite(tmp_path / "odd.tif", odd)
    result = api.predict(free, [tmp_path / "valid.tif", tmp_path / "odd.tif"], tmp_path / "out", device="cpu")
    assert result.exit_code == 0
    assert [i.tiles for i in result.items] == [1, 1]
    assert len(result.warnings) == 1 and "odd.tif: padded" in result.warnings[0] and "y 37 → 40" in result.warnings[0]
    _, rows = read_csv(tmp_path / "out" / "valid_out.csv")
    assert np.abs(rows - run_module(module, valid[None, None])).max() < 1e-5


# ------------------------------------------------------------------------------------------------------- 3D


@pytest.fixture(scope="module")
def models_3d(tmp_path_factory):
    """The same 3D network with z parameterized (6 + n·2) and z fixed (8), halo 2 along z, y, x."""
    torch.manual_seed(0)
    module = Net3d()
    example = np.random.default_rng(0).normal(size=(1, 1, 8, 24, 24)).astype(np.float32)
    root = tmp_path_factory.mktemp("models-3d")
    packages = {}
    for name, z in (("free", (6, 2)), ("fixed", 8)):
        inputs = [batch(), channel("raw"), space_in("z", z), space_in("y", (8, 4)), space_in("x", (8, 4))]
        outputs = [batch(), channel("out"), *(space_out(a, halo=2) for a in "zyx")]
        packages[name] = write_package(
            root / name, module, example, inputs, outputs, formats=("torchscript", "onnx"), trace=True, normalize=True
        )
    return packages


@pytest.mark.parametrize("name", ["free", "fixed"])
def test_3d_stack_is_tiled_in_z_y_x_and_equals_the_whole_volume(models_3d, tmp_path, name):
    volume = image((19, 37, 29), seed=7)
    tifffile.imwrite(tmp_path / "vol.tif", volume)  # pages of unknown meaning: read as z by a 3D model
    whole_model = load_model(models_3d["free"], device="cpu")
    try:
        whole = predict_arrays(whole_model, volume[None, None], tile="none")["out"][0, 0]
    finally:
        whole_model.close()
    result = api.predict(models_3d[name], [tmp_path / "vol.tif"], tmp_path / "out", device="cpu", tile="20,16,8")
    assert result.exit_code == 0
    assert result.items[0].plan.startswith("45 tiles; z: 5×8 (stride 4, halo 2)")
    with tifffile.TiffFile(tmp_path / "out" / "vol_out.tif") as tif:
        assert tif.series[0].axes == "ZYX"
        out = tif.series[0].asarray()
    assert out.shape == volume.shape
    assert np.abs(out - whole).max() < 1e-5


def test_2d_image_into_a_3d_model_is_refused_before_any_compute(models_3d, tmp_path):
    tifffile.imwrite(tmp_path / "flat.tif", image((30, 30)))
    with pytest.raises(ImageError, match="flat.tif: .*no Z axis"):
        api.predict(models_3d["free"], [tmp_path / "flat.tif"], tmp_path / "out", device="cpu")


def test_only_outputs_without_spatial_axes_count_as_non_spatial():
    from zoo.bioimage.tensors import AxisSpec, TensorSpec
    from zoo.inference.geometry import derive_geometry
    from zoo.inference.tiling import ValidSizes

    names = ("a", "b")
    raw = TensorSpec(
        "raw",
        (
            AxisSpec("batch", "batch"),
            AxisSpec("channel", "channel", ValidSizes(1), channel_names=("r",)),
            AxisSpec("y", "space", ValidSizes(64)),
            AxisSpec("x", "space", ValidSizes(64)),
        ),
    )
    classes = TensorSpec(
        "classes", (AxisSpec("batch", "batch"), AxisSpec("channel", "channel", ValidSizes(2), channel_names=names))
    )
    fixed = TensorSpec(
        "mask",
        (AxisSpec("batch", "batch"), AxisSpec("y", "space", ValidSizes(64)), AxisSpec("x", "space", ValidSizes(64))),
    )  # a size, not a reference to the input
    geometry = derive_geometry([raw], [classes, fixed])
    assert geometry.non_spatial_outputs == ("classes",)
    assert "output mask axis y does not follow an input's spatial axis" in geometry.tileable
