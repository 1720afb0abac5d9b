"""The ONNX layers zoo's ONNX → PyTorch translator (zoo.finetune.onnx_torch) runs (convolutions, pooling, normalisation,
activations, arithmetic; the shape operations and resizing are in onnx_torch_shapes), each as torch functions on
the ONNX layout, so that gradients flow through them. Every op follows the ONNX operator specification for the
attributes it accepts; what it cannot reproduce raises UnsupportedOnnxOp naming the op and node before any training.

The set covers what PyTorch, Keras (tf2onnx) and bioimage.io's exporters write for U-Nets, plain CNNs and
classifiers: convolutions, pooling, normalisation, activations, arithmetic, concatenation, resizing and the shape
arithmetic that feeds them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import InputError


class UnsupportedOnnxOp(InputError):
    """An ONNX op (or a case of one) the translator cannot run; the message names it and what would work."""

    def __init__(self, op_type: str, node_name: str, detail: str = "is not supported"):
        self.op_type = op_type
        super().__init__(
            f"ONNX op {op_type} (node {node_name!r}) {detail} by zoo's ONNX→PyTorch translator, so the ONNX weights "
            "cannot be fine-tuned; a package with torchscript or pytorch_state_dict weights would work"
        )


@dataclass(frozen=True)
class Node:
    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, Any] = field(default_factory=dict)

    def text(self, name: str, default: str) -> str:
        value = self.attributes.get(name, default)
        return value.decode() if isinstance(value, bytes) else str(value)


def ints(value) -> list[int]:
    return [int(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]


def _spatial_pads(node: Node, x, kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """ONNX pads [x1_begin, x2_begin, ..., x1_end, x2_end], from `pads` or from auto_pad (SAME_UPPER/SAME_LOWER)."""
    rank = len(kernel)
    auto_pad = node.text("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", "VALID"):
        return ints(node.attributes.get("pads", [0] * 2 * rank)) if auto_pad == "NOTSET" else [0] * 2 * rank
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with auto_pad={auto_pad!r} is not supported")
    begins, ends = [], []
    for length, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
        total = max((math.ceil(int(length) / s) - 1) * s + (k - 1) * d + 1 - int(length), 0)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return begins + ends


def torch_padding(pads: list[int]) -> list[int]:
    """ONNX [x1_begin, x2_begin, x1_end, x2_end] → F.pad's [x2_begin, x2_end, x1_begin, x1_end]."""
    half = len(pads) // 2
    out = []
    for axis in reversed(range(half)):
        out += [pads[axis], pads[axis + half]]
    return out


def _pad_then(x, pads: list[int], value: float = 0.0):
    """`x` padded where ONNX pads are asymmetric; returns (tensor, symmetric per-axis padding for the op)."""
    import torch.nn.functional as F

    half = len(pads) // 2
    if pads[:half] == pads[half:]:
        return x, pads[:half]
    return F.pad(x, torch_padding(pads), value=value), [0] * half


def _conv(node: Node, args):
    import torch.nn.functional as F

    x, weight, bias = args[0], args[1], args[2] if len(args) > 2 else None
    rank = weight.dim() - 2
    if rank not in (1, 2, 3):
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with a {rank}-D kernel is not supported")
    kernel = list(weight.shape[2:])
    strides = ints(node.attributes.get("strides", [1] * rank))
    dilations = ints(node.attributes.get("dilations", [1] * rank))
    x, padding = _pad_then(x, _spatial_pads(node, x, kernel, strides, dilations))
    function = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
    return [function(x, weight, bias, strides, padding, dilations, int(node.attributes.get("group", 1)))]


