"""The one reading of an rdf: formats 0.3/0.4 as written."""

from __future__ import annotations

from zoo.bioimage.rdf_tensors import tensors
from zoo.bioimage.tensors import tensor_specs


def test_v03_reference_follows_the_axis_of_the_same_letter():
    rdf = {
        "format_version": "0.3.2",
        "inputs": [{"name": "raw", "axes": "yxc", "shape": [256, 256, 3]}],
        "outputs": [
            {
                "name": "out",
                "axes": "byxc",
                "shape": {"reference_input": "raw", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]},
            }
        ],
    }
    [output] = tensors(rdf, "outputs")
    assert [a.size.kind for a in output.axes] == ["free", "reference", "reference", "reference"]
    assert [a.size.ref_axis for a in output.axes[1:]] == ["y", "x", "c"]
    _, [spec] = tensor_specs(rdf)
    assert spec.axis("y").reference == ("raw", "y")


def test_v03_negative_size_is_free_batch_not_minus_one():
    rdf = {"format_version": "0.3.0", "inputs": [{"name": "raw", "axes": "byxc", "shape": [-1, 64, 64, 3]}]}
    [spec], _ = tensor_specs(rdf)
    assert spec.axis("batch").sizes is None
    assert spec.axis("y").sizes.min == 64


def test_v04_null_scale_is_a_new_axis_of_twice_the_offset():
    rdf = {
        "format_version": "0.4.9",
        "inputs": [{"name": "raw", "axes": "bcyx", "shape": [1, 1, 64, 64]}],
        "outputs": [
            {
                "name": "out",
                "axes": "bcyx",
                "shape": {"reference_tensor": "raw", "scale": [1, None, 1, 1], "offset": [0, 1.5, 0, 0]},
            }
        ],
    }
    _, [spec] = tensor_specs(rdf)
    assert spec.axis("channel").sizes.min == 3


def test_v04_fixed_list_batch_is_fixed_and_min_step_batch_is_free():
    fixed = {"format_version": "0.4.9", "inputs": [{"name": "a", "axes": "bcyx", "shape": [1, 1, 512, 512]}]}
    free = {
        "format_version": "0.4.9",
        "inputs": [{"name": "a", "axes": "bcyx", "shape": {"min": [1, 1, 64, 64], "step": [0, 0, 16, 16]}}],
    }
    assert tensor_specs(fixed)[0][0].axis("batch").sizes.min == 1
    assert tensor_specs(free)[0][0].axis("batch").sizes is None
    assert tensor_specs(free)[0][0].axis("y").sizes.step == 16


def test_onnx_wire_reader_agrees_with_the_onnx_package(tmp_path):
    """zoo reads ONNX files without importing onnx; what it reads equals what onnx.load gives."""
    import onnx
    from onnx import TensorProto, helper

    from zoo.bioimage.onnx_file import read_onnx, read_onnx_domains

    inner = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["b"], name="inner")],
        "body",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])],
    )
    nodes = [
        helper.make_node("Relu", ["x"], ["y"], name="relu"),
        helper.make_node("Custom", ["y"], ["z"], name="custom", domain="my.domain"),
        helper.make_node("If", ["cond"], ["w"], name="branch", then_branch=inner, else_branch=inner),
    ]
    weight = helper.make_tensor("w0", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, None, None]),
            helper.make_tensor_value_info("w0", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.UINT16, [1])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.domain", 1)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    content = read_onnx(tmp_path / "m.onnx")
    assert (content.opset, content.ir_version) == (17, 8)
    assert content.inputs == [("x", "float32")]
    assert content.outputs == [("z", "uint16")]
    domains = read_onnx_domains(tmp_path / "m.onnx")
    assert [(d, op) for d, op, _ in domains] == [
        ("", "Relu"),
        ("my.domain", "Custom"),
        ("", "If"),
        ("", "Identity"),
        ("", "Identity"),
    ]
