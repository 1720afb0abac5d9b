"""The values the ONNX→TensorFlow translator (zoo.packaging.onnx_to_tf) passes between ops: the layout
permutations, a computed tensor and the layout it is in, a constant, and the error that names an op the
translator cannot reproduce."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from zoo.errors import ExportError

SPATIAL_RANKS = (4, 5)  # NCHW and NCDHW run channels last inside

# what the translation of ONNX Resize reproduces (the op in onnx_to_tf_ops, its limits in onnx_to_tf)
RESIZE_MODES = ("nearest", "linear")
RESIZE_TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


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


class Value(NamedTuple):
    """A computed tensor; `channels_last`: it is the ONNX tensor permuted by to_channels_last(rank)."""

    tensor: object
    channels_last: bool


class Constant(NamedTuple):
    """An initializer or Constant node's value, laid out by whoever uses it."""

    name: str
    value: np.ndarray


def node_attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def text_attribute(attributes: dict, name: str, default: str) -> str:
    """A string attribute as str (onnx gives bytes)."""
    value = attributes.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def spatial_padding(pads: list[int]) -> list[list[int]]:
    """ONNX [z0, y0, x0, z1, y1, x1] (or [y0, x0, y1, x1]) → tf.pad's channels-last
    [[0,0],[z0,z1],[y0,y1],[x0,x1],[0,0]]."""
    half = len(pads) // 2
    return [[0, 0], *([pads[i], pads[i + half]] for i in range(half)), [0, 0]]


def constant_input(node, operand, what: str) -> np.ndarray:
    if not isinstance(operand, Constant):
        raise UnsupportedOp(node.op_type, node.name, f"with a computed {what} is not supported")
    return operand.value


def rank_of(operand) -> int:
    return operand.value.ndim if isinstance(operand, Constant) else len(operand.tensor.shape)
