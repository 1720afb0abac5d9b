"""The op translations of the ONNX→TensorFlow translator (zoo.packaging.onnx_to_tf), one function per ONNX op
type: each takes the translator, the node, its attributes and its operands (Value or Constant) and returns the
node's outputs as Values, channels last where the layout allows (see zoo.packaging.onnx_to_tf)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from zoo.packaging.onnx_to_tf_values import (
    SPATIAL_RANKS,
    Constant,
    UnsupportedOp,
    Value,
    constant_input,
    rank_of,
    spatial_padding,
    text_attribute,
    to_channels_first,
    to_channels_last,
)

if TYPE_CHECKING:
    from zoo.packaging.onnx_to_tf import Translator


def _conv(t: Translator, node, attributes, operands):
    tf = t.tf
    weight = operands[1].value  # (O, I, *kernel)
    spatial = weight.ndim - 2
    kernel = t.variable(node.input[1], weight.transpose(*range(2, weight.ndim), 1, 0), "kernel")  # (*kernel, I, O)
    x = t.channels_last(operands[0])
    pads = attributes.get("pads", [0] * 2 * spatial)
    if any(pads):
        x = tf.pad(x, spatial_padding(pads))
    strides = [1, *attributes.get("strides", [1] * spatial), 1]
    dilations = [1, *attributes.get("dilations", [1] * spatial), 1]
    convolve = tf.nn.conv2d if spatial == 2 else tf.nn.conv3d
    y = convolve(x, kernel, strides=strides, padding="VALID", dilations=dilations)
    if len(operands) > 2 and operands[2] is not None:
        y = y + t.variable(node.input[2], constant_input(node, operands[2], "bias"))
    return [Value(y, True)]


def _conv_transpose(t: Translator, node, attributes, operands):
    tf = t.tf
    weight = operands[1].value  # (I, O, *kernel)
    spatial = weight.ndim - 2
    kernel_shape = weight.shape[2:]
    strides = attributes.get("strides", [1] * spatial)
    output_padding = attributes.get("output_padding", [0] * spatial)
    kernel = t.variable(node.input[1], weight.transpose(*range(2, weight.ndim), 1, 0), "kernel")  # (*kernel, O, I)
    x = t.channels_last(operands[0])
    shape = tf.shape(x)
    output_shape = tf.stack(
        [
            shape[0],
            *((shape[i + 1] - 1) * strides[i] + kernel_shape[i] + output_padding[i] for i in range(spatial)),
            weight.shape[1],
        ]
    )
    transpose = tf.nn.conv2d_transpose if spatial == 2 else tf.nn.conv3d_transpose
    y = transpose(x, kernel, output_shape, strides=[1, *strides, 1], padding="VALID")
    if len(operands) > 2 and operands[2] is not None:
        y = y + t.variable(node.input[2], constant_input(node, operands[2], "bias"))
    return [Value(y, True)]


def _pool(kind: str):
    def pool(t: Translator, node, attributes, operands):
        tf = t.tf
        x = t.channels_last(operands[0])
        window = attributes["kernel_shape"]
        pads = attributes.get("pads", [0] * 2 * len(window))
        if any(pads):
            x = tf.pad(x, spatial_padding(pads), constant_values=-np.inf if kind == "MAX" else 0.0)
        y = tf.nn.pool(
            x, window_shape=window, pooling_type=kind, padding="VALID", strides=attributes.get("strides", window)
        )
        return [Value(y, True)]

    return pool


def _global_pool(function_name: str):
    def global_pool(t: Translator, node, attributes, operands):
        x = t.channels_last(operands[0])
        axes = list(range(1, len(x.shape) - 1))
        return [Value(getattr(t.tf.math, function_name)(x, axis=axes, keepdims=True), True)]

    return global_pool


def _reduce(function_name: str):
    """ReduceMean and kin: axes from the attribute (opset < 18) or the second input (opset 18)."""

    def reduce(t: Translator, node, attributes, operands):
        function = getattr(t.tf.math, function_name)
        x = operands[0]
        rank = rank_of(x)
        axes = attributes.get("axes")
        if len(operands) > 1 and operands[1] is not None:
            axes = constant_input(node, operands[1], "axes").tolist()
        if not axes:
            if attributes.get("noop_with_empty_axes", 0):
                return [x]
            axes = list(range(rank))
        axes = sorted(a % rank for a in axes)
        keepdims = bool(attributes.get("keepdims", 1))
        if isinstance(x, Value) and x.channels_last and (keepdims or axes == list(range(2, rank))):
            # keepdims keeps the channels-last layout; dropping every spatial axis leaves (N, C) in either layout
            mapped = [to_channels_last(rank).index(a) for a in axes]
            return [Value(function(x.tensor, axis=mapped, keepdims=keepdims), keepdims)]
        return [Value(function(t.channels_first(x), axis=axes, keepdims=keepdims), False)]

    return reduce


def _flatten(t: Translator, node, attributes, operands):
    tf = t.tf
    x = t.channels_first(operands[0])
    axis = attributes.get("axis", 1) % max(len(x.shape), 1)
    if axis == 0:
        return [Value(tf.reshape(x, [1, -1]), False)]
    leading = tf.reduce_prod(tf.shape(x)[:axis])
    return [Value(tf.reshape(x, tf.stack([leading, -1])), False)]


def _reshape(t: Translator, node, attributes, operands):
    tf = t.tf
    x = t.channels_first(operands[0])
    if isinstance(operands[1], Constant):
        shape = operands[1].value.astype(np.int64).tolist()
        if 0 in shape:  # ONNX: 0 copies the input's size on that axis
            dynamic = tf.shape(x, out_type=tf.int64)
            shape = tf.stack([dynamic[i] if s == 0 else tf.constant(s, tf.int64) for i, s in enumerate(shape)])
        return [Value(tf.reshape(x, shape), False)]
    shape = t.channels_first(operands[1])
    length = shape.shape[0]
    if length is not None and length <= len(x.shape):
        shape = tf.where(tf.equal(shape, 0), tf.shape(x, out_type=shape.dtype)[:length], shape)
    return [Value(tf.reshape(x, shape), False)]


def _squeeze(t: Translator, node, attributes, operands):
    x = operands[0]
    rank = rank_of(x)
    axes = attributes.get("axes")
    if len(operands) > 1 and operands[1] is not None:
        axes = constant_input(node, operands[1], "axes").tolist()
    if axes is None:
        return [Value(t.tf.squeeze(t.channels_first(x)), False)]
    axes = sorted(a % rank for a in axes)
    if isinstance(x, Value) and x.channels_last and axes == list(range(2, rank)):
        return [Value(t.tf.squeeze(x.tensor, axis=[to_channels_last(rank).index(a) for a in axes]), False)]
    return [Value(t.tf.squeeze(t.channels_first(x), axis=axes), False)]


def _unsqueeze(t: Translator, node, attributes, operands):
    axes = attributes.get("axes")
    if len(operands) > 1 and operands[1] is not None:
        axes = constant_input(node, operands[1], "axes").tolist()
    x = t.channels_first(operands[0])
    rank = len(x.shape) + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = t.tf.expand_dims(x, axis)
    return [Value(x, False)]


def _shape(t: Translator, node, attributes, operands):
    tf = t.tf
    x = operands[0]
    rank = rank_of(x)
    if isinstance(x, Constant):
        shape = tf.constant(np.array(x.value.shape, np.int64))
    else:
        shape = tf.shape(x.tensor, out_type=tf.int64)
        if x.channels_last:
            shape = tf.gather(shape, to_channels_first(rank))
    start, end = attributes.get("start", 0), attributes.get("end")
    if start or end is not None:
        shape = shape[start:end]
    return [Value(shape, False)]


def _gather(t: Translator, node, attributes, operands):
    data = t.channels_first(operands[0])
    axis = attributes.get("axis", 0) % len(data.shape)
    if isinstance(operands[1], Constant):
        indices = operands[1].value
        if (indices < 0).any():
            size = data.shape[axis]
            if size is None:
                raise UnsupportedOp(
                    node.op_type, node.name, "with negative indices on an axis of unknown size is not supported"
                )
            indices = np.where(indices < 0, indices + size, indices)
        indices = t.tf.constant(indices)
    else:
        indices = t.channels_first(operands[1])
    return [Value(t.tf.gather(data, indices, axis=axis), False)]


def _gemm(t: Translator, node, attributes, operands):
    """alpha · A' B' + beta · C; a constant B is transposed once, here, so the graph holds a plain MatMul."""
    tf = t.tf
    a = t.channels_first(operands[0])
    if attributes.get("transA", 0):
        a = tf.transpose(a)
    if isinstance(operands[1], Constant):
        b = operands[1].value
        transposed = bool(attributes.get("transB", 0))
        b = t.variable(node.input[1], b.T if transposed else b, "transposed" if transposed else "")
    else:
        b = t.channels_first(operands[1])
        if attributes.get("transB", 0):
            b = tf.transpose(b)
    y = tf.linalg.matmul(a, b)
    if attributes.get("alpha", 1.0) != 1.0:
        y = y * attributes["alpha"]
    if len(operands) > 2 and operands[2] is not None:
        beta = attributes.get("beta", 1.0)
        if isinstance(operands[2], Constant):
            c = t.variable(node.input[2], operands[2].value * beta, "" if beta == 1.0 else f"beta{beta}")
        else:
            c = t.channels_first(operands[2]) * beta
        y = y + c
    return [Value(y, False)]


def _matmul(t: Translator, node, attributes, operands):
    if any(rank_of(o) < 2 for o in operands):
        raise UnsupportedOp(node.op_type, node.name, "with a 1-D operand is not supported")
    a, b = (t.channels_first(o) for o in operands)
    return [Value(t.tf.linalg.matmul(a, b), False)]


def _unary(function_name: str):
    def unary(t: Translator, node, attributes, operands):
        x = operands[0]
        if isinstance(x, Constant):
            x = Value(t.channels_first(x), False)
        function = getattr(t.tf.nn if hasattr(t.tf.nn, function_name) else t.tf.math, function_name)
        return [Value(function(x.tensor), x.channels_last)]

    return unary


def _binary(function_name: str):
    def binary(t: Translator, node, attributes, operands):
        (a, b), channels_last = t.aligned(operands)
        return [Value(getattr(t.tf.math, function_name)(a, b), channels_last)]

    return binary


def _concat(t: Translator, node, attributes, operands):
    tensors, channels_last = t.aligned(operands)
    rank = len(tensors[0].shape)
    axis = attributes["axis"] % rank
    if channels_last:
        axis = to_channels_last(rank).index(axis)
    return [Value(t.tf.concat(tensors, axis=axis), channels_last)]


def _transpose(t: Translator, node, attributes, operands):
    """Transpose by `perm` (default: the axes reversed) in the ONNX layout. A channels-last operand whose `perm`
    moves the channels last (a head that returns channels last, as StarDist's does) is that tensor already."""
    x = operands[0]
    rank = rank_of(x)
    perm = tuple(int(p) % rank for p in attributes.get("perm", range(rank - 1, -1, -1)))
    if isinstance(x, Value) and x.channels_last and perm == to_channels_last(rank):
        return [Value(x.tensor, False)]
    return [Value(t.tf.transpose(t.channels_first(x), perm), False)]


def _softmax(t: Translator, node, attributes, operands):
    x = operands[0]
    rank = rank_of(x)
    axis = attributes.get("axis", -1) % rank
    if isinstance(x, Value) and x.channels_last:
        return [Value(t.tf.nn.softmax(x.tensor, axis=to_channels_last(rank).index(axis)), True)]
    return [Value(t.tf.nn.softmax(t.channels_first(x), axis=axis), False)]


def _leaky_relu(t: Translator, node, attributes, operands):
    x = operands[0]
    if isinstance(x, Constant):
        x = Value(t.channels_first(x), False)
    return [Value(t.tf.nn.leaky_relu(x.tensor, alpha=attributes.get("alpha", 0.01)), x.channels_last)]


def _slice(t: Translator, node, attributes, operands):
    """Constant starts, ends, axes and steps (inputs at opset 10+, attributes before); ends past the axis clamp, as
    in Python."""
    x = operands[0]
    rank = rank_of(x)
    if len(operands) > 1:
        starts, ends = (constant_input(node, o, what) for o, what in zip(operands[1:3], ("starts", "ends")))
        axes = constant_input(node, operands[3], "axes") if len(operands) > 3 and operands[3] is not None else None
        steps = constant_input(node, operands[4], "steps") if len(operands) > 4 and operands[4] is not None else None
    else:
        starts, ends, axes, steps = attributes["starts"], attributes["ends"], attributes.get("axes"), None
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    channels_last = isinstance(x, Value) and x.channels_last
    tensor = x.tensor if channels_last else t.channels_first(x)
    limit = np.iinfo(np.int32).max  # INT64_MAX/MIN ("to the end") as an index TensorFlow takes
    index = [slice(None)] * rank
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = int(axis) % rank
        if channels_last:
            axis = to_channels_last(rank).index(axis)
        index[axis] = slice(*(int(np.clip(v, -limit, limit)) for v in (start, end, step)))
    return [Value(tensor[tuple(index)], channels_last)]


def _cast(t: Translator, node, attributes, operands):
    import onnx

    try:
        dtype = t.tf.as_dtype(onnx.helper.tensor_dtype_to_np_dtype(attributes["to"]))
    except (KeyError, TypeError, ValueError) as e:
        raise UnsupportedOp(node.op_type, node.name, f"to ONNX type {attributes['to']} is not supported") from e
    x = operands[0]
    if isinstance(x, Constant):
        x = Value(t.channels_first(x), False)
    return [Value(t.tf.cast(x.tensor, dtype), x.channels_last)]


def _resize(t: Translator, node, attributes, operands):
    """Resize of the spatial axes (the cases the limits in zoo.packaging.onnx_to_tf let through). Nearest picks input
    elements per axis by ONNX's own coordinate and rounding formulas (tf.gather: the same elements, so exact); linear
    is TensorFlow's ResizeBilinear, whose coordinates are ONNX's for these cases (3-D: y and x, then z, which is
    the same trilinear interpolation)."""
    tf = t.tf
    rank = rank_of(operands[0])
    if rank not in SPATIAL_RANKS:
        raise UnsupportedOp(node.op_type, node.name, f"on a {rank}-D tensor is not supported (4-D and 5-D are)")
    x = t.channels_last(operands[0])
    shape = tf.shape(x)
    lengths = [shape[axis] for axis in range(1, rank - 1)]
    scales = operands[2] if len(operands) > 2 and isinstance(operands[2], Constant) else None
    if scales is not None and scales.value.size:
        if scales.value.size != rank:
            raise UnsupportedOp(node.op_type, node.name, f"with {scales.value.size} scales on a {rank}-D tensor")
        factors = [float(f) for f in scales.value[2:]]
        # ONNX: output length = floor(length · scale), in float32 as onnxruntime computes it
        sizes = [tf.cast(tf.floor(tf.cast(n, tf.float32) * f), tf.int32) for n, f in zip(lengths, factors)]
    else:
        sizes = _resize_sizes(t, node, operands[3], x, rank)
        factors = [None] * (rank - 2)
    if text_attribute(attributes, "mode", "nearest") == "linear":
        y = _bilinear(tf, x, sizes, text_attribute(attributes, "coordinate_transformation_mode", "half_pixel"))
        return [Value(y if y.dtype == x.dtype else tf.cast(y, x.dtype), True)]
    for axis, (length, size, factor) in enumerate(zip(lengths, sizes, factors), start=1):
        if factor != 1.0:  # a scale of 1 maps every position onto itself in every mode
            x = tf.gather(x, _nearest_indices(tf, attributes, length, size, factor), axis=axis)
    return [Value(x, True)]


def _resize_sizes(t: Translator, node, operand, x, rank: int) -> list:
    """The spatial output lengths from Resize's sizes input (constant or computed, in the ONNX layout). Its batch and
    channel entries must be the input's: constant ones are checked against the lengths the tensor knows (its
    channels, and its batch on the run that creates the variables); computed ones are taken from the input's own
    shape by the exporters that write them (PyTorch: Shape, Slice, Concat)."""
    tf = t.tf
    if isinstance(operand, Constant):
        sizes = operand.value
        if sizes.size != rank:
            raise UnsupportedOp(node.op_type, node.name, f"with {sizes.size} sizes on a {rank}-D tensor")
        kept = (x.shape[0], x.shape[-1])
        if any(known is not None and known != int(size) for known, size in zip(kept, sizes[:2])):
            raise UnsupportedOp(
                node.op_type,
                node.name,
                f"with sizes {sizes.tolist()} that change the batch or channel axis {kept} is not supported",
            )
        return [tf.constant(int(size), tf.int32) for size in sizes[2:]]
    sizes = tf.cast(t.channels_first(operand), tf.int32)
    return [sizes[i] for i in range(2, rank)]


def _nearest_indices(tf, attributes, length, size, factor: float | None):
    """The input position each of `size` outputs takes along an axis of `length`, by onnxruntime's float32 formulas:
    the coordinate transformation (with `factor`, or size/length where sizes are given), then nearest_mode, then
    clamped into the axis."""
    transform = text_attribute(attributes, "coordinate_transformation_mode", "half_pixel")
    rounding = text_attribute(attributes, "nearest_mode", "round_prefer_floor")
    # DivNoNan, not RealDiv: TensorFlow's graph optimizer turns x / constant into x · (1 / constant), which rounds
    # differently and so picks other elements where a coordinate lands on a whole number
    divide = tf.math.divide_no_nan
    position = tf.cast(tf.range(size), tf.float32)
    n, m = tf.cast(length, tf.float32), tf.cast(size, tf.float32)
    scale = tf.constant(factor, tf.float32) if factor is not None else divide(m, n)
    if transform == "asymmetric":
        coordinate = divide(position, scale)
    elif transform == "align_corners":
        coordinate = divide(position * (n - 1.0), m - 1.0)  # an output of length 1 divides by 0: coordinate 0
    else:
        coordinate = divide(position + 0.5, scale) - 0.5
        if transform == "pytorch_half_pixel":
            coordinate = tf.where(size > 1, coordinate, 0.0)
    if rounding == "floor":
        index = tf.floor(coordinate)
    elif rounding == "ceil":
        index = -tf.floor(-coordinate)  # Ceil is not among the ops deepImageJ's TensorFlow is known to have
    elif rounding == "round_prefer_ceil":
        index = tf.floor(coordinate + 0.5)
    else:  # round_prefer_floor: ceil(c - 0.5)
        index = -tf.floor(0.5 - coordinate)
    return tf.clip_by_value(tf.cast(index, tf.int32), 0, length - 1)


def _bilinear(tf, x, sizes: list, transform: str):
    """ResizeBilinear in ONNX's coordinates: half_pixel (and pytorch_half_pixel for outputs longer than 1) is
    half_pixel_centers, align_corners is align_corners, asymmetric neither; a 5-D tensor is resized in y and x, then
    in z (with y·x as one axis, which a scale of 1 leaves exactly as it is)."""

    def resize(images, size):
        return tf.raw_ops.ResizeBilinear(
            images=images,
            size=tf.stack(size),
            align_corners=transform == "align_corners",
            half_pixel_centers=transform in ("half_pixel", "pytorch_half_pixel"),
        )

    if len(sizes) == 2:
        return resize(x, sizes)
    shape = tf.shape(x)
    batch, depth, height, width = (shape[i] for i in range(4))
    channels = x.shape[-1] if x.shape[-1] is not None else shape[4]
    out_depth, out_height, out_width = sizes
    planes = resize(tf.reshape(x, tf.stack([batch * depth, height, width, channels])), [out_height, out_width])
    planes = tf.reshape(planes, tf.stack([batch, depth, out_height * out_width, channels]))
    volume = resize(planes, [out_depth, out_height * out_width])
    return tf.reshape(volume, tf.stack([batch, out_depth, out_height, out_width, channels]))


def _identity(t: Translator, node, attributes, operands):
    return [operands[0]]


def _batch_norm(t: Translator, node, attributes, operands):
    x = operands[0]
    rank = rank_of(x)
    scale, bias, mean, variance = (o.value for o in operands[1:5])
    factor = scale / np.sqrt(variance + attributes.get("epsilon", 1e-5))
    shift = bias - mean * factor
    channels_last = isinstance(x, Value) and x.channels_last
    shape = (1,) * (rank - 1) + (-1,) if channels_last else (1, -1) + (1,) * (rank - 2)
    tensor = x.tensor if channels_last else t.channels_first(x)
    layout = f"bn{rank}{'last' if channels_last else 'first'}"
    return [
        Value(
            tensor * t.variable(node.input[1] + "_factor", factor.reshape(shape).astype(np.float32), layout)
            + t.variable(node.input[2] + "_shift", shift.reshape(shape).astype(np.float32), layout),
            channels_last,
        )
    ]


OPS: dict[str, Callable] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool("MAX"),
    "AveragePool": _pool("AVG"),
    "GlobalAveragePool": _global_pool("reduce_mean"),
    "GlobalMaxPool": _global_pool("reduce_max"),
    "ReduceMean": _reduce("reduce_mean"),
    "ReduceMax": _reduce("reduce_max"),
    "ReduceSum": _reduce("reduce_sum"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Shape": _shape,
    "Gather": _gather,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Relu": _unary("relu"),
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "Floor": _unary("floor"),  # e.g. an up-sampled size computed in the graph: floor(size · scale)
    "LeakyRelu": _leaky_relu,
    "Add": _binary("add"),
    "Sub": _binary("subtract"),
    "Mul": _binary("multiply"),
    "Div": _binary("divide"),
    "Concat": _concat,
    "Slice": _slice,
    "Cast": _cast,
    "Resize": _resize,
    "Softmax": _softmax,
    "Transpose": _transpose,
    "Identity": _identity,
    "BatchNormalization": _batch_norm,
    "Constant": _identity,
}
