from __future__ import annotations

from pathlib import Path

import numpy as np


class TorchscriptBackend:
    weight_format = "torchscript"

    def __init__(self, path: Path, device: str = "cpu"):
        import torch

        self.device = device
        self.module = torch.jit.load(str(path), map_location=device).eval()

    def predict(self, *inputs: np.ndarray) -> list[np.ndarray]:
        import torch

        with torch.no_grad():
            result = self.module(*(torch.from_numpy(np.ascontiguousarray(x)).to(self.device) for x in inputs))
        results = result if isinstance(result, (list, tuple)) else [result]
        return [r.cpu().numpy() for r in results]
