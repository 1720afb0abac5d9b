from __future__ import annotations

import logging
import warnings
from pathlib import Path

from zoo.errors import ExportError
from zoo.packaging.exporters import WEIGHT_FILES, ExportContext, ExportedWeights

logger = logging.getLogger(__name__)

# deepImageJ's ONNX engine (onnxruntime 1.12.1) reads opset <= 17 and IR <= 8 (RULES.md DIJ13)
ONNX_OPSET = 17
ONNX_MAX_IR_VERSION = 8
AXIS_NAMES = {"b": "batch"}  # the names of dynamic axes in the graph; other axes are named by their letter


def dynamic_axes(layout: str) -> dict[int, str]:
    """Every axis but the channels is dynamic: {0: "batch", 2: "y", 3: "x"} for "bcyx", {0: "batch"} for "bc"."""
    return {index: AXIS_NAMES.get(axis, axis) for index, axis in enumerate(layout) if axis != "c"}


def check_layout(format_name: str, what: str, shape: tuple[int, ...], layout: str, field_name: str) -> None:
    """A tensor's rank must match the layout the rdf will describe it with."""
    if len(shape) != len(layout):
        raise ExportError(
            f"{format_name}: the {what} has {len(shape)} axes {tuple(shape)}, but ExportContext."
            f"{field_name} is {layout!r} ({len(layout)} axes); set {field_name} to the model's axes "
            "(e.g. 'bcyx', 'bczyx', 'bc')"
        )


def export_onnx(model, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """TorchScript-based ONNX export at opset 17; the batch and spatial axes of the context's input and output
    layouts are dynamic, channels (and a classifier's classes) fixed."""
    import onnx
    import torch

    check_layout("onnx", "example input", example.shape, context.layout, "layout")
    path = workdir / WEIGHT_FILES["onnx"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.from_numpy(example),),
                str(path),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=[context.input_id],
                output_names=[context.output_id],
                dynamic_axes={
                    context.input_id: dynamic_axes(context.layout),
                    context.output_id: dynamic_axes(context.output_axes),
                },
            )
        proto = onnx.load(str(path))
        if proto.ir_version > ONNX_MAX_IR_VERSION:
            proto.ir_version = ONNX_MAX_IR_VERSION
            onnx.save(proto, str(path))
        onnx.checker.check_model(proto)
    except Exception as e:
        path.unlink(missing_ok=True)
        raise ExportError(
            f"onnx: export at opset {ONNX_OPSET} failed ({type(e).__name__}: {e}); "
            "check that every layer has an ONNX symbolic at this opset"
        ) from e
    output_shape = tuple(d.dim_value or d.dim_param for d in proto.graph.output[0].type.tensor_type.shape.dim)
    try:
        check_layout("onnx", "model's output", output_shape, context.output_axes, "output_layout")
    except ExportError:
        path.unlink(missing_ok=True)
        raise
    opset = max(i.version for i in proto.opset_import if i.domain in ("", "ai.onnx"))
    return ExportedWeights(
        "onnx",
        path,
        "onnx",
        onnx.__version__,
        parent="pytorch_state_dict",
        details={"opset_version": opset, "ir_version": proto.ir_version},
    )
