from __future__ import annotations

import tempfile
from pathlib import Path

from zoo.packaging.exporters import WEIGHT_FILES, ExportContext, ExportedWeights
from zoo.packaging.exporters.onnx import export_onnx
from zoo.packaging.rdf_yaml import write_zip_from_folder


def export_tensorflow_from_pytorch(model, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """PyTorch → ONNX (opset 17, dynamic axes) → TF SavedModel with zoo's op-by-op translator, zipped with
    saved_model.pb and variables/ at the zip root (what deepImageJ and bioimageio.core load). The signature
    takes and returns the ONNX layouts (bcyx, bczyx, bc), with the same dynamic axes."""
    import tensorflow as tf

    from zoo.packaging.onnx_to_tf import onnx_to_saved_model

    path = workdir / WEIGHT_FILES["tensorflow_saved_model_bundle"]
    with tempfile.TemporaryDirectory(prefix="zoo-tf-") as tmp:
        onnx_file = export_onnx(model, example, Path(tmp), context).path
        saved_model = Path(tmp) / "saved_model"
        onnx_to_saved_model(
            onnx_file, saved_model, [context.input_id], [context.output_id], example_shapes=[tuple(example.shape)]
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
