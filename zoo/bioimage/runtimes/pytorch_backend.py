from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np


class PytorchStateDictBackend:
    """Imports the architecture's Python file and loads the state dict: runs package code, so callers
    must only use it on trusted packages."""

    weight_format = "pytorch_state_dict"

    def __init__(
        self,
        path: Path,
        device: str = "cpu",
        *,
        architecture_file: Path,
        callable_name: str,
        kwargs: dict | None = None,
    ):
        import torch

        name = f"zoo_architecture_{abs(hash(str(architecture_file)))}"
        spec = importlib.util.spec_from_file_location(name, architecture_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        self.device = device
        self.model = getattr(module, callable_name)(**(kwargs or {}))
        self.model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        self.model.to(device).eval()

    def predict(self, *inputs: np.ndarray) -> list[np.ndarray]:
        import torch

        with torch.no_grad():
            result = self.model(*(torch.from_numpy(np.ascontiguousarray(x)).to(self.device) for x in inputs))
        results = result if isinstance(result, (list, tuple)) else [result]
        return [r.cpu().numpy() for r in results]
