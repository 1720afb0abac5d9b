"""Runtimes that execute one weight file on raw tensors (no pre/post-processing), from a table: the one runtime
layer that the export proof, `zoo predict` and the validation's model workers all use."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import numpy as np

from zoo.errors import InputError

# weight format -> "module:Class"; imported only when a format is used
BACKENDS: dict[str, str] = {
    "pytorch_state_dict": "zoo.bioimage.runtimes.pytorch_backend:PytorchStateDictBackend",
    "torchscript": "zoo.bioimage.runtimes.torchscript_backend:TorchscriptBackend",
    "onnx": "zoo.bioimage.runtimes.onnx_backend:OnnxBackend",
    "tensorflow_saved_model_bundle": "zoo.bioimage.runtimes.tensorflow_backend:TensorflowSavedModelBackend",
    "keras_v3": "zoo.bioimage.runtimes.keras_backend:KerasV3Backend",
}


class Backend(Protocol):
    weight_format: str

    def predict(self, *inputs: np.ndarray) -> list[np.ndarray]: ...


def load_backend(weight_format: str, path: Path, device: str = "cpu", **options) -> Backend:
    if weight_format not in BACKENDS:
        raise InputError(f"no backend for weight format {weight_format!r}; known: {', '.join(BACKENDS)}")
    module, class_name = BACKENDS[weight_format].split(":")
    return getattr(importlib.import_module(module), class_name)(Path(path), device=device, **options)
