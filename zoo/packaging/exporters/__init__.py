"""Exporters: one module per target weight format, found in a table and imported lazily.

An exporter writes its weight file into a work folder and returns an ExportedWeights: it never writes
the rdf (that is assembled in one place, zoo.packaging.rdf)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from zoo.bioimage.formats import ALIASES
from zoo.packaging.agreement import Agreement

# source framework -> weight format -> "module:function"; the first format is the native one, the parent
EXPORTERS: dict[str, dict[str, str]] = {
    "pytorch": {
        "pytorch_state_dict": "zoo.packaging.exporters.pytorch_state_dict:export_pytorch_state_dict",
        "torchscript": "zoo.packaging.exporters.torchscript:export_torchscript",
        "onnx": "zoo.packaging.exporters.onnx:export_onnx",
        "tensorflow_saved_model_bundle": "zoo.packaging.exporters.tensorflow:export_tensorflow_from_pytorch",
    },
    "keras": {
        "keras_v3": "zoo.packaging.exporters.keras_native:export_keras_v3",
        "tensorflow_saved_model_bundle": "zoo.packaging.exporters.keras_tensorflow:export_tensorflow_from_keras",
        "onnx": "zoo.packaging.exporters.keras_tensorflow:export_onnx_from_keras",
    },
    # models someone else made, opened from their file (zoo.packaging.sources)
    "torchscript": {
        "torchscript": "zoo.packaging.exporters.torchscript:save_torchscript",
        "onnx": "zoo.packaging.exporters.onnx:export_onnx",
        "tensorflow_saved_model_bundle": "zoo.packaging.exporters.tensorflow:export_tensorflow_from_pytorch",
    },
    "onnx": {
        "onnx": "zoo.packaging.exporters.onnx_source:copy_onnx",
        "tensorflow_saved_model_bundle": "zoo.packaging.exporters.onnx_source:export_tensorflow_from_onnx",
    },
}
FORMAT_ALIASES = ALIASES  # the CLI's short names ("tensorflow", "state_dict", "keras")
# weight format -> the file its exporter writes (a pytorch_state_dict also writes its architecture's source file)
WEIGHT_FILES: dict[str, str] = {
    "pytorch_state_dict": "weights.pt",
    "torchscript": "weights_torchscript.pt",
    "onnx": "weights.onnx",
    "tensorflow_saved_model_bundle": "tf_saved_model_bundle.zip",
    "keras_v3": "weights.keras",
}


@dataclass
class ExportedWeights:
    """A weight file and the metadata its rdf weights entry needs."""

    weight_format: str
    path: Path
    framework: str  # "pytorch", "onnx", ...
    framework_version: str
    parent: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # e.g. opset_version, architecture
    agreement: Agreement | None = None


@dataclass(frozen=True)
class ExportContext:
    """What exporters know about the model beyond the module itself."""

    architecture_file: Path
    architecture_callable: str
    architecture_kwargs: dict[str, Any]
    input_id: str
    output_id: str
    layout: str = "bcyx"  # the input's axes: "bcyx" or "bczyx" (PyTorch), "byxc" (Keras)
    output_layout: str | None = None  # the output's axes when they differ from the input's, e.g. "bc" (classifier)

    @property
    def output_axes(self) -> str:
        return self.output_layout or self.layout


class Exporter(Protocol):
    def __call__(self, model: Any, example, workdir: Path, context: ExportContext) -> ExportedWeights: ...


def get_exporter(framework: str, weight_format: str) -> Exporter:
    module, function = EXPORTERS[framework][weight_format].split(":")
    return getattr(importlib.import_module(module), function)
