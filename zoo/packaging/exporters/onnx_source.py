"""Exports from an ONNX file someone else made: the file itself at an opset deepImageJ reads, and TF from it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from zoo.errors import ExportError
from zoo.packaging.exporters import WEIGHT_FILES, ExportContext, ExportedWeights
from zoo.packaging.exporters.onnx import ONNX_MAX_IR_VERSION, ONNX_OPSET
from zoo.packaging.rdf_yaml import write_zip_from_folder


def opset_of(proto) -> int:
    return max(i.version for i in proto.opset_import if i.domain in ("", "ai.onnx"))


def copy_onnx(model: Path, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """The ONNX file, converted down to opset 17 / IR 8 (deepImageJ's onnxruntime 1.12) when it is newer; the
    export proof then checks the converted graph against the original."""
    import onnx

    proto = onnx.load(str(model))
    opset = opset_of(proto)
    if opset > ONNX_OPSET:
        from onnx import version_converter

        try:
            proto = version_converter.convert_version(proto, ONNX_OPSET)
        except Exception as e:
            raise ExportError(
                f"onnx: the graph is at opset {opset} and could not be converted to opset {ONNX_OPSET} for "
                f"deepImageJ ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                "re-export it from its framework at opset 17"
            ) from e
    if proto.ir_version > ONNX_MAX_IR_VERSION:
        proto.ir_version = ONNX_MAX_IR_VERSION
    onnx.checker.check_model(proto)
    path = workdir / WEIGHT_FILES["onnx"]
    onnx.save(proto, str(path))
    return ExportedWeights(
        "onnx",
        path,
        "onnx",
        onnx.__version__,
        details={"opset_version": opset_of(proto), "ir_version": proto.ir_version},
    )


def export_tensorflow_from_onnx(model: Path, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """ONNX → TF SavedModel with zoo's op-by-op translator (the same one PyTorch exports go through)."""
    import tensorflow as tf

    from zoo.packaging.onnx_to_tf import onnx_to_saved_model

    path = workdir / WEIGHT_FILES["tensorflow_saved_model_bundle"]
    with tempfile.TemporaryDirectory(prefix="zoo-tf-") as tmp:
        saved_model = Path(tmp) / "saved_model"
        onnx_to_saved_model(
            Path(model), saved_model, [context.input_id], [context.output_id], example_shapes=[tuple(example.shape)]
        )
        write_zip_from_folder(saved_model, path)
    return ExportedWeights(
        "tensorflow_saved_model_bundle",
        path,
        "tensorflow",
        tf.__version__,
        parent="onnx",
        details={"signature": "serving_default", "tag": "serve"},
    )
