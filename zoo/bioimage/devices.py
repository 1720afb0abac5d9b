"""Device choice, one rule for every stage: `cpu`, `cuda`, or `auto` (CUDA when the runtime sees a GPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from zoo.errors import InputError

DEVICES = ("auto", "cpu", "cuda")
RUNTIME_NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow"}


def _gpu_driver_present() -> bool:
    """A GPU driver's device files (NVIDIA's, or WSL's GPU bridge): looked up in the file system, which costs
    microseconds, where asking the linker for libcuda (ctypes.util.find_library) runs ldconfig and takes 10-25 ms
    of every `zoo validate`."""
    return any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg"))


def cuda_available(runtime: str = "torch") -> bool:
    """Whether `runtime` (torch or tensorflow) sees a GPU. PyTorch is asked only where an NVIDIA driver is present
    and torch is installed: importing it costs seconds."""
    if runtime == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if not _gpu_driver_present():
        return False
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str, runtime: str = "torch") -> str:
    """`cpu` or `cuda` for the asked `device`: `auto` picks CUDA when `runtime` sees a GPU; `cuda` without one, or
    a name not in DEVICES, is an InputError the user must see."""
    if device not in DEVICES:
        raise InputError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    if runtime not in RUNTIME_NAMES:
        raise ValueError(f"runtime {runtime!r}, expected one of {', '.join(RUNTIME_NAMES)}")
    if device == "cpu":
        return "cpu"
    cuda = cuda_available(runtime)
    if device == "cuda" and not cuda:
        raise InputError(
            f"--device cuda, but no CUDA device is visible to {RUNTIME_NAMES[runtime]}: use --device cpu or auto"
        )
    return "cuda" if cuda else "cpu"


__all__ = ["DEVICES", "cuda_available", "resolve_device"]
