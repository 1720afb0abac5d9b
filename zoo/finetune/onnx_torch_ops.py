"""The ONNX operations zoo's ONNX → PyTorch translator (zoo.finetune.onnx_torch) runs, each as torch functions on
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


def _ints(value) -> list[int]:
    return [int(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]


def _spatial_pads(node: Node, x, kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """ONNX pads [x1_begin, x2_begin, ..., x1_end, x2_end], from `pads` or from auto_pad (SAME_UPPER/SAME_LOWER)."""
    rank = len(kernel)
    auto_pad = node.text("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", "VALID"):
        return _ints(node.attributes.get("pads", [0] * 2 * rank)) if auto_pad == "NOTSET" else [0] * 2 * rank
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with auto_pad={auto_pad!r} is not supported")
    begins, ends = [], []
    for length, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
        total = max((math.ceil(int(length) / s) - 1) * s + (k - 1) * d + 1 - int(length), 0)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return begins + ends


def _torch_padding(pads: list[int]) -> list[int]:
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
    return F.pad(x, _torch_padding(pads), value=value), [0] * half


def _conv(node: Node, args):
    import torch.nn.functional as F

    x, weight, bias = args[0], args[1], args[2] if len(args) > 2 else None
    rank = weight.dim() - 2
    if rank not in (1, 2, 3):
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with a {rank}-D kernel is not supported")
    kernel = list(weight.shape[2:])
    strides = _ints(node.attributes.get("strides", [1] * rank))
    dilations = _ints(node.attributes.get("dilations", [1] * rank))
    x, padding = _pad_then(x, _spatial_pads(node, x, kernel, strides, dilations))
    function = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
    return [function(x, weight, bias, strides, padding, dilations, int(node.attributes.get("group", 1)))]


def _conv_transpose(node: Node, args):
    import torch.nn.functional as F

    x, weight, bias = args[0], args[1], args[2] if len(args) > 2 else None
    rank = weight.dim() - 2
    if "output_shape" in node.attributes or node.text("auto_pad", "NOTSET") != "NOTSET":
        raise UnsupportedOnnxOp(node.op_type, node.name, "with output_shape or auto_pad is not supported")
    pads = _ints(node.attributes.get("pads", [0] * 2 * rank))
    if pads[:rank] != pads[rank:]:
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with asymmetric pads {pads} is not supported")
    function = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
    return [
        function(
            x,
            weight,
            bias,
            _ints(node.attributes.get("strides", [1] * rank)),
            pads[:rank],
            _ints(node.attributes.get("output_padding", [0] * rank)),
            int(node.attributes.get("group", 1)),
            _ints(node.attributes.get("dilations", [1] * rank)),
        )
    ]


def _pool(kind: str) -> Callable:
    def pool(node: Node, args):
        import torch.nn.functional as F

        x = args[0]
        kernel = _ints(node.attributes["kernel_shape"])
        rank = len(kernel)
        if rank not in (1, 2, 3):
            raise UnsupportedOnnxOp(node.op_type, node.name, f"with a {rank}-D window is not supported")
        strides = _ints(node.attributes.get("strides", [1] * rank))
        dilations = _ints(node.attributes.get("dilations", [1] * rank))
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
        dims = tuple(_ints(axes)) if axes is not None and len(_ints(axes)) else tuple(range(x.dim()))
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


def _reshape(node: Node, args):
    x, shape = args[0], _ints(args[1])
    if node.attributes.get("allowzero", 0):
        raise UnsupportedOnnxOp(node.op_type, node.name, "with allowzero=1 is not supported")
    shape = [int(x.shape[i]) if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


def _flatten(node: Node, args):
    x = args[0]
    axis = int(node.attributes.get("axis", 1)) % max(x.dim(), 1)
    return [x.reshape(int(math.prod(x.shape[:axis])), -1)]


def _squeeze(node: Node, args):
    x = args[0]
    axes = node.attributes.get("axes", args[1] if len(args) > 1 and args[1] is not None else None)
    if axes is None:
        return [x.squeeze()]
    for axis in sorted((a % x.dim() for a in _ints(axes)), reverse=True):
        x = x.squeeze(axis)
    return [x]


def _unsqueeze(node: Node, args):
    x = args[0]
    axes = node.attributes.get("axes", args[1] if len(args) > 1 else None)
    rank = x.dim() + len(_ints(axes))
    for axis in sorted(a % rank for a in _ints(axes)):
        x = x.unsqueeze(axis)
    return [x]


def _shape(node: Node, args):
    import torch

    shape = list(args[0].shape)
    start, end = int(node.attributes.get("start", 0)), node.attributes.get("end")
    return [torch.tensor(shape[start : None if end is None else int(end)], dtype=torch.int64)]


def _gather(node: Node, args):
    import torch

    x, index = args[0], args[1].long()
    axis = int(node.attributes.get("axis", 0)) % x.dim()
    index = torch.where(index < 0, index + x.shape[axis], index)
    out = torch.index_select(x, axis, index.reshape(-1))
    return [out.reshape(*x.shape[:axis], *index.shape, *x.shape[axis + 1 :])]


def _slice(node: Node, args):
    x = args[0]
    if len(args) > 1:
        starts, ends = _ints(args[1]), _ints(args[2])
        axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
        steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    else:
        starts, ends = _ints(node.attributes["starts"]), _ints(node.attributes["ends"])
        axes = _ints(node.attributes.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    index = [slice(None)] * x.dim()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step < 1:
            raise UnsupportedOnnxOp(node.op_type, node.name, f"with step {step} is not supported")
        length = int(x.shape[axis])
        index[axis % x.dim()] = slice(*slice(start, end, step).indices(length))
    return [x[tuple(index)]]


def _concat(node: Node, args):
    import torch

    return [torch.cat([a for a in args if a is not None], dim=int(node.attributes["axis"]))]


def _split(node: Node, args):
    x = args[0]
    axis = int(node.attributes.get("axis", 0))
    sizes = node.attributes.get("split", args[1] if len(args) > 1 and args[1] is not None else None)
    if sizes is None:
        return list(x.chunk(len(node.outputs), dim=axis))
    return list(x.split(_ints(sizes), dim=axis))


def _transpose(node: Node, args):
    x = args[0]
    perm = _ints(node.attributes.get("perm", list(reversed(range(x.dim())))))
    return [x.permute(perm)]


def _cast(node: Node, args):
    import numpy as np
    import onnx
    import torch

    numpy_type = onnx.helper.tensor_dtype_to_np_dtype(int(node.attributes["to"]))
    try:
        dtype = torch.from_numpy(np.zeros(0, numpy_type)).dtype
    except TypeError as e:
        raise UnsupportedOnnxOp(node.op_type, node.name, f"to {numpy_type} is not supported") from e
    return [args[0].to(dtype)]


def _clip(node: Node, args):
    low = node.attributes.get("min", args[1] if len(args) > 1 and args[1] is not None else None)
    high = node.attributes.get("max", args[2] if len(args) > 2 and args[2] is not None else None)
    low = float(low) if low is not None else None
    high = float(high) if high is not None else None
    return [args[0].clamp(low, high)]


def _pad(node: Node, args):
    import torch.nn.functional as F

    x = args[0]
    pads = _ints(node.attributes.get("pads", args[1] if len(args) > 1 else []))
    value = float(args[2]) if len(args) > 2 and args[2] is not None and args[2].numel() else 0.0
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(node.text("mode", "constant"))
    if mode is None or (len(args) > 3 and args[3] is not None):
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with mode {node.text('mode', '')!r} or axes")
    half = len(pads) // 2
    if any(pads[:2]) or any(pads[half : half + 2]):
        raise UnsupportedOnnxOp(node.op_type, node.name, "on the batch or channel axis is not supported")
    spatial = pads[2:half] + pads[half + 2 :]
    return [F.pad(x, _torch_padding(spatial), mode=mode, value=value if mode == "constant" else None)]


def _resize(node: Node, args):
    """Resize of the spatial axes: nearest in every coordinate mode and rounding (elements picked by ONNX's own
    formulas, so exact), linear as torch's (bi/tri)linear interpolation for half_pixel and align_corners."""
    import torch
    import torch.nn.functional as F

    x = args[0]
    rank = x.dim()
    for name in ("antialias", "exclude_outside"):
        if node.attributes.get(name, 0):
            raise UnsupportedOnnxOp(node.op_type, node.name, f"with {name}={node.attributes[name]} is not supported")
    if "axes" in node.attributes or rank not in (3, 4, 5):
        raise UnsupportedOnnxOp(node.op_type, node.name, "with axes, or on a tensor that is not 3-D to 5-D")
    scales_arg = args[2] if len(args) > 2 else (args[1] if len(args) == 2 else None)  # opset 10: (X, scales)
    sizes_arg = args[3] if len(args) > 3 else None
    lengths = [int(n) for n in x.shape[2:]]
    if scales_arg is not None and scales_arg.numel():
        scales = [float(s) for s in scales_arg.tolist()]
        if scales[:2] != [1.0, 1.0]:
            raise UnsupportedOnnxOp(node.op_type, node.name, f"with scales {scales} on batch or channels")
        factors = scales[2:]
        sizes = [int(math.floor(n * f)) for n, f in zip(lengths, factors)]
    elif sizes_arg is not None:
        all_sizes = _ints(sizes_arg)
        if all_sizes[:2] != [int(x.shape[0]), int(x.shape[1])]:
            raise UnsupportedOnnxOp(node.op_type, node.name, "with sizes that change batch or channels")
        sizes = all_sizes[2:]
        factors = [s / n for s, n in zip(sizes, lengths)]
    else:
        raise UnsupportedOnnxOp(node.op_type, node.name, "without scales or sizes is not supported")
    mode = node.text("mode", "nearest")
    transform = node.text("coordinate_transformation_mode", "half_pixel")
    if mode == "linear":
        if transform not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise UnsupportedOnnxOp(node.op_type, node.name, f"linear with {transform!r} is not supported")
        interpolation = {3: "linear", 4: "bilinear", 5: "trilinear"}[rank]
        if transform == "align_corners":
            return [F.interpolate(x, size=sizes, mode=interpolation, align_corners=True)]
        if transform == "pytorch_half_pixel" and min(sizes) <= 1:
            raise UnsupportedOnnxOp(node.op_type, node.name, "pytorch_half_pixel to a length of 1 is not supported")
        return [F.interpolate(x, size=sizes, scale_factor=None, mode=interpolation, align_corners=False)]
    if mode != "nearest":
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with mode={mode!r} is not supported")
    for axis, (length, size, factor) in enumerate(zip(lengths, sizes, factors), start=2):
        index = _nearest_indices(node, length, size, factor, transform)
        x = torch.index_select(x, axis, index)
    return [x]


