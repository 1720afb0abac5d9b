"""ONNX Resize in the ONNX→TensorFlow translator: PyTorch's upsampling layers (nn.Upsample, F.interpolate with
scale_factor or size) exported at opset 17 with dynamic batch and spatial axes, converted and run in TensorFlow on
two input sizes against torch; every coordinate and rounding mode of nearest against onnxruntime; what the
translation cannot reproduce is refused by name. Also Transpose, as a head that returns channels last has it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from zoo.validators.deepimagej.known_ops import TF_OPS

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
tf = pytest.importorskip("tensorflow")

ATOL = 1e-5


def export_onnx(model, shape: tuple[int, ...], path) -> set[str]:
    """Opset 17, batch and spatial axes dynamic; returns the graph's op types."""
    import onnx

    axes = {0: "batch", **{i: f"s{i}" for i in range(2, len(shape))}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (torch.zeros(shape),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["raw"],
            output_names=["out"],
            dynamic_axes={"raw": axes, "out": axes},
        )
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def convert(onnx_path, shape: tuple[int, ...], out_dir):
    """The SavedModel's serving function (as bioimageio.core calls it) and the op types of its graph."""
    from tensorflow.core.protobuf import saved_model_pb2

    from zoo.packaging.onnx_to_tf import onnx_to_saved_model

    onnx_to_saved_model(onnx_path, out_dir, ["raw"], ["out"], example_shapes=[shape])
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((out_dir / "saved_model.pb").read_bytes())
    ops = {node.op for graph in proto.meta_graphs for node in graph.graph_def.node}
    serve = tf.saved_model.load(str(out_dir)).signatures["serving_default"]
    return (lambda x: serve(raw=tf.constant(x))["out"].numpy()), ops


class SkipUp(torch.nn.Module):
    """Pool, then back up to the skip connection's size (F.interpolate(size=skip.shape[2:])): odd sizes too."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x):
        down = torch.nn.functional.max_pool2d(x, 2)
        options = {"align_corners": False} if self.mode == "bilinear" else {}
        return torch.nn.functional.interpolate(down, size=x.shape[2:], mode=self.mode, **options)


class TinyUNet(torch.nn.Module):
    def __init__(self, mode: str = "nearest"):
        super().__init__()
        self.encode = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU())
        self.bottom = torch.nn.Sequential(torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU())
        options = {"align_corners": False} if mode == "bilinear" else {}
        self.up = torch.nn.Upsample(scale_factor=2, mode=mode, **options)
        self.decode = torch.nn.Conv2d(12, 2, 3, padding=1)

    def forward(self, x):
        skip = self.encode(x)
        return self.decode(torch.cat([skip, self.up(self.bottom(skip))], dim=1))


def upsample(**options):
    return lambda: torch.nn.Upsample(scale_factor=2, **options)


@pytest.mark.parametrize(
    ("build", "shapes"),
    [
        (upsample(mode="nearest"), [(1, 2, 6, 8), (2, 2, 5, 7)]),
        (upsample(mode="bilinear", align_corners=False), [(1, 2, 6, 8), (2, 2, 5, 7)]),
        (upsample(mode="bilinear", align_corners=True), [(1, 2, 6, 8), (2, 2, 5, 7)]),
        (lambda: torch.nn.Upsample(scale_factor=(2, 3), mode="nearest"), [(1, 2, 6, 8), (2, 2, 5, 7)]),
        (upsample(mode="nearest"), [(1, 2, 4, 6, 8), (2, 2, 3, 5, 7)]),
        (upsample(mode="trilinear", align_corners=False), [(1, 2, 4, 6, 8), (2, 2, 3, 5, 7)]),
        (upsample(mode="trilinear", align_corners=True), [(1, 2, 4, 6, 8), (2, 2, 3, 5, 7)]),
        (lambda: SkipUp("nearest"), [(1, 2, 8, 8), (2, 2, 9, 11)]),
        (lambda: SkipUp("bilinear"), [(1, 2, 8, 8), (2, 2, 9, 11)]),
        (TinyUNet, [(1, 1, 16, 16), (2, 1, 12, 20)]),
    ],
    ids=[
        "nearest2d",
        "bilinear2d",
        "bilinear2d-align-corners",
        "nearest2d-x2x3",
        "nearest3d",
        "trilinear3d",
        "trilinear3d-align-corners",
        "nearest-to-skip-size",
        "bilinear-to-skip-size",
        "unet",
    ],
)
def test_pytorch_upsampling_converts_and_matches_torch_on_two_sizes(build, shapes, tmp_path):
    torch.manual_seed(0)
    model = build()
    assert "Resize" in export_onnx(model, shapes[0], tmp_path / "m.onnx")
    predict, ops = convert(tmp_path / "m.onnx", shapes[0], tmp_path / "saved_model")
    assert ops <= TF_OPS, sorted(ops - TF_OPS)  # deepImageJ's TensorFlow has every op
    rng = np.random.default_rng(1)
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        actual = predict(x)
        assert actual.shape == expected.shape
        assert float(np.abs(actual - expected).max()) <= ATOL, shape


def resize_graph(path, rank: int, scales=None, sizes=None, **attributes) -> None:
    """A one-node ONNX graph (opset 17) resizing a tensor with dynamic batch and spatial axes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    constants = []
    inputs = ["raw", ""]
    for name, value, dtype in (("scales", scales, np.float32), ("sizes", sizes, np.int64)):
        if value is None:
            inputs.append("")
            continue
        inputs.append(name)
        constants.append(
            helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, dtype)))
        )
    dims = ["batch", 3, *(f"s{i}" for i in range(rank - 2))]
    graph = helper.make_graph(
        [*constants, helper.make_node("Resize", inputs, ["out"], name="resize0", **attributes)],
        "g",
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None] * rank)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.mark.parametrize("transform", ["asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners"])
@pytest.mark.parametrize("resize", ["scales", "sizes"])
def test_nearest_picks_the_elements_onnxruntime_picks(transform, resize, tmp_path):
    """Every nearest_mode, non-integer factors up and down, on two input sizes: the same elements, Δ = 0."""
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    for rounding in ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil"):
        path = tmp_path / f"{rounding}.onnx"
        spatial = {"scales": {"scales": [1, 1, 1.5, 0.6, 3]}, "sizes": {"sizes": [1, 3, 7, 3, 1]}}[resize]
        resize_graph(path, 5, coordinate_transformation_mode=transform, nearest_mode=rounding, **spatial)
        predict, ops = convert(path, (1, 3, 4, 5, 6), tmp_path / rounding)
        assert ops <= TF_OPS, sorted(ops - TF_OPS)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        batches = {"scales": [(1, 3, 4, 5, 6), (2, 3, 5, 9, 2)], "sizes": [(1, 3, 4, 5, 6)]}[resize]
        for shape in batches:
            x = rng.standard_normal(shape).astype(np.float32)
            [expected] = session.run(None, {"raw": x})
            actual = predict(x)
            assert actual.shape == expected.shape, (rounding, shape)
            assert np.array_equal(actual, expected), (rounding, shape)


