from __future__ import annotations

import tempfile
from pathlib import Path

from zoo.packaging.exporters import WEIGHT_FILES, ExportContext, ExportedWeights
from zoo.packaging.rdf_yaml import write_zip_from_folder


def save_serving_module(model, folder: Path, context: ExportContext, channels: int) -> None:
    """A SavedModel whose `serving_default` signature takes the rdf input id and returns {output id: tensor}
    (Keras' own export returns a bare tensor, which bioimageio.core rejects), frozen for TF 2.7."""
    import tensorflow as tf

    from zoo.packaging.exporters.saved_model import save_frozen_saved_model

    spec = tf.TensorSpec([None, None, None, channels], tf.float32, name=context.input_id)

    @tf.function(input_signature=[spec])
    def serve(x):
        return {context.output_id: tf.identity(model(x, training=False), name=context.output_id)}

    save_frozen_saved_model(serve, folder, [context.input_id], [context.output_id])


def export_tensorflow_from_keras(model, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """Keras → TF SavedModel, zipped with saved_model.pb and variables/ at the zip root."""
    import tensorflow as tf

    path = workdir / WEIGHT_FILES["tensorflow_saved_model_bundle"]
    with tempfile.TemporaryDirectory(prefix="zoo-tf-") as tmp:
        save_serving_module(model, Path(tmp) / "saved_model", context, channels=example.shape[-1])
        write_zip_from_folder(Path(tmp) / "saved_model", path)
    return ExportedWeights(
        "tensorflow_saved_model_bundle",
        path,
        "tensorflow",
        tf.__version__,
        parent="keras_v3",
        details={"signature": "serving_default", "tag": "serve"},
    )


def export_onnx_from_keras(model, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """Keras → ONNX with tf2onnx at opset 17 (IR ≤ 8), dynamic batch and spatial axes."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    from zoo.errors import ExportError
    from zoo.packaging.exporters.onnx import ONNX_MAX_IR_VERSION, ONNX_OPSET

    path = workdir / WEIGHT_FILES["onnx"]
    spec = (tf.TensorSpec([None, None, None, example.shape[-1]], tf.float32, name=context.input_id),)

    @tf.function(input_signature=spec)
    def forward(x):
        return tf.identity(model(x, training=False), name=context.output_id)

    try:
        proto, _ = tf2onnx.convert.from_function(forward, input_signature=spec, opset=ONNX_OPSET, output_path=None)
    except Exception as e:
        raise ExportError(
            f"onnx: tf2onnx could not convert the Keras model at opset {ONNX_OPSET} "
            f"({type(e).__name__}: {e}); check for layers without an ONNX equivalent"
        ) from e
    proto.graph.output[0].name = _rename_output(proto, context.output_id)
    if proto.ir_version > ONNX_MAX_IR_VERSION:
        proto.ir_version = ONNX_MAX_IR_VERSION
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return ExportedWeights(
        "onnx",
        path,
        "onnx",
        onnx.__version__,
        parent="keras_v3",
        details={"opset_version": ONNX_OPSET, "ir_version": proto.ir_version},
    )


def _rename_output(proto, name: str) -> str:
    """tf2onnx names outputs after graph nodes (`Identity:0`); rename to the rdf's output id."""
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    return name
