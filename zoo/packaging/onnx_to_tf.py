"""Translate an ONNX graph into a TensorFlow SavedModel, op by op, keeping dynamic batch and spatial axes.

Why not onnx2tf: it pins numpy 1.26, onnx 1.19, protobuf 4 and tensorflow 2.19 (which breaks the
bioimageio/tensorflow-cpu 2.21 stack), fails on ONNX files with dynamic spatial axes, and writes NHWC
outputs where the rdf describes NCHW. This translator covers the ops of the zoo's networks (2D and 3D U-Nets,
image classifiers, and most plain CNNs); any other op stops the conversion with its name, so the caller can say
what to try.

Layout: 4-D (NCHW) and 5-D (NCDHW) activations run channels last inside (NHWC, NDHWC: TensorFlow's CPU kernels
want channels last); every other tensor (a classifier's (N, C) scores, shape vectors) keeps the ONNX layout. The
SavedModel's signature takes and returns the ONNX layout, so every weight format of a package shares one set of
tensor descriptions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from zoo.errors import ExportError

SPATIAL_RANKS = (4, 5)  # NCHW and NCDHW run channels last inside


def to_channels_last(rank: int) -> tuple[int, ...]:
    """The permutation NC… → N…C: (0, 2, 3, 1) for rank 4, (0, 2, 3, 4, 1) for rank 5."""
    return (0, *range(2, rank), 1)


def to_channels_first(rank: int) -> tuple[int, ...]:
    """The permutation N…C → NC…, the inverse of to_channels_last."""
    return (0, rank - 1, *range(1, rank - 1))


class UnsupportedOp(ExportError):
    def __init__(self, op_type: str, node_name: str, detail: str = ""):
        self.op_type = op_type
        super().__init__(
            f"tensorflow_saved_model_bundle: ONNX op {op_type} (node {node_name!r}) {detail or 'is not supported'} "
            "by zoo's ONNX→TensorFlow translator; export torchscript/onnx only (--formats torchscript,onnx) "
            "or replace the layer"
        )


class _Value(NamedTuple):
    """A computed tensor; `channels_last`: it is the ONNX tensor permuted by to_channels_last(rank)."""

    tensor: object
    channels_last: bool


class _Constant(NamedTuple):
    """An initializer or Constant node's value, laid out by whoever uses it."""

    name: str
    value: np.ndarray


def _attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _spatial_padding(pads: list[int]) -> list[list[int]]:
    """ONNX [z0, y0, x0, z1, y1, x1] (or [y0, x0, y1, x1]) → tf.pad's channels-last
    [[0,0],[z0,z1],[y0,y1],[x0,x1],[0,0]]."""
    half = len(pads) // 2
    return [[0, 0], *([pads[i], pads[i + half]] for i in range(half)), [0, 0]]


