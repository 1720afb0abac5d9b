"""One small trained stardist2d model and its package, built once per test session and shared by the packaging,
validation and prediction tests of instance segmentation (each takes about a minute on 2 cores)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

_BUILT: dict[str, Path] = {}


def stardist_checkpoint(base: Path) -> Path:
    """The --quick stardist2d run (16 epochs on 24 synthetic 96x96 images): it finds nuclei, roughly."""
    if "checkpoint" not in _BUILT:
        from zoo import api
        from zoo.trainers import default_config

        out = Path(base) / "stardist-run"
        _BUILT["checkpoint"] = api.train(default_config("stardist2d", quick=True, out=out, device="cpu")).checkpoint
    return _BUILT["checkpoint"]


def stardist_package(base: Path) -> Path:
    """That run packaged (pytorch_state_dict, TorchScript, ONNX): the zip."""
    if "package" not in _BUILT:
        from zoo import api

        checkpoint = stardist_checkpoint(base)
        out = Path(base) / "stardist-package"
        _BUILT["package"] = api.package(checkpoint, out, "pytorch_state_dict,torchscript,onnx").zip_path
    return _BUILT["package"]


def unpacked_copy(zip_path: Path, folder: Path) -> Path:
    """A fresh folder holding the package's files, to break one of them."""
    if folder.exists():
        shutil.rmtree(folder)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    return folder
