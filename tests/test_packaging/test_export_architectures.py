"""Every PyTorch weight format for the 3D U-Net (b,c,z,y,x) and the 2D classifier (b,c,y,x → b,c): exported with the
exporter functions, loaded by zoo's backends in their own runtimes and compared with the torch module; the files use
only operators Fiji's engines have (DIJ05/07/10/13); the ONNX→TF translator's other new ops on small modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from zoo.errors import ExportError
from zoo.packaging.exporters import ExportContext, ExportedWeights, get_exporter
from zoo.trainers.architectures import architecture_source, load_architecture

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")

FORMATS = ["pytorch_state_dict", "torchscript", "onnx", "tensorflow_saved_model_bundle"]
ATOL = 1e-4


@dataclass
class Architecture:
    module: str
    class_name: str
    kwargs: dict
    example_shape: tuple[int, ...]
    layout: str
    output_layout: str | None
    other_shapes: list[tuple[int, ...]]  # further valid inputs: another batch size, other spatial sizes
    output_shape: tuple[int | None, ...]  # of the example's output


ARCHITECTURES = {
    "unet3d": Architecture(
        "unet3d",
        "UNet3d",
        dict(in_channels=1, out_channels=2, base_channels=4, depth=2, final_activation="softmax"),
        (1, 1, 16, 32, 32),
        "bczyx",
        None,
        [(2, 1, 8, 16, 12)],
        (1, 2, 16, 32, 32),
    ),
    "classifier2d": Architecture(
        "classifier2d",
        "Classifier2d",
        dict(in_channels=1, n_classes=3, base_channels=4, depth=2),
        (2, 1, 64, 64),
        "bcyx",
        "bc",
        [(3, 1, 64, 64), (1, 1, 48, 40)],
        (2, 3),
    ),
}


def randomized_batch_norm(model):
    """Running statistics and affine parameters away from 0/1, so a dropped or misplaced BatchNorm shows."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
    return model.eval()


def export_all(model, example: np.ndarray, folder: Path, context: ExportContext) -> dict[str, ExportedWeights]:
    folder.mkdir(parents=True, exist_ok=True)
    return {name: get_exporter("pytorch", name)(model, example, folder, context) for name in FORMATS}


def backend_for(weights: ExportedWeights):
    from zoo.bioimage.runtimes import load_backend

    options = {}
    if weights.weight_format == "pytorch_state_dict":
        options = {
            "architecture_file": weights.details["architecture_file"],
            "callable_name": weights.details["callable"],
            "kwargs": weights.details["kwargs"],
        }
    return load_backend(weights.weight_format, weights.path, **options)