def _conv_transpose(node: Node, args):
    import torch.nn.functional as F

    x, weight, bias = args[0], args[1], args[2] if len(args) > 2 else None
    rank = weight.dim() - 2
    if "output_shape" in node.attributes or node.text("auto_pad", "NOTSET") != "NOTSET":
        raise UnsupportedOnnxOp(node.op_type, node.name, "with output_shape or auto_pad is not supported")
    pads = ints(node.attributes.get("pads", [0] * 2 * rank))
    if pads[:rank] != pads[rank:]:
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with asymmetric pads {pads} is not supported")
    function = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
    return [
        function(
            x,
            weight,
            bias,
            ints(node.attributes.get("strides", [1] * rank)),
            pads[:rank],
            ints(node.attributes.get("output_padding", [0] * rank)),
            int(node.attributes.get("group", 1)),
            ints(node.attributes.get("dilations", [1] * rank)),
        )
    ]


def _pool(kind: str) -> Callable:
    def pool(node: Node, args):
        import torch.nn.functional as F

        x = args[0]
        kernel = ints(node.attributes["kernel_shape"])
        rank = len(kernel)
        if rank not in (1, 2, 3):
            raise UnsupportedOnnxOp(node.op_type, node.name, f"with a {rank}-D window is not supported")
        strides = ints(node.attributes.get("strides", [1] * rank))
        dilations = ints(node.attributes.get("dilations", [1] * rank))
        ceil = bool(node.attributes.get("ceil_mode", 0))
        pads = _spatial_pads(node, x, kernel, strides, dilations)
        if kind == "max":
            x, padding = _pad_then(x, pads, value=float("-inf"))
            function = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1]
            return [function(x, kernel, strides, padding, dilations, ceil_mode=ceil)]
        if any(d != 1 for d in dilations):
            raise UnsupportedOnnxOp(node.op_type, node.name, "with dilations is not supported")
        include = bool(node.attributes.get("count_include_pad", 0))
        if pads[:rank] != pads[rank:] and not include:
            raise UnsupportedOnnxOp(node.op_type, node.name, "with asymmetric pads and count_include_pad=0")
        x, padding = _pad_then(x, pads)
        function = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[rank - 1]
        return [function(x, kernel, strides, padding, ceil_mode=ceil, count_include_pad=include)]

    return pool


def _global_pool(kind: str) -> Callable:
    def pool(node: Node, args):
        x = args[0]
        dims = tuple(range(2, x.dim()))
        return [x.mean(dim=dims, keepdim=True) if kind == "mean" else x.amax(dim=dims, keepdim=True)]

    return pool


def _batch_norm(node: Node, args):
    import torch.nn.functional as F

    x, scale, bias, mean, variance = args[:5]
    if node.attributes.get("training_mode", 0):
        raise UnsupportedOnnxOp(node.op_type, node.name, "with training_mode=1 is not supported")
    # running statistics stay as exported: fine-tuning keeps normalisation frozen, as a traced TorchScript does
    return [F.batch_norm(x, mean, variance, scale, bias, False, 0.0, float(node.attributes.get("epsilon", 1e-5)))]


def _instance_norm(node: Node, args):
    import torch.nn.functional as F

    x, scale, bias = args[:3]
    return [F.instance_norm(x, weight=scale, bias=bias, eps=float(node.attributes.get("epsilon", 1e-5)))]


def _reduce(kind: str) -> Callable:
    def reduce(node: Node, args):
        x = args[0]
        axes = node.attributes.get("axes")
        if axes is None and len(args) > 1 and args[1] is not None:
            axes = args[1]
        keep = bool(node.attributes.get("keepdims", 1))
        dims = tuple(ints(axes)) if axes is not None and len(ints(axes)) else tuple(range(x.dim()))
        if kind == "mean":
            return [x.mean(dim=dims, keepdim=keep)]
        if kind == "sum":
            return [x.sum(dim=dims, keepdim=keep)]
        return [x.amax(dim=dims, keepdim=keep)]

    return reduce


def _gemm(node: Node, args):
    import torch

    a, b = args[0], args[1]
    c = args[2] if len(args) > 2 else None
    if node.attributes.get("transA", 0):
        a = a.t()
    if node.attributes.get("transB", 0):
        b = b.t()
    y = float(node.attributes.get("alpha", 1.0)) * torch.matmul(a, b)
    return [y + float(node.attributes.get("beta", 1.0)) * c if c is not None else y]


