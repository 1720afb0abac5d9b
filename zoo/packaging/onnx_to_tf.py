"""Translate an ONNX graph into a TensorFlow SavedModel, op by op, keeping dynamic batch and spatial axes.

Why not onnx2tf: it pins numpy 1.26, onnx 1.19, protobuf 4 and tensorflow 2.19 (which breaks the
bioimageio/tensorflow-cpu 2.21 stack), fails on ONNX files with dynamic spatial axes, and writes NHWC
outputs where the rdf describes NCHW. This translator covers the ops of the zoo's networks (2D and 3D U-Nets,
image classifiers, and most plain CNNs) and the upsampling (Resize) of U-Nets made elsewhere; any other op, or a
case of one that the translation cannot reproduce (LIMITS), stops the conversion with its name, so the caller can
say what to try.

Layout: 4-D (NCHW) and 5-D (NCDHW) activations run channels last inside (NHWC, NDHWC: TensorFlow's CPU kernels
want channels last); every other tensor (a classifier's (N, C) scores, shape vectors) keeps the ONNX layout. The
SavedModel's signature takes and returns the ONNX layout, so every weight format of a package shares one set of
tensor descriptions.

Here: the graph walk (Translator), what each op's translation cannot reproduce (LIMITS) and the SavedModel writer;
the op translations are in onnx_to_tf_ops, the values passed between them in onnx_to_tf_values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from zoo.errors import ExportError
from zoo.packaging.onnx_to_tf_ops import OPS
from zoo.packaging.onnx_to_tf_values import (
    NEAREST_MODES,
    RESIZE_MODES,
    RESIZE_TRANSFORMS,
    SPATIAL_RANKS,
    Constant,
    UnsupportedOp,
    Value,
    node_attributes,
    text_attribute,
    to_channels_first,
    to_channels_last,
)

__all__ = ["UnsupportedOp", "onnx_to_saved_model"]


class Translator:
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
                self.constants[node.output[0]] = onnx.numpy_helper.to_array(node_attributes(node)["value"])
            elif node.op_type == "Identity" and node.input[0] in self.constants:  # shared parameters
                self.constants[node.output[0]] = self.constants[node.input[0]]
            elif node.op_type == "Upsample":
                self.constants.update(_upsample_as_resize(node))
        self.variables: dict[tuple, object] = {}
        for node in self.graph.node:
            self._check(node)

    def _check(self, node) -> None:
        """Reject what the translation cannot reproduce, before anything is built."""
        if node.op_type not in OPS:
            raise UnsupportedOp(node.op_type, node.name)
        attributes = node_attributes(node)
        if attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise UnsupportedOp(node.op_type, node.name, "with auto_pad is not supported")
        limit = LIMITS.get(node.op_type)
        problem = limit(node, attributes, self.constants) if limit else None
        if problem:
            raise UnsupportedOp(node.op_type, node.name, problem)

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
        values: dict[str, Value] = {}
        for name, tensor in inputs.items():
            rank = len(tensor.shape)
            if rank in SPATIAL_RANKS:
                values[name] = Value(self.tf.transpose(tensor, to_channels_last(rank)), True)
            else:
                values[name] = Value(tensor, False)
        for node in self.graph.node:
            if node.op_type == "Constant" or node.output[0] in self.constants:
                continue
            operands = [self._operand(name, values) for name in node.input]
            outputs = OPS[node.op_type](self, node, node_attributes(node), operands)
            for name, output in zip(node.output, outputs):
                values[name] = output
        return {output.name: self.channels_first(self._operand(output.name, values)) for output in self.graph.output}

    def _operand(self, name: str, values):
        if not name:
            return None  # an optional input left out
        if name in values:
            return values[name]
        if name in self.constants:
            return Constant(name, self.constants[name])
        raise ExportError(f"tensorflow_saved_model_bundle: ONNX value {name!r} is used before it is computed")

    def channels_first(self, operand):
        """The operand as a TF tensor in the ONNX layout."""
        if isinstance(operand, Constant):
            return self.variable(operand.name, operand.value)
        if operand.channels_last:
            return self.tf.transpose(operand.tensor, to_channels_first(len(operand.tensor.shape)))
        return operand.tensor

    def channels_last(self, operand):
        """A 4-D or 5-D operand as a channels-last TF tensor (what convolutions and pooling take)."""
        if isinstance(operand, Value) and operand.channels_last:
            return operand.tensor
        tensor = self.channels_first(operand)
        return self.tf.transpose(tensor, to_channels_last(len(tensor.shape)))

    def aligned(self, operands) -> tuple[list, bool]:
        """Operands of an elementwise op in one layout: channels last when every computed operand is (constants are
        broadcast to that rank and permuted to match), else the ONNX layout."""
        computed = [o for o in operands if isinstance(o, Value)]
        ranks = {len(o.tensor.shape) for o in computed}
        if not computed or len(ranks) != 1 or not all(o.channels_last for o in computed):
            return [self.channels_first(o) for o in operands], False
        rank = ranks.pop()
        tensors = []
        for operand in operands:
            if isinstance(operand, Value):
                tensors.append(operand.tensor)
            elif operand.value.ndim == 0 or operand.value.ndim > rank:
                tensors.append(self.channels_first(operand))
            else:
                value = operand.value.reshape((1,) * (rank - operand.value.ndim) + operand.value.shape)
                tensors.append(self.variable(operand.name, value.transpose(to_channels_last(rank)), "last"))
        return tensors, True


# What each op's translation cannot reproduce: (node, attributes, constants) -> why, or None where it can.


def _dilated(attributes: dict) -> bool:
    return any(d != 1 for d in attributes.get("dilations", [1]))


def _convolution_limit(node, attributes: dict, constants: dict[str, np.ndarray]) -> str | None:
    weight = constants.get(node.input[1])
    if weight is None:
        return "with a computed (non-constant) weight is not supported"
    if weight.ndim not in SPATIAL_RANKS:
        return f"with a {weight.ndim - 2}-D kernel is not supported (2-D and 3-D are)"
    if attributes.get("group", 1) != 1:
        return f"with group={attributes['group']} is not supported"
    if weight.ndim == 5 and _dilated(attributes):
        # TensorFlow's CPU Conv3D kernel (without oneDNN, as in Fiji's TF 2.7) has no dilations
        return "with a dilated 3-D kernel is not supported"
    if node.op_type == "ConvTranspose":
        return _transposed_convolution_limit(attributes)
    return None


def _transposed_convolution_limit(attributes: dict) -> str | None:
    if any(attributes.get("pads", [0])) or "output_shape" in attributes:
        return "with padding or output_shape is not supported"
    if _dilated(attributes):
        return "with dilations is not supported"
    return None


def _pool_limit(node, attributes: dict, constants: dict[str, np.ndarray]) -> str | None:
    if len(attributes["kernel_shape"]) not in (2, 3):
        return f"with a {len(attributes['kernel_shape'])}-D window is not supported"
    if attributes.get("ceil_mode", 0):
        return "with ceil_mode=1 is not supported"
    if _dilated(attributes):
        return "with dilations is not supported"
    if (
        node.op_type == "AveragePool"
        and any(attributes.get("pads", [0]))
        and not attributes.get("count_include_pad", 0)
    ):
        return "with padding and count_include_pad=0 is not supported"
    return None


def _batch_norm_limit(node, attributes: dict, constants: dict[str, np.ndarray]) -> str | None:
    if not all(name in constants for name in node.input[1:5]):
        return "with computed statistics is not supported"
    return None


def _reshape_limit(node, attributes: dict, constants: dict[str, np.ndarray]) -> str | None:
    if attributes.get("allowzero", 0):
        return "with allowzero=1 is not supported"
    return None


def _resize_limit(node, attributes: dict, constants: dict[str, np.ndarray]) -> str | None:
    """Resize at opsets 11-17 (X, roi, scales[, sizes]) on the spatial axes: nearest in every coordinate and rounding
    mode, linear with integer scales or with sizes (what TensorFlow's ResizeBilinear computes alike)."""
    if len(node.input) < 3:
        return "in its opset-10 form (inputs X and scales only) is not supported"
    mode = text_attribute(attributes, "mode", "nearest")
    if mode not in RESIZE_MODES:
        return f"with mode={mode!r} is not supported ({' and '.join(map(repr, RESIZE_MODES))} are)"
    transform = text_attribute(attributes, "coordinate_transformation_mode", "half_pixel")
    if transform not in RESIZE_TRANSFORMS:
        return (
            f"with coordinate_transformation_mode={transform!r} is not supported "
            f"({', '.join(map(repr, RESIZE_TRANSFORMS))} are)"
        )
    rounding = text_attribute(attributes, "nearest_mode", "round_prefer_floor")
    if mode == "nearest" and rounding not in NEAREST_MODES:
        return f"with nearest_mode={rounding!r} is not supported"
    for name in ("antialias", "exclude_outside"):
        if attributes.get(name, 0):
            return f"with {name}={attributes[name]} is not supported"
    if "axes" in attributes:
        return f"with axes={list(attributes['axes'])} is not supported (scales or sizes for every axis are)"
    policy = text_attribute(attributes, "keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        return f"with keep_aspect_ratio_policy={policy!r} is not supported"
    scales_name, sizes_name = node.input[2], node.input[3] if len(node.input) > 3 else ""
    if scales_name and scales_name not in constants:
        return "with computed scales is not supported (constant scales are)"
    scales = constants[scales_name].astype(np.float64) if scales_name else np.zeros(0)
    if scales.size:
        if scales.ndim != 1 or scales.size < 3 or (scales[:2] != 1).any() or (scales <= 0).any():
            return f"with scales {scales.tolist()} is not supported (positive scales on the spatial axes only are)"
        if mode == "linear" and (scales != np.round(scales)).any():
            # ResizeBilinear takes its coordinate scale from the sizes, ONNX from scales: alike only for integers
            return f"with mode='linear' and non-integer scales {scales.tolist()} is not supported (integer scales are)"
        return None
    if not sizes_name:
        return "without scales or sizes is not supported"
    sizes = constants.get(sizes_name)
    if mode == "linear" and transform == "pytorch_half_pixel" and (sizes is None or (sizes[2:] <= 1).any()):
        # pytorch_half_pixel samples position 0 for an output of length 1, ResizeBilinear the middle
        return (
            "with mode='linear', coordinate_transformation_mode='pytorch_half_pixel' and sizes that may be 1 "
            "is not supported (constant sizes above 1 are)"
        )
    return None


def _upsample_as_resize(node) -> dict[str, np.ndarray]:
    """Rewrite a legacy Upsample (opsets 7-9) in place as the Resize it means: asymmetric coordinates, nearest
    rounding down (onnxruntime's choice when enlarging); Resize's limits then apply. Returns the constant to add
    when the scales were an attribute (opset 7)."""
    import onnx

    attributes = node_attributes(node)
    mode = text_attribute(attributes, "mode", "nearest")
    scales = attributes.get("scales")
    added: dict[str, np.ndarray] = {}
    if scales is not None:
        name = f"{node.output[0]}__upsample_scales"
        added[name] = np.asarray(scales, dtype=np.float32)
        scales_input = name
    else:
        scales_input = node.input[1] if len(node.input) > 1 else ""
    node.op_type = "Resize"
    node.input[:] = [node.input[0], "", scales_input]
    del node.attribute[:]
    node.attribute.extend(
        [
            onnx.helper.make_attribute("mode", mode),
            onnx.helper.make_attribute("coordinate_transformation_mode", "asymmetric"),
            onnx.helper.make_attribute("nearest_mode", "floor"),
        ]
    )
    return added


LIMITS: dict[str, Callable] = {
    "Conv": _convolution_limit,
    "ConvTranspose": _convolution_limit,
    "MaxPool": _pool_limit,
    "AveragePool": _pool_limit,
    "BatchNormalization": _batch_norm_limit,
    "Reshape": _reshape_limit,
    "Resize": _resize_limit,
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
    translator = Translator(model)
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