class _Translator:
    """Builds a TF function from the graph; float initializers become tf.Variables (folded into constants when
    the SavedModel is frozen)."""

    def __init__(self, model):
        import onnx.numpy_helper
        import tensorflow as tf

        self.tf = tf
        self.graph = model.graph
        self.constants: dict[str, np.ndarray] = {
            init.name: onnx.numpy_helper.to_array(init) for init in self.graph.initializer
        }
        for node in self.graph.node:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = onnx.numpy_helper.to_array(_attributes(node)["value"])
            elif node.op_type == "Identity" and node.input[0] in self.constants:  # shared parameters
                self.constants[node.output[0]] = self.constants[node.input[0]]
        self.variables: dict[tuple, object] = {}
        for node in self.graph.node:
            self._check(node)

    def _check(self, node) -> None:
        """Reject what the translation cannot reproduce, before anything is built."""
        if node.op_type not in OPS:
            raise UnsupportedOp(node.op_type, node.name)
        attributes = _attributes(node)
        if attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise UnsupportedOp(node.op_type, node.name, "with auto_pad is not supported")
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = self.constants.get(node.input[1])
            if weight is None:
                raise UnsupportedOp(node.op_type, node.name, "with a computed (non-constant) weight is not supported")
            if weight.ndim not in SPATIAL_RANKS:
                raise UnsupportedOp(
                    node.op_type, node.name, f"with a {weight.ndim - 2}-D kernel is not supported (2-D and 3-D are)"
                )
            if attributes.get("group", 1) != 1:
                raise UnsupportedOp(node.op_type, node.name, f"with group={attributes['group']} is not supported")
            if weight.ndim == 5 and any(d != 1 for d in attributes.get("dilations", [1])):
                # TensorFlow's CPU Conv3D kernel (without oneDNN, as in Fiji's TF 2.7) has no dilations
                raise UnsupportedOp(node.op_type, node.name, "with a dilated 3-D kernel is not supported")
        if node.op_type == "ConvTranspose":
            if any(attributes.get("pads", [0])) or "output_shape" in attributes:
                raise UnsupportedOp(node.op_type, node.name, "with padding or output_shape is not supported")
            if any(d != 1 for d in attributes.get("dilations", [1])):
                raise UnsupportedOp(node.op_type, node.name, "with dilations is not supported")
        if node.op_type in ("MaxPool", "AveragePool"):
            if len(attributes["kernel_shape"]) not in (2, 3):
                raise UnsupportedOp(
                    node.op_type, node.name, f"with a {len(attributes['kernel_shape'])}-D window is not supported"
                )
            if attributes.get("ceil_mode", 0):
                raise UnsupportedOp(node.op_type, node.name, "with ceil_mode=1 is not supported")
            if any(d != 1 for d in attributes.get("dilations", [1])):
                raise UnsupportedOp(node.op_type, node.name, "with dilations is not supported")
            if (
                node.op_type == "AveragePool"
                and any(attributes.get("pads", [0]))
                and not attributes.get("count_include_pad", 0)
            ):
                raise UnsupportedOp(node.op_type, node.name, "with padding and count_include_pad=0 is not supported")
        if node.op_type == "BatchNormalization" and not all(name in self.constants for name in node.input[1:5]):
            raise UnsupportedOp(node.op_type, node.name, "with computed statistics is not supported")
        if node.op_type == "Reshape" and attributes.get("allowzero", 0):
            raise UnsupportedOp(node.op_type, node.name, "with allowzero=1 is not supported")

    def variable(self, name: str, value: np.ndarray, layout: str = ""):
        """A float constant as a variable (an int one as a tf.constant), created once per name and layout."""
        if value.dtype.kind in "iub":
            return self.tf.constant(value)
        value = value.astype(np.float32) if value.dtype == np.float64 else value
        key = (name, layout, value.shape)
        if key not in self.variables:
            safe = "".join(c if c.isalnum() else "_" for c in f"{name}_{layout}").strip("_") or "w"
            self.variables[key] = self.tf.Variable(value, trainable=False, name=safe)
        return self.variables[key]

    def run(self, inputs: dict[str, object]) -> dict[str, object]:
        """Execute the graph on ONNX-layout inputs (inside a tf.function); returns ONNX-layout outputs by name."""
        values: dict[str, _Value] = {}
        for name, tensor in inputs.items():
            rank = len(tensor.shape)
            if rank in SPATIAL_RANKS:
                values[name] = _Value(self.tf.transpose(tensor, to_channels_last(rank)), True)
            else:
                values[name] = _Value(tensor, False)
        for node in self.graph.node:
            if node.op_type == "Constant" or node.output[0] in self.constants:
                continue
            operands = [self._operand(name, values) for name in node.input]
            outputs = OPS[node.op_type](self, node, _attributes(node), operands)
            for name, output in zip(node.output, outputs):
                values[name] = output
        return {output.name: self.channels_first(self._operand(output.name, values)) for output in self.graph.output}

    def _operand(self, name: str, values):
        if not name:
            return None  # an optional input left out
        if name in values:
            return values[name]
        if name in self.constants:
            return _Constant(name, self.constants[name])
        raise ExportError(f"tensorflow_saved_model_bundle: ONNX value {name!r} is used before it is computed")

    def channels_first(self, operand):
        """The operand as a TF tensor in the ONNX layout."""
        if isinstance(operand, _Constant):
            return self.variable(operand.name, operand.value)
        if operand.channels_last:
            return self.tf.transpose(operand.tensor, to_channels_first(len(operand.tensor.shape)))
        return operand.tensor

    def channels_last(self, operand):
        """A 4-D or 5-D operand as a channels-last TF tensor (what convolutions and pooling take)."""
        if isinstance(operand, _Value) and operand.channels_last:
            return operand.tensor
        tensor = self.channels_first(operand)
        return self.tf.transpose(tensor, to_channels_last(len(tensor.shape)))

    def aligned(self, operands) -> tuple[list, bool]:
        """Operands of an elementwise op in one layout: channels last when every computed operand is (constants are
        broadcast to that rank and permuted to match), else the ONNX layout."""
        computed = [o for o in operands if isinstance(o, _Value)]
        ranks = {len(o.tensor.shape) for o in computed}
        if not computed or len(ranks) != 1 or not all(o.channels_last for o in computed):
            return [self.channels_first(o) for o in operands], False
        rank = ranks.pop()
        tensors = []
        for operand in operands:
            if isinstance(operand, _Value):
                tensors.append(operand.tensor)
            elif operand.value.ndim == 0 or operand.value.ndim > rank:
                tensors.append(self.channels_first(operand))
            else:
                value = operand.value.reshape((1,) * (rank - operand.value.ndim) + operand.value.shape)
                tensors.append(self.variable(operand.name, value.transpose(to_channels_last(rank)), "last"))
        return tensors, True


