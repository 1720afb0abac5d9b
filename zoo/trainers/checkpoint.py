"""Checkpoints: one `.pt` file of tensors and plain values, loadable with `weights_only=True`. A Keras
model's weights and graph live beside it in a `.keras` file (loaded in Keras' safe mode)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.bioimage.files import atomic_path
from zoo.errors import InputError

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A trained model and how it was made."""

    trainer: str
    architecture: str  # module name under zoo/trainers/architectures
    architecture_class: str
    architecture_kwargs: dict[str, Any]
    state_dict: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, float]]
    data: dict[str, Any]  # provenance of the training data
    environment: dict[str, str]  # framework versions, device, duration
    sample: dict[str, Any]  # a held-out test image (raw) and its mask, for packaging
    framework: str = "pytorch"  # or "keras"
    model_file: str | None = None  # the .keras file beside the checkpoint, for Keras models
    task: dict[str, Any] = field(default_factory=dict)  # zoo.trainers.task.Task.to_dict(); empty = unet2d's task
    folder: Path | None = None  # where the checkpoint was read from (not saved)

    @property
    def task_spec(self):
        """The Task this model was trained for (binary 2D segmentation for checkpoints that record none)."""
        from zoo.trainers.task import Task

        return Task.from_dict(self.task)

    def build_model(self):
        """The trained model: a torch module in eval mode, or a Keras model."""
        from zoo.trainers.architectures import load_architecture

        if self.framework == "keras":
            import keras

            path = Path(self.folder or ".") / str(self.model_file)
            if not path.is_file():
                raise InputError(f"the Keras model {path} of this checkpoint is missing: keep it beside checkpoint.pt")
            return keras.models.load_model(path, compile=False, safe_mode=True)

        model = load_architecture(self.architecture, self.architecture_class)(**self.architecture_kwargs)
        model.load_state_dict(self.state_dict)
        return model.eval()


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> Path:
    """Write atomically: a crash never leaves a truncated checkpoint."""
    import torch

    payload = {"checkpoint_version": CHECKPOINT_VERSION, **checkpoint.__dict__}
    payload.pop("folder")
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by zoo; never unpickles arbitrary objects."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist: give the checkpoint.pt that `zoo train` wrote")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise InputError(
            f"{path} is not a zoo checkpoint (not a torch archive): give the checkpoint.pt that `zoo train` wrote"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise InputError(
            f"checkpoint {path} cannot be read ({type(e).__name__}: {first[:200]}); give a checkpoint.pt written "
            "by `zoo train`"
        ) from e
    if not isinstance(payload, dict) or payload.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise InputError(
            f"checkpoint {path} is not a zoo checkpoint of version {CHECKPOINT_VERSION}: retrain with `zoo train`"
        )
    payload.pop("checkpoint_version")
    try:
        return Checkpoint(**payload, folder=path.parent)
    except TypeError as e:
        raise InputError(f"checkpoint {path} misses fields ({e}): retrain with `zoo train`") from e
