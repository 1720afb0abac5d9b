"""The trained model an export starts from, whatever its framework: how to run it and in which layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoo.errors import InputError
from zoo.trainers.checkpoint import Checkpoint
from zoo.trainers.task import Task


@dataclass
class SourceModel:
    """`framework` picks the exporter table (zoo.packaging.exporters.EXPORTERS): "pytorch" and "keras" for live
    modules, "torchscript" for a ScriptModule and "onnx" for an ONNX file (then `model` is its path)."""

    framework: str
    layout: str  # axis order of the input tensor: "bcyx", "bczyx" (PyTorch) or "byxc" (Keras)
    model: Any
    task: Task = field(default_factory=Task)
    outputs: str | None = None  # the output's axes when the task's rule does not give them (models zoo probed)
    _session: Any = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> SourceModel:
        task = checkpoint.task_spec
        return cls(checkpoint.framework, task.input_layout(checkpoint.framework), checkpoint.build_model(), task)

    @property
    def output_layout(self) -> str:
        return self.outputs or self.task.output_layout(self.framework)

    @property
    def spatial(self) -> str:
        return self.task.spatial

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run the model on one array in its layout (no pre- or post-processing)."""
        if self.framework == "keras":
            return np.asarray(self.model(x, training=False))
        if self.framework == "onnx":
            if self._session is None:
                from zoo.bioimage.runtimes.onnx_backend import OnnxBackend

                self._session = OnnxBackend(self.model, quiet=True)  # the caller reports failures in one line
            return self._session.predict(np.ascontiguousarray(x, dtype=np.float32))[0]
        import torch

        with torch.no_grad():
            output = self.model(torch.from_numpy(np.ascontiguousarray(x)))
        if isinstance(output, dict):
            output = list(output.values())
        if isinstance(output, (tuple, list)):
            if len(output) != 1:
                raise InputError(
                    f"the model returns {len(output)} outputs: zoo packages models with one image input and one "
                    "output; wrap it in a module that returns the output to share"
                )
            (output,) = output
        return output.detach().numpy()

    def batch_of_one(self, image: np.ndarray) -> np.ndarray:
        """A one-channel spatial image (2D or 3D) as a batch of one in the model's layout."""
        return image[None, None] if self.layout.startswith("bc") else image[None, ..., None]