def _constant_input(node, operand, what: str) -> np.ndarray:
    if not isinstance(operand, _Constant):
        raise UnsupportedOp(node.op_type, node.name, f"with a computed {what} is not supported")
    return operand.value


def _rank(operand) -> int:
    return operand.value.ndim if isinstance(operand, _Constant) else len(operand.tensor.shape)


def _conv(t: _Translator, node, attributes, operands):
    tf = t.tf
    weight = operands[1].value  # (O, I, *kernel)
    spatial = weight.ndim - 2
    kernel = t.variable(node.input[1], weight.transpose(*range(2, weight.ndim), 1, 0), "kernel")  # (*kernel, I, O)
    x = t.channels_last(operands[0])
    pads = attributes.get("pads", [0] * 2 * spatial)
    if any(pads):
        x = tf.pad(x, _spatial_padding(pads))
    strides = [1, *attributes.get("strides", [1] * spatial), 1]
    dilations = [1, *attributes.get("dilations", [1] * spatial), 1]
    convolve = tf.nn.conv2d if spatial == 2 else tf.nn.conv3d
    y = convolve(x, kernel, strides=strides, padding="VALID", dilations=dilations)
    if len(operands) > 2 and operands[2] is not None:
        y = y + t.variable(node.input[2], _constant_input(node, operands[2], "bias"))
    return [_Value(y, True)]


def _conv_transpose(t: _Translator, node, attributes, operands):
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
        y = y + t.variable(node.input[2], _constant_input(node, operands[2], "bias"))
    return [_Value(y, True)]


def _pool(kind: str):
    def pool(t: _Translator, node, attributes, operands):
        tf = t.tf
        x = t.channels_last(operands[0])
        window = attributes["kernel_shape"]
        pads = attributes.get("pads", [0] * 2 * len(window))
        if any(pads):
            x = tf.pad(x, _spatial_padding(pads), constant_values=-np.inf if kind == "MAX" else 0.0)
        y = tf.nn.pool(
            x, window_shape=window, pooling_type=kind, padding="VALID", strides=attributes.get("strides", window)
        )
        return [_Value(y, True)]

    return pool


def _global_pool(function_name: str):
    def global_pool(t: _Translator, node, attributes, operands):
        x = t.channels_last(operands[0])
        axes = list(range(1, len(x.shape) - 1))
        return [_Value(getattr(t.tf.math, function_name)(x, axis=axes, keepdims=True), True)]

    return global_pool


def _reduce(function_name: str):
    """ReduceMean and kin: axes from the attribute (opset < 18) or the second input (opset 18)."""

    def reduce(t: _Translator, node, attributes, operands):
        function = getattr(t.tf.math, function_name)
        x = operands[0]
        rank = _rank(x)
        axes = attributes.get("axes")
        if len(operands) > 1 and operands[1] is not None:
            axes = _constant_input(node, operands[1], "axes").tolist()
        if not axes:
            if attributes.get("noop_with_empty_axes", 0):
                return [x]
            axes = list(range(rank))
        axes = sorted(a % rank for a in axes)
        keepdims = bool(attributes.get("keepdims", 1))
        if isinstance(x, _Value) and x.channels_last and (keepdims or axes == list(range(2, rank))):
            # keepdims keeps the channels-last layout; dropping every spatial axis leaves (N, C) in either layout
            mapped = [to_channels_last(rank).index(a) for a in axes]
            return [_Value(function(x.tensor, axis=mapped, keepdims=keepdims), keepdims)]
        return [_Value(function(t.channels_first(x), axis=axes, keepdims=keepdims), False)]

    return reduce