def _clip(node: Node, args):
    low = node.attributes.get("min", args[1] if len(args) > 1 and args[1] is not None else None)
    high = node.attributes.get("max", args[2] if len(args) > 2 and args[2] is not None else None)
    low = float(low) if low is not None else None
    high = float(high) if high is not None else None
    return [args[0].clamp(low, high)]


def _unary(name: str) -> Callable:
    def unary(node: Node, args):
        import torch

        return [getattr(torch, name)(args[0])]

    return unary


def _binary(name: str) -> Callable:
    def binary(node: Node, args):
        import torch

        a, b = args
        if a.is_floating_point() != b.is_floating_point():  # a float constant with an integer shape, or back
            b = b.to(a.dtype)
        return [getattr(torch, name)(a, b)]

    return binary


def _variadic(name: str) -> Callable:
    """Max, Min, Sum, Mean over any number of broadcast operands."""

    def variadic(node: Node, args):
        import torch

        operands = [a for a in args if a is not None]
        if name == "mean":
            return [torch.stack(torch.broadcast_tensors(*operands)).mean(dim=0)]
        result = operands[0]
        for operand in operands[1:]:
            operand = operand.to(result.dtype) if operand.dtype != result.dtype else operand
            result = {"max": torch.maximum, "min": torch.minimum, "sum": torch.add}[name](result, operand)
        return [result]

    return variadic


def _leaky_relu(node: Node, args):
    import torch.nn.functional as F

    return [F.leaky_relu(args[0], float(node.attributes.get("alpha", 0.01)))]


def _elu(node: Node, args):
    import torch.nn.functional as F

    return [F.elu(args[0], float(node.attributes.get("alpha", 1.0)))]


def _prelu(node: Node, args):
    import torch

    x, slope = args
    return [torch.where(x >= 0, x, x * slope)]


def _softmax(node: Node, args):
    return [args[0].softmax(dim=int(node.attributes.get("axis", -1)))]


def _identity(node: Node, args):
    return [args[0]]


LAYER_OPS: dict[str, Callable] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("average"),
    "GlobalAveragePool": _global_pool("mean"),
    "GlobalMaxPool": _global_pool("max"),
    "BatchNormalization": _batch_norm,
    "InstanceNormalization": _instance_norm,
    "ReduceMean": _reduce("mean"),
    "ReduceSum": _reduce("sum"),
    "ReduceMax": _reduce("max"),
    "Gemm": _gemm,
    "MatMul": _binary("matmul"),
    "Clip": _clip,
    "Relu": _unary("relu"),
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "Exp": _unary("exp"),
    "Log": _unary("log"),
    "Sqrt": _unary("sqrt"),
    "Neg": _unary("neg"),
    "Abs": _unary("abs"),
    "Erf": _unary("erf"),
    "LeakyRelu": _leaky_relu,
    "Elu": _elu,
    "PRelu": _prelu,
    "Softmax": _softmax,
    "Add": _binary("add"),
    "Sub": _binary("sub"),
    "Mul": _binary("mul"),
    "Div": _binary("div"),
    "Pow": _binary("pow"),
    "Max": _variadic("max"),
    "Min": _variadic("min"),
    "Sum": _variadic("sum"),
    "Mean": _variadic("mean"),
    "Identity": _identity,
    "Dropout": _identity,
}

# inputs that hold weights a fine-tuning trains (by position), when they are float initializers
TRAINABLE_INPUTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (0, 1, 2),
    "MatMul": (0, 1),
    "BatchNormalization": (1, 2),
    "InstanceNormalization": (1, 2),
    "PRelu": (1,),
    "Add": (0, 1),  # a bias added after a MatMul or a convolution (tf2onnx writes Dense layers so)
    "Mul": (0, 1),
    "Sub": (0, 1),
}