def _nearest_indices(node: Node, length: int, size: int, factor: float, transform: str):
    """The input position of each of `size` outputs, by ONNX's coordinate transformation and nearest_mode in float32
    (as onnxruntime computes them), clamped into the axis."""
    import torch

    position = torch.arange(size, dtype=torch.float32)
    scale = torch.tensor(factor, dtype=torch.float32)
    if transform == "asymmetric":
        coordinate = position / scale
    elif transform == "align_corners":
        coordinate = position * (length - 1) / max(size - 1, 1)
    elif transform in ("half_pixel", "pytorch_half_pixel"):
        coordinate = (position + 0.5) / scale - 0.5
        if transform == "pytorch_half_pixel" and size <= 1:
            coordinate = torch.zeros_like(coordinate)
    else:
        raise UnsupportedOnnxOp(node.op_type, node.name, f"nearest with {transform!r} is not supported")
    rounding = node.text("nearest_mode", "round_prefer_floor")
    if rounding == "floor":
        index = torch.floor(coordinate)
    elif rounding == "ceil":
        index = torch.ceil(coordinate)
    elif rounding == "round_prefer_ceil":
        index = torch.floor(coordinate + 0.5)
    elif rounding == "round_prefer_floor":
        index = torch.ceil(coordinate - 0.5)
    else:
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with nearest_mode={rounding!r} is not supported")
    return index.long().clamp(0, length - 1)


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


OPS: dict[str, Callable] = {
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
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Shape": _shape,
    "Gather": _gather,
    "Slice": _slice,
    "Concat": _concat,
    "Split": _split,
    "Transpose": _transpose,
    "Cast": _cast,
    "Clip": _clip,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _resize,
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