@pytest.mark.parametrize("transform", ["asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners"])
@pytest.mark.parametrize(
    ("rank", "resize", "shapes"),
    [
        (4, {"scales": [1, 1, 2, 3]}, [(1, 3, 4, 5), (2, 3, 7, 2)]),
        (5, {"scales": [1, 1, 3, 1, 2]}, [(1, 3, 4, 5, 6), (2, 3, 2, 3, 5)]),
        (4, {"sizes": [1, 3, 7, 3]}, [(1, 3, 4, 5), (1, 3, 9, 2)]),
        (5, {"sizes": [1, 3, 7, 3, 9]}, [(1, 3, 4, 5, 6), (1, 3, 2, 8, 3)]),
    ],
    ids=["scales2d", "scales3d", "sizes2d", "sizes3d"],
)
def test_linear_matches_onnxruntime(transform, rank, resize, shapes, tmp_path):
    """Up and down, constant sizes against inputs of other sizes: within 1e-5 of onnxruntime."""
    import onnxruntime as ort

    resize_graph(tmp_path / "m.onnx", rank, mode="linear", coordinate_transformation_mode=transform, **resize)
    predict, ops = convert(tmp_path / "m.onnx", shapes[0], tmp_path / "saved_model")
    assert ops <= TF_OPS, sorted(ops - TF_OPS)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(4)
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        [expected] = session.run(None, {"raw": x})
        actual = predict(x)
        assert actual.shape == expected.shape, shape
        assert float(np.abs(actual - expected).max()) <= ATOL, shape


