from __future__ import annotations

import tempfile
from pathlib import Path

from zoo.packaging.exporters import ExportContext, ExportedWeights
from zoo.packaging.exporters.onnx import export_onnx


def export_tensorflow_from_pytorch(model, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """PyTorch → ONNX (opset 17, dynamic axes) → TF SavedModel with zoo's op-by-op translator, zipped with
    saved_model.pb and variables/ at the zip root (what deepImageJ and bioimageio.core load). The signature
    takes and returns the ONNX layouts (bcyx, bczyx, bc), with the same dynamic axes."""
    from zoo.packaging.exporters.onnx_source import export_tensorflow_from_onnx

    with tempfile.TemporaryDirectory(prefix="zoo-onnx-") as tmp:
        onnx_file = export_onnx(model, example, Path(tmp), context).path
        return export_tensorflow_from_onnx(onnx_file, example, workdir, context)
