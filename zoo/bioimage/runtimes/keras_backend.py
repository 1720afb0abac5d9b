from __future__ import annotations

from pathlib import Path

import numpy as np


class KerasV3Backend:
    """A `.keras` file, loaded in Keras' safe mode (no lambda or custom code is deserialized)."""

    weight_format = "keras_v3"

    def __init__(self, path: Path, device: str = "cpu"):
        import keras

        self.model = keras.models.load_model(path, compile=False, safe_mode=True)

    def predict(self, *inputs: np.ndarray) -> list[np.ndarray]:
        results = self.model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        results = results if isinstance(results, (list, tuple)) else [results]
        return [np.asarray(r) for r in results]
