from __future__ import annotations

from pathlib import Path

import numpy as np


class BioimageioCoreBackend:
    """Any weight format bioimageio.core can run (TensorFlow, Keras, PyTorch state dicts with library
    architectures), through its model adapters; needs the package description (format 0.4 or 0.5). Arrays come and
    go in the rdf's axis order; bioimageio.core names the tensors and axes (0.4 `bcyx` as batch, channel, y, x)."""

    def __init__(self, path: Path, device: str = "cpu", *, descr, weight_format: str):
        from bioimageio.core.backends import create_model_adapter
        from bioimageio.core.digest_spec import get_axes_infos, get_member_ids

        self.weight_format = weight_format
        self.adapter = create_model_adapter(descr, devices=[device], weight_format_priority_order=[weight_format])
        self.input_ids = [str(i) for i in get_member_ids(descr.inputs)]
        self.input_axes = [[str(a.id) for a in get_axes_infos(t)] for t in descr.inputs]
        self.output_ids = [str(i) for i in get_member_ids(descr.outputs)]
        self.output_axes = [[str(a.id) for a in get_axes_infos(t)] for t in descr.outputs]

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
