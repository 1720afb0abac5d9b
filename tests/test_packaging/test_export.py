from __future__ import annotations

import numpy as np
import pytest

from zoo import api
from zoo.errors import InputError
from zoo.packaging import exporters
from zoo.packaging.agreement import agreement_inputs, compare_arrays, measure_agreement
from zoo.packaging.export import parse_formats


def test_parse_formats_orders_adds_parent_and_rejects_unknown():
    assert parse_formats("onnx,torchscript") == ["pytorch_state_dict", "torchscript", "onnx"]
    assert parse_formats(None) == ["pytorch_state_dict", "torchscript", "onnx", "tensorflow_saved_model_bundle"]
    assert parse_formats("tensorflow") == ["pytorch_state_dict", "tensorflow_saved_model_bundle"]
    with pytest.raises(InputError, match="keras_js"):
        parse_formats("onnx,keras_js")


def test_compare_arrays_finds_the_worst_element():
    expected = np.zeros((1, 1, 4, 4), np.float32)
    actual = expected.copy()
    actual[0, 0, 2, 3] = 0.5
    actual[0, 0, 1, 1] = 5e-5
    difference = compare_arrays("case", expected, actual, atol=1e-4)
    assert difference.max_abs == pytest.approx(0.5)
    assert difference.worst_index == (0, 0, 2, 3)
    assert difference.mismatched == 1


def test_agreement_fails_for_a_copy_that_differs():
    inputs = agreement_inputs(np.ones((1, 1, 16, 16), np.float32), min_size=8, step=4)
    assert {x.shape for x in inputs.values()} == {(1, 1, 16, 16), (1, 1, 8, 8), (1, 1, 12, 20), (2, 1, 16, 16)}
    good = measure_agreement("f", np.tanh, lambda x: np.tanh(x) + 1e-6, inputs)
    bad = measure_agreement("f", np.tanh, lambda x: np.tanh(x) + 1e-3, inputs)
    assert good.passed and good.max_abs < 1e-5
    assert not bad.passed and bad.mismatched == sum(x.size for x in inputs.values())


@pytest.mark.slow
def test_export_writes_formats_that_load_in_their_runtimes(tiny_checkpoint, tmp_path):
    import onnx
    import onnxruntime
    import torch

    result = api.export(tiny_checkpoint, tmp_path, "torchscript,onnx")
    assert [w.weight_format for w in result.weights] == ["pytorch_state_dict", "torchscript", "onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "unet2d.py",
        "weights.onnx",
        "weights.pt",
        "weights_torchscript.pt",
    ]
    proto = onnx.load(str(tmp_path / "weights.onnx"))
    assert proto.ir_version <= 8
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) <= 17
    x = np.random.default_rng(0).standard_normal((1, 1, 52, 44)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "weights.onnx"), providers=["CPUExecutionProvider"])
    from_onnx = session.run(None, {"raw": x})[0]
    from_torchscript = torch.jit.load(str(tmp_path / "weights_torchscript.pt"))(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(from_onnx, from_torchscript, atol=1e-5)
    for weights in result.weights:
        assert weights.agreement.passed and len(weights.agreement.cases) == 4


@pytest.mark.slow
def test_a_failing_exporter_does_not_stop_the_others(tiny_checkpoint, tmp_path, monkeypatch):
    from zoo.errors import ExportError

    def broken(model, example, workdir, context):
        raise ExportError("onnx: op Foo has no symbolic at opset 17; try another opset")

    real = exporters.get_exporter
    monkeypatch.setattr(
        "zoo.packaging.export.get_exporter", lambda framework, name: broken if name == "onnx" else real(framework, name)
    )
    result = api.export(tiny_checkpoint, tmp_path, "torchscript,onnx")
    assert [w.weight_format for w in result.weights] == ["pytorch_state_dict", "torchscript"]
    assert "op Foo" in result.failures["onnx"]
    assert not (tmp_path / "weights.onnx").exists()


@pytest.mark.slow
def test_a_copy_that_disagrees_is_not_shipped(tiny_checkpoint, tmp_path, monkeypatch):
    from zoo.packaging import export as export_module

    real_prove = export_module.prove_agreement

    def skewed(exported, reference, inputs):
        if exported.weight_format == "torchscript":
            return real_prove(exported, lambda x: reference(x) + 0.01, inputs)
        return real_prove(exported, reference, inputs)

    monkeypatch.setattr(export_module, "prove_agreement", skewed)
    result = api.export(tiny_checkpoint, tmp_path, "torchscript")
    assert "torchscript" not in [w.weight_format for w in result.weights]
    assert "not shipped" in result.failures["torchscript"]


@pytest.mark.slow
def test_tensorflow_copy_has_dict_outputs_named_by_tensor_ids_and_dynamic_sizes(tiny_checkpoint, tmp_path):
    import zipfile

    import tensorflow as tf

    result = api.export(tiny_checkpoint, tmp_path, "tensorflow")
    [tf_weights] = [w for w in result.weights if w.weight_format == "tensorflow_saved_model_bundle"]
    assert tf_weights.agreement.passed and tf_weights.agreement.max_abs <= 1e-4
    with zipfile.ZipFile(tf_weights.path) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "saved_model")
    assert "saved_model.pb" in names and any(n.startswith("variables/") for n in names)
    assert "variables/" in names  # deepImageJ requires the folder, even empty (the graph is frozen)
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    signature = loaded.signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["raw"]
    assert list(signature.structured_outputs) == ["probability"]
    import keras

    layer = keras.layers.TFSMLayer(str(tmp_path / "saved_model"), call_endpoint="serving_default")
    output = layer(tf.zeros((2, 1, 44, 52)))  # what bioimageio.core's TF backend calls
    assert isinstance(output, dict) and output["probability"].shape == (2, 1, 44, 52)


@pytest.mark.slow
def test_frozen_saved_model_uses_only_ops_tf_2_7_knows(tiny_checkpoint, tmp_path):
    import zipfile

    from tensorflow.core.protobuf import saved_model_pb2

    result = api.export(tiny_checkpoint, tmp_path, "tensorflow")
    [tf_weights] = [w for w in result.weights if w.weight_format == "tensorflow_saved_model_bundle"]
    saved_model = saved_model_pb2.SavedModel()
    with zipfile.ZipFile(tf_weights.path) as archive:
        saved_model.ParseFromString(archive.read("saved_model.pb"))
    ops = {node.op for graph in saved_model.meta_graphs for node in graph.graph_def.node}
    assert not ops & {"DisableCopyOnRead", "VarHandleOp", "StatefulPartitionedCall"}
    assert {"Conv2D", "Placeholder"} <= ops


def test_onnx_op_without_translation_names_the_op(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from zoo.packaging.onnx_to_tf import UnsupportedOp, onnx_to_saved_model

    graph = helper.make_graph(
        [helper.make_node("Erf", ["raw"], ["probability"], name="erf0")],
        "g",
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [1, 1, 8, 8])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedOp, match="Erf.*erf0"):
        onnx_to_saved_model(tmp_path / "m.onnx", tmp_path / "out", ["raw"], ["probability"])
    assert not (tmp_path / "out").exists()