def _flatten(t: _Translator, node, attributes, operands):
    tf = t.tf
    x = t.channels_first(operands[0])
    axis = attributes.get("axis", 1) % max(len(x.shape), 1)
    if axis == 0:
        return [_Value(tf.reshape(x, [1, -1]), False)]
    leading = tf.reduce_prod(tf.shape(x)[:axis])
    return [_Value(tf.reshape(x, tf.stack([leading, -1])), False)]


def _reshape(t: _Translator, node, attributes, operands):
    tf = t.tf
    x = t.channels_first(operands[0])
    if isinstance(operands[1], _Constant):
        shape = operands[1].value.astype(np.int64).tolist()
        if 0 in shape:  # ONNX: 0 copies the input's size on that axis
            dynamic = tf.shape(x, out_type=tf.int64)
            shape = tf.stack([dynamic[i] if s == 0 else tf.constant(s, tf.int64) for i, s in enumerate(shape)])
        return [_Value(tf.reshape(x, shape), False)]
    shape = t.channels_first(operands[1])
    length = shape.shape[0]
    if length is not None and length <= len(x.shape):
        shape = tf.where(tf.equal(shape, 0), tf.shape(x, out_type=shape.dtype)[:length], shape)
    return [_Value(tf.reshape(x, shape), False)]


def _squeeze(t: _Translator, node, attributes, operands):
    x = operands[0]
    rank = _rank(x)
    axes = attributes.get("axes")
    if len(operands) > 1 and operands[1] is not None:
        axes = _constant_input(node, operands[1], "axes").tolist()
    if axes is None:
        return [_Value(t.tf.squeeze(t.channels_first(x)), False)]
    axes = sorted(a % rank for a in axes)
    if isinstance(x, _Value) and x.channels_last and axes == list(range(2, rank)):
        return [_Value(t.tf.squeeze(x.tensor, axis=[to_channels_last(rank).index(a) for a in axes]), False)]
    return [_Value(t.tf.squeeze(t.channels_first(x), axis=axes), False)]


def _unsqueeze(t: _Translator, node, attributes, operands):
    axes = attributes.get("axes")
    if len(operands) > 1 and operands[1] is not None:
        axes = _constant_input(node, operands[1], "axes").tolist()
    x = t.channels_first(operands[0])
    rank = len(x.shape) + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = t.tf.expand_dims(x, axis)
    return [_Value(x, False)]


def _shape(t: _Translator, node, attributes, operands):
    tf = t.tf
    x = operands[0]
    rank = _rank(x)
    if isinstance(x, _Constant):
        shape = tf.constant(np.array(x.value.shape, np.int64))
    else:
        shape = tf.shape(x.tensor, out_type=tf.int64)
        if x.channels_last:
            shape = tf.gather(shape, to_channels_first(rank))
    start, end = attributes.get("start", 0), attributes.get("end")
    if start or end is not None:
        shape = shape[start:end]
    return [_Value(shape, False)]


def _gather(t: _Translator, node, attributes, operands):
    data = t.channels_first(operands[0])
    axis = attributes.get("axis", 0) % len(data.shape)
    if isinstance(operands[1], _Constant):
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
    return [_Value(t.tf.gather(data, indices, axis=axis), False)]


def _gemm(t: _Translator, node, attributes, operands):
    """alpha · A' B' + beta · C; a constant B is transposed once, here, so the graph holds a plain MatMul."""
    tf = t.tf
    a = t.channels_first(operands[0])
    if attributes.get("transA", 0):
        a = tf.transpose(a)
    if isinstance(operands[1], _Constant):
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
        if isinstance(operands[2], _Constant):
            c = t.variable(node.input[2], operands[2].value * beta, "" if beta == 1.0 else f"beta{beta}")
        else:
            c = t.channels_first(operands[2]) * beta
        y = y + c
    return [_Value(y, False)]


def _matmul(t: _Translator, node, attributes, operands):
    if any(_rank(o) < 2 for o in operands):
        raise UnsupportedOp(node.op_type, node.name, "with a 1-D operand is not supported")
    a, b = (t.channels_first(o) for o in operands)
    return [_Value(t.tf.linalg.matmul(a, b), False)]


def _unary(function_name: str):
    def unary(t: _Translator, node, attributes, operands):
        x = operands[0]
        if isinstance(x, _Constant):
            x = _Value(t.channels_first(x), False)
        function = getattr(t.tf.nn if hasattr(t.tf.nn, function_name) else t.tf.math, function_name)
        return [_Value(function(x.tensor), x.channels_last)]

    return unary


