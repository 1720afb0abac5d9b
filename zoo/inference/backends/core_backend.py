from __future__ import annotations

from pathlib import Path

import numpy as np


class BioimageioCoreBackend:
    """Any weight format bioimageio.core can run (TensorFlow, Keras, PyTorch state dicts with library
    architectures), through its model adapters; needs the package description."""

    def __init__(self, path: Path, device: str = "cpu", *, descr, weight_format: str):
        from bioimageio.core.backends import create_model_adapter

        self.weight_format = weight_format
        self.adapter = create_model_adapter(descr, devices=[device], weight_format_priority_order=[weight_format])
        self.input_ids = [str(t.id) for t in descr.inputs]
        self.input_axes = [[str(a.id) for a in t.axes] for t in descr.inputs]
        self.output_ids = [str(t.id) for t in descr.outputs]
        self.output_axes = [[str(a.id) for a in t.axes] for t in descr.outputs]

    def predict(self, *inputs: np.ndarray) -> list[np.ndarray]:
        from bioimageio.core import Tensor
        from bioimageio.core.axis import AxisId
        from bioimageio.core.common import MemberId

        members = {
            MemberId(i): Tensor.from_numpy(x, dims=[AxisId(a) for a in axes])
            for i, axes, x in zip(self.input_ids, self.input_axes, inputs)
        }
        outputs = self.adapter.forward(members)
        return [
            outputs[MemberId(o)].transpose([AxisId(a) for a in axes]).data.to_numpy()
            for o, axes in zip(self.output_ids, self.output_axes)
        ]

    def close(self) -> None:
        self.adapter.unload()
