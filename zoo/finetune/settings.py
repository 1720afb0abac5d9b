"""The settings of a fine-tuning run (the budget `zoo finetune` uses unless told otherwise) and the record in its run
folder that a resumed run is compared with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from zoo.config.base import StrictConfig
from zoo.config.training import Device
from zoo.errors import InputError

RUN_FOLDER = "training"  # inside --out: the resumable state and the run's record
RECORD_NAME = "finetune.json"
# an epoch: as many crop pixels as the training split has, and at least this many batches (a folder of a dozen
# images would otherwise make an epoch of three steps)
MIN_STEPS_PER_EPOCH = 16


class FinetuneConfig(StrictConfig):
    """What decides a fine-tuning run. The defaults are the budget measured in benchmarks/finetune_domain_shift.py
    (a few minutes on 2 CPU cores for a small U-Net and a folder of some dozen images)."""

    epochs: int = Field(25, ge=1)
    lr: float = Field(1e-3, gt=0, description="Adam's learning rate (cosine-annealed over the epochs)")
    batch_size: int = Field(4, ge=1, description="crops per step (1 where the rdf fixes the batch at 1)")
    patch_size: int = Field(128, ge=16, description="side of the random training crops (the rdf's size if fixed)")
    freeze: Literal["none", "encoder"] = "none"
    loss: Literal["auto", "bce-dice", "cross-entropy", "mse"] = "auto"
    seed: int = 0
    device: Device = "auto"
    early_stopping_patience: int = Field(8, ge=1)
    validation_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)


def finetune_config(**settings) -> FinetuneConfig:
    """FinetuneConfig from keywords (None means the default); a bad value is one InputError line naming it."""
    from pydantic import ValidationError

    from zoo.config.base import describe_validation_error

    try:
        return FinetuneConfig(**{k: v for k, v in settings.items() if v is not None})
    except ValidationError as e:
        raise InputError(f"invalid fine-tuning settings: {describe_validation_error(e)}") from e


def check_record(run: Path, record: dict[str, Any], resume: bool) -> None:
    """A resumed run must fine-tune the same package's weights on the same terms; the record is (re)written."""
    from zoo.bioimage.files import atomic_path

    path = Path(run) / RECORD_NAME
    if resume and path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"cannot resume from {path} ({e}); delete the run folder to start afresh") from e
        changed = [k for k in sorted(set(saved) | set(record)) if saved.get(k) != record.get(k)]
        if changed:
            what = "; ".join(f"{k}: {saved.get(k)!r} then, {record.get(k)!r} now" for k in changed)
            raise InputError(
                f"cannot resume the run in {run}: it fine-tuned other weights or on other terms ({what}); resume with "
                "the same package and settings, or choose another --out folder"
            )
    Path(run).mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2))


__all__ = ["MIN_STEPS_PER_EPOCH", "RECORD_NAME", "RUN_FOLDER", "FinetuneConfig", "check_record", "finetune_config"]