@pytest.mark.parametrize(
    ("resize", "detail"),
    [
        (dict(scales=[1, 1, 2, 2], mode="cubic"), "mode='cubic'"),
        (dict(scales=[1, 1, 1.5, 1.5], mode="linear"), r"mode='linear' and non-integer scales \[1.0, 1.0, 1.5, 1.5\]"),
        (dict(scales=[1, 2, 2, 2], mode="nearest"), r"scales \[1.0, 2.0, 2.0, 2.0\]"),
        (
            dict(scales=[1, 1, 2, 2], coordinate_transformation_mode="tf_crop_and_resize"),
            "coordinate_transformation_mode='tf_crop_and_resize'",
        ),
        (
            dict(sizes=[1, 3, 1, 8], mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
            "coordinate_transformation_mode='pytorch_half_pixel' and sizes that may be 1",
        ),
    ],
    ids=["cubic", "linear-non-integer", "channel-scale", "crop-and-resize", "pytorch-half-pixel-to-1"],
)
def test_resize_the_translation_cannot_reproduce_is_refused_by_name(resize, detail, tmp_path):
    from zoo.packaging.onnx_to_tf import UnsupportedOp, onnx_to_saved_model

    resize_graph(tmp_path / "m.onnx", 4, **resize)
    with pytest.raises(UnsupportedOp, match=f"Resize \\(node 'resize0'\\) with .*{detail}") as refused:
        onnx_to_saved_model(tmp_path / "m.onnx", tmp_path / "out", ["raw"], ["out"])
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_pytorch_bicubic_is_refused_by_name(tmp_path):
    from zoo.packaging.onnx_to_tf import UnsupportedOp, onnx_to_saved_model

    export_onnx(upsample(mode="bicubic")(), (1, 1, 6, 8), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOp, match="Resize .*mode='cubic' is not supported"):
        onnx_to_saved_model(tmp_path / "m.onnx", tmp_path / "out", ["raw"], ["out"])


class FloorScaled(torch.nn.Module):
    """floor() on the values, as the sizes of an up-sampling computed in the graph use it (a real TorchScript U-Net)."""

    def forward(self, x):
        return torch.floor(x * 3.0) + x


def test_floor_converts_exactly(tmp_path):
    model = FloorScaled()
    ops = export_onnx(model, (1, 1, 8, 8), tmp_path / "floor.onnx")
    assert "Floor" in ops
    run, tf_ops = convert(tmp_path / "floor.onnx", (1, 1, 8, 8), tmp_path / "saved")
    x = np.random.default_rng(0).standard_normal((1, 1, 12, 10)).astype(np.float32)
    assert np.abs(run(x) - model(torch.from_numpy(x)).numpy()).max() <= ATOL
    assert tf_ops <= set(TF_OPS)


@pytest.mark.parametrize("opset", [7, 9])
def test_legacy_upsample_converts_as_onnxruntime_runs_it(tmp_path, opset):
    """Upsample (opsets 7-9: scales as an attribute, then as an input), as old exports of U-Nets hold it."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["b", 1, "y", "x"])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 1, "Y", "X"])
    if opset == 7:
        node = helper.make_node("Upsample", ["raw"], ["out"], mode="nearest", scales=[1.0, 1.0, 2.0, 2.0])
        initializers = []
    else:
        node = helper.make_node("Upsample", ["raw", "scales"], ["out"], mode="nearest")
        initializers = [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])]
    graph = helper.make_graph([node], "upsample", [x], [y], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.save(model, tmp_path / "up.onnx")
    run, _ = convert(tmp_path / "up.onnx", (1, 1, 8, 8), tmp_path / "saved")
    session = ort.InferenceSession(str(tmp_path / "up.onnx"), providers=["CPUExecutionProvider"])
    data = np.random.default_rng(0).standard_normal((1, 1, 5, 7)).astype(np.float32)
    expected = session.run(None, {"raw": data})[0]
    assert expected.shape == (1, 1, 10, 14)
    assert np.array_equal(run(data), expected)


class Permuted(torch.nn.Module):
    """A convolution, then its output permuted: channels last (StarDist's head) or any other order."""

    def __init__(self, perm: tuple[int, ...]):
        super().__init__()
        self.perm = perm
        self.conv = (torch.nn.Conv2d if len(perm) == 4 else torch.nn.Conv3d)(1, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x).permute(*self.perm)


@pytest.mark.parametrize(
    "perm, shapes",
    [
        ((0, 2, 3, 1), [(1, 1, 16, 24), (2, 1, 20, 12)]),
        ((0, 1, 3, 2), [(1, 1, 16, 24), (2, 1, 20, 12)]),
        ((0, 2, 3, 4, 1), [(1, 1, 8, 12, 16), (1, 1, 12, 8, 8)]),
    ],
    ids=["channels-last-2d", "swap-yx", "channels-last-3d"],
)
def test_transpose_converts_exactly_on_two_sizes(perm, shapes, tmp_path):
    torch.manual_seed(0)
    model = Permuted(perm).eval()
    assert "Transpose" in export_onnx(model, shapes[0], tmp_path / "t.onnx")
    run, tf_ops = convert(tmp_path / "t.onnx", shapes[0], tmp_path / "saved")
    assert tf_ops <= set(TF_OPS)
    for shape in shapes:
        x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        actual = run(x)
        assert actual.shape == expected.shape
        assert float(np.abs(actual - expected).max()) <= ATOL
