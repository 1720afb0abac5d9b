"""The shape operations and resizing of zoo's ONNX → PyTorch translator (zoo.finetune.onnx_torch): what exporters
write around the layers (shape arithmetic, reshapes, slices, concatenation, padding) and the up-sampling of U-Nets
(Resize: nearest exactly by ONNX's own index formulas, linear as torch's interpolation where the coordinates agree)."""

from __future__ import annotations

import math
from collections.abc import Callable

from zoo.finetune.onnx_torch_ops import Node, UnsupportedOnnxOp, ints, torch_padding


def _reshape(node: Node, args):
    x, shape = args[0], ints(args[1])
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
    for axis in sorted((a % x.dim() for a in ints(axes)), reverse=True):
        x = x.squeeze(axis)
    return [x]


def _unsqueeze(node: Node, args):
    x = args[0]
    axes = node.attributes.get("axes", args[1] if len(args) > 1 else None)
    rank = x.dim() + len(ints(axes))
    for axis in sorted(a % rank for a in ints(axes)):
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
    return [out.reshape([*x.shape[:axis], *index.shape, *x.shape[axis + 1 :]])]


def _slice(node: Node, args):
    x = args[0]
    if len(args) > 1:
        starts, ends = ints(args[1]), ints(args[2])
        axes = ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
        steps = ints(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    else:
        starts, ends = ints(node.attributes["starts"]), ints(node.attributes["ends"])
        axes = ints(node.attributes.get("axes", range(len(starts))))
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
    return list(x.split(ints(sizes), dim=axis))


def _transpose(node: Node, args):
    x = args[0]
    perm = ints(node.attributes.get("perm", list(reversed(range(x.dim())))))
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


def _pad(node: Node, args):
    import torch.nn.functional as F

    x = args[0]
    pads = ints(node.attributes.get("pads", args[1] if len(args) > 1 else []))
    value = float(args[2]) if len(args) > 2 and args[2] is not None and args[2].numel() else 0.0
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(node.text("mode", "constant"))
    if mode is None or (len(args) > 3 and args[3] is not None):
        raise UnsupportedOnnxOp(node.op_type, node.name, f"with mode {node.text('mode', '')!r} or axes")
    half = len(pads) // 2
    if any(pads[:2]) or any(pads[half : half + 2]):
        raise UnsupportedOnnxOp(node.op_type, node.name, "on the batch or channel axis is not supported")
    spatial = pads[2:half] + pads[half + 2 :]
    return [F.pad(x, torch_padding(spatial), mode=mode, value=value if mode == "constant" else None)]


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
        all_sizes = ints(sizes_arg)
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


SHAPE_OPS: dict[str, Callable] = {
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
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _resize,
}