def _binary(function_name: str):
    def binary(t: _Translator, node, attributes, operands):
        (a, b), channels_last = t.aligned(operands)
        return [_Value(getattr(t.tf.math, function_name)(a, b), channels_last)]

    return binary


def _concat(t: _Translator, node, attributes, operands):
    tensors, channels_last = t.aligned(operands)
    rank = len(tensors[0].shape)
    axis = attributes["axis"] % rank
    if channels_last:
        axis = to_channels_last(rank).index(axis)
    return [_Value(t.tf.concat(tensors, axis=axis), channels_last)]


def _softmax(t: _Translator, node, attributes, operands):
    x = operands[0]
    rank = _rank(x)
    axis = attributes.get("axis", -1) % rank
    if isinstance(x, _Value) and x.channels_last:
        return [_Value(t.tf.nn.softmax(x.tensor, axis=to_channels_last(rank).index(axis)), True)]
    return [_Value(t.tf.nn.softmax(t.channels_first(x), axis=axis), False)]


def _leaky_relu(t: _Translator, node, attributes, operands):
    x = operands[0]
    if isinstance(x, _Constant):
        x = _Value(t.channels_first(x), False)
    return [_Value(t.tf.nn.leaky_relu(x.tensor, alpha=attributes.get("alpha", 0.01)), x.channels_last)]


def _identity(t: _Translator, node, attributes, operands):
    return [operands[0]]


def _batch_norm(t: _Translator, node, attributes, operands):
    x = operands[0]
    rank = _rank(x)
    scale, bias, mean, variance = (o.value for o in operands[1:5])
    factor = scale / np.sqrt(variance + attributes.get("epsilon", 1e-5))
    shift = bias - mean * factor
    channels_last = isinstance(x, _Value) and x.channels_last
    shape = (1,) * (rank - 1) + (-1,) if channels_last else (1, -1) + (1,) * (rank - 2)
    tensor = x.tensor if channels_last else t.channels_first(x)
    layout = f"bn{rank}{'last' if channels_last else 'first'}"
    return [
        _Value(
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
    "LeakyRelu": _leaky_relu,
    "Add": _binary("add"),
    "Sub": _binary("subtract"),
    "Mul": _binary("multiply"),
    "Div": _binary("divide"),
    "Concat": _concat,
    "Softmax": _softmax,
    "Identity": _identity,
    "BatchNormalization": _batch_norm,
    "Constant": _identity,
}


def onnx_to_saved_model(
    onnx_path: Path,
    out_dir: Path,
    input_ids: list[str],
    output_ids: list[str],
    example_shapes: list[tuple[int, ...]] | None = None,
) -> None:
    """Write a SavedModel whose `serving_default` signature takes the ONNX inputs named by the rdf input ids
    and returns a dict keyed by the rdf output ids. Axes the ONNX graph declares dynamic stay dynamic.
    `example_shapes`: one valid shape per input, for the run that creates the variables (else 64 on each
    dynamic axis)."""
    import onnx
    import tensorflow as tf

    model = onnx.load(str(onnx_path))
    translator = _Translator(model)
    graph_inputs = [i for i in model.graph.input if i.name not in translator.constants]
    if len(graph_inputs) != len(input_ids) or len(model.graph.output) != len(output_ids):
        raise ExportError(
            f"tensorflow_saved_model_bundle: the ONNX graph has {len(graph_inputs)} inputs and "
            f"{len(model.graph.output)} outputs, the rdf {len(input_ids)} and {len(output_ids)}"
        )
    specs = []
    for graph_input, input_id in zip(graph_inputs, input_ids):
        dims = [
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in graph_input.type.tensor_type.shape.dim
        ]
        specs.append(tf.TensorSpec(dims, tf.float32, name=input_id))
    onnx_names = [i.name for i in graph_inputs]
    onnx_outputs = [o.name for o in model.graph.output]

    # one eager run creates every variable, so that tracing below only reads them
    shapes = example_shapes or [[d or 64 for d in spec.shape] for spec in specs]
    translator.run({name: tf.zeros(list(shape), tf.float32) for name, shape in zip(onnx_names, shapes)})

    def serve(*tensors):
        results = translator.run(dict(zip(onnx_names, tensors)))
        return {
            output_id: tf.identity(results[name], name=output_id) for name, output_id in zip(onnx_outputs, output_ids)
        }

    from zoo.packaging.exporters.saved_model import save_frozen_saved_model

    save_frozen_saved_model(tf.function(serve, input_signature=specs), out_dir, input_ids, output_ids)