def torch_output(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def exported(request, tmp_path_factory):
    architecture = ARCHITECTURES[request.param]
    torch.manual_seed(0)
    model = randomized_batch_norm(
        load_architecture(architecture.module, architecture.class_name)(**architecture.kwargs)
    )
    example = np.random.default_rng(0).standard_normal(architecture.example_shape).astype(np.float32)
    context = ExportContext(
        architecture_source(architecture.module),
        architecture.class_name,
        architecture.kwargs,
        "raw",
        "probability",
        layout=architecture.layout,
        output_layout=architecture.output_layout,
    )
    folder = tmp_path_factory.mktemp(request.param)
    return architecture, model, example, export_all(model, example, folder, context)


@pytest.mark.slow
@pytest.mark.parametrize("weight_format", FORMATS)
def test_every_format_computes_what_the_module_computes(exported, weight_format):
    architecture, model, example, weights = exported
    backend = backend_for(weights[weight_format])
    rng = np.random.default_rng(1)
    for shape in [architecture.example_shape, *architecture.other_shapes]:
        x = example if shape == architecture.example_shape else rng.standard_normal(shape).astype(np.float32)
        expected = torch_output(model, x)
        [actual] = backend.predict(x)
        assert actual.shape == expected.shape, (weight_format, shape)
        difference = float(np.abs(actual - expected).max())
        assert difference <= ATOL, (weight_format, shape, difference)
    assert expected.std() > 1e-3  # the comparison is not between two constant outputs


def test_onnx_keeps_batch_and_spatial_axes_dynamic(exported):
    import onnx

    architecture, _, _, weights = exported
    proto = onnx.load(str(weights["onnx"].path))
    assert proto.ir_version <= 8 and weights["onnx"].details["opset_version"] == 17

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    [graph_input], [graph_output] = proto.graph.input, proto.graph.output
    if architecture.layout == "bczyx":
        assert dims(graph_input) == ["batch", 1, "z", "y", "x"]
        assert dims(graph_output) == ["batch", 2, "z", "y", "x"]
    else:
        assert dims(graph_input) == ["batch", 1, "y", "x"]
        assert dims(graph_output) == ["batch", 3]


def test_saved_model_signature_in_the_onnx_layout(exported, tmp_path):
    import zipfile

    import tensorflow as tf

    architecture, _, _, weights = exported
    with zipfile.ZipFile(weights["tensorflow_saved_model_bundle"].path) as archive:
        archive.extractall(tmp_path)
    signature = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    [(input_id, spec)] = signature.structured_input_signature[1].items()
    [(output_id, output)] = signature.structured_outputs.items()
    assert (input_id, output_id) == ("raw", "probability")
    expected_input = [None, 1, None, None, None] if architecture.layout == "bczyx" else [None, 1, None, None]
    assert spec.shape.as_list() == expected_input
    assert output.shape.as_list() == ([None, 2, None, None, None] if architecture.layout == "bczyx" else [None, 3])
    import keras

    layer = keras.layers.TFSMLayer(str(tmp_path), call_endpoint="serving_default")  # what bioimageio.core calls
    [other_shape] = architecture.other_shapes[:1]
    result = layer(tf.zeros(other_shape))
    assert list(result) == ["probability"] and tuple(result["probability"].shape)[0] == other_shape[0]


def test_fiji_engines_have_every_operator_of_the_files(exported, tmp_path):
    """deepImageJ's weight rules settle loadability from the files: TorchScript operators (DIJ07), SavedModel op
    types and attributes against TF 2.7 (DIJ10), ONNX opset and IR (DIJ13); none may flag Conv3D, Gemm and kin."""
    import shutil

    import tensorflow as tf

    from tests.conftest import save_rdf
    from tests.test_validators.deepimagej_packages import dij_report
    from zoo.bioimage.weight_files import read_saved_model, read_torchscript

    architecture, _, _, weights = exported
    for entry in weights.values():
        if entry.weight_format != "pytorch_state_dict":
            shutil.copyfile(entry.path, tmp_path / entry.path.name)
    save_rdf(
        tmp_path,
        {
            "format_version": "0.5.4",
            "type": "model",
            "name": f"tiny {architecture.module}",
            "inputs": [{"id": "raw"}],
            "outputs": [{"id": "probability"}],
            "weights": {
                "torchscript": {
                    "source": weights["torchscript"].path.name,
                    "pytorch_version": torch.__version__.split("+")[0],
                },
                "onnx": {"source": weights["onnx"].path.name, "opset_version": 17},
                "tensorflow_saved_model_bundle": {
                    "source": weights["tensorflow_saved_model_bundle"].path.name,
                    "tensorflow_version": tf.__version__,
                },
            },
        },
    )
    report = dij_report(tmp_path)
    for rule_id in ("DIJ05", "DIJ07", "DIJ10", "DIJ11", "DIJ12", "DIJ13"):
        assert {f.status for f in report.by_id(rule_id)} == {"passed"}, [f.message for f in report.by_id(rule_id)]
    [tf_finding] = report.by_id("DIJ10")
    assert tf_finding.details["engine"] == "tensorflow 2.7.0" and tf_finding.details["unknown_ops"] == []

    torch_ops = read_torchscript(tmp_path / weights["torchscript"].path.name).ops
    tf_ops = read_saved_model(tmp_path, weights["tensorflow_saved_model_bundle"].path.name).ops
    if architecture.layout == "bczyx":
        assert "aten::max_pool3d" in torch_ops
        assert {"Conv3D", "Conv3DBackpropInputV2", "MaxPool3D", "Softmax"} <= tf_ops
    else:
        assert {"aten::linear", "aten::mean"} <= torch_ops
        assert {"Conv2D", "MaxPool", "Mean", "MatMul", "Softmax"} <= tf_ops


def test_layout_that_does_not_fit_the_model_is_named(tmp_path):
    architecture = ARCHITECTURES["classifier2d"]
    model = load_architecture(architecture.module, architecture.class_name)(**architecture.kwargs).eval()
    example = np.zeros(architecture.example_shape, np.float32)
    context = ExportContext(
        architecture_source(architecture.module),
        architecture.class_name,
        architecture.kwargs,
        "raw",
        "probability",
        layout="bcyx",  # output_layout="bc" forgotten
    )
    with pytest.raises(ExportError, match=r"output_layout is 'bcyx' \(4 axes\)"):
        get_exporter("pytorch", "onnx")(model, example, tmp_path, context)
    assert not (tmp_path / "weights.onnx").exists()
    with pytest.raises(ExportError, match=r"5 axes \(1, 1, 8, 8, 8\).*layout is 'bcyx'"):
        get_exporter("pytorch", "onnx")(model, np.zeros((1, 1, 8, 8, 8), np.float32), tmp_path, context)


# ---------------------------------------------------------------------- translator ops beyond the two architectures
def _head_3d():
    """BatchNormalization on 5-D (first, so not folded into a Conv), GlobalAveragePool, Flatten, Gemm, Softmax."""
    nn = torch.nn
    return nn.Sequential(
        nn.BatchNorm3d(2),
        nn.Conv3d(2, 3, 3, padding=1),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(3, 4),
        nn.Softmax(dim=1),
    )


class _ShapeArithmetic(torch.nn.Module):
    """view(size(0), size(1), -1) (Shape, Gather, Unsqueeze, Concat, Reshape), Linear on 3-D (MatMul + Add),
    ReduceMean over channels, keepdim mean + Squeeze, Concat of 2-D tensors; 8×8 inputs only."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.linear = torch.nn.Linear(64, 5)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        scores = self.linear(y.view(y.size(0), y.size(1), -1)).mean(dim=1)
        pooled = y.mean(dim=(2, 3), keepdim=True).squeeze(-1).squeeze(-1)
        return torch.cat([scores, pooled], dim=1)


@pytest.mark.parametrize(
    ("build", "shapes", "layout", "expected_ops"),
    [
        (
            _head_3d,
            [(1, 2, 8, 8, 8), (3, 2, 4, 6, 8)],
            "bczyx",
            {"BatchNormalization", "GlobalAveragePool", "Flatten", "Gemm"},
        ),
        (
            _ShapeArithmetic,
            [(2, 1, 8, 8), (1, 1, 8, 8)],
            "bcyx",
            {"Shape", "Gather", "Unsqueeze", "Reshape", "MatMul", "ReduceMean", "Squeeze", "Concat"},
        ),
    ],
    ids=["head3d", "shape-arithmetic"],
)
def test_translator_ops_beyond_the_architectures(build, shapes, layout, expected_ops, tmp_path):
    import onnx

    from zoo.bioimage.runtimes import load_backend

    torch.manual_seed(0)
    model = randomized_batch_norm(build())
    example = np.random.default_rng(0).standard_normal(shapes[0]).astype(np.float32)
    context = ExportContext(
        tmp_path / "unused.py", "Unused", {}, "raw", "probability", layout=layout, output_layout="bc"
    )
    onnx_weights = get_exporter("pytorch", "onnx")(model, example, tmp_path, context)
    assert expected_ops <= {node.op_type for node in onnx.load(str(onnx_weights.path)).graph.node}
    tf_weights = get_exporter("pytorch", "tensorflow_saved_model_bundle")(model, example, tmp_path, context)
    backend = load_backend(tf_weights.weight_format, tf_weights.path)
    rng = np.random.default_rng(2)
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        expected = torch_output(model, x)
        [actual] = backend.predict(x)
        assert actual.shape == expected.shape
        assert float(np.abs(actual - expected).max()) <= ATOL, shape


@pytest.mark.parametrize(
    ("layer", "shape", "layout", "detail"),
    [
        (lambda: torch.nn.Conv1d(1, 2, 3), (1, 1, 16), "bcx", "1-D kernel"),
        (lambda: torch.nn.Conv3d(1, 2, 3, dilation=2), (1, 1, 8, 8, 8), "bczyx", "dilated 3-D kernel"),
    ],
    ids=["conv1d", "dilated-conv3d"],
)
def test_convolution_the_translator_cannot_reproduce_is_refused_by_name(layer, shape, layout, detail, tmp_path):
    from zoo.packaging.onnx_to_tf import UnsupportedOp

    model = torch.nn.Sequential(layer()).eval()
    context = ExportContext(tmp_path / "unused.py", "Unused", {}, "raw", "probability", layout=layout)
    with pytest.raises(UnsupportedOp, match=f"Conv .*{detail}"):
        get_exporter("pytorch", "tensorflow_saved_model_bundle")(model, np.zeros(shape, np.float32), tmp_path, context)
    assert not (tmp_path / "tf_saved_model_bundle.zip").exists()
