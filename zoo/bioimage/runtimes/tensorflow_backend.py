from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


class TensorflowSavedModelBackend:
    """A SavedModel folder or zip; calls its `serving_default` signature with inputs in signature order."""

    weight_format = "tensorflow_saved_model_bundle"

    def __init__(self, path: Path, device: str = "cpu"):
        import tensorflow as tf

        from zoo.bioimage.source import safe_extract

        self._tmp = None
        if path.is_file():
            self._tmp = tempfile.TemporaryDirectory(prefix="zoo-savedmodel-")
            safe_extract(path, Path(self._tmp.name))
            path = Path(self._tmp.name)
        self.device = "/GPU:0" if device == "cuda" else "/CPU:0"
        self.model = tf.saved_model.load(str(path))
        self.signature = self.model.signatures["serving_default"]
        self.input_names = list(self.signature.structured_input_signature[1])
        self.output_names = list(self.signature.structured_outputs)

    def predict(self, *inputs: np.ndarray) -> list[np.ndarray]:
        import tensorflow as tf

        with tf.device(self.device):
            results = self.signature(**{name: tf.constant(x) for name, x in zip(self.input_names, inputs)})
        return [results[name].numpy() for name in self.output_names]
