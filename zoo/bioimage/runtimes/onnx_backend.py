from __future__ import annotations

from pathlib import Path

import numpy as np


class OnnxBackend:
    weight_format = "onnx"

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None, quiet: bool = False):
        """`threads`: intra-op threads per call (all cores by default); fewer when calls run side by side. `quiet`:
        onnxruntime logs nothing, not even its errors (probing a model runs it on sizes that fail on purpose)."""
        import onnxruntime as ort

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        available = set(ort.get_available_providers())
        options = ort.SessionOptions()
        options.log_severity_level = 4 if quiet else 3
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=[p for p in providers if p in available]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]

    def predict(self, *inputs: np.ndarray) -> list[np.ndarray]:
        feed = {name: np.ascontiguousarray(x) for name, x in zip(self.input_names, inputs)}
        return list(self.session.run(None, feed))
