from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from zoo.config.base import StrictConfig

Device = Literal["cpu", "cuda", "auto"]


class DataConfig(StrictConfig):
    """Where training data comes from: the built-in synthetic generator, or a folder of TIFF pairs."""

    folder: Path | None = None
    n_images: int = Field(240, ge=8, description="synthetic images to generate")
    image_size: int = Field(128, ge=32, description="synthetic image side in pixels")
    seed: int = 0
    validation_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataConfig:
        if self.validation_fraction + self.test_fraction >= 0.8:
            raise ValueError(
                f"validation_fraction + test_fraction = {self.validation_fraction + self.test_fraction}"
                ", expected < 0.8 so that data is left for training"
            )
        return self


class TrainConfig(StrictConfig):
    """Everything that decides a training run; stored in the checkpoint and the model card."""

    trainer: str = "unet2d"
    data: DataConfig = DataConfig()
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(8, ge=1)
    patch_size: int = Field(96, ge=16, description="side of the random training crops")
    lr: float = Field(2e-3, gt=0)
    base_channels: int = Field(16, ge=2)
    depth: int = Field(3, ge=1, le=5)
    seed: int = 0
    device: Device = "auto"
    early_stopping_patience: int = Field(10, ge=1)
    resume: bool = Field(False, description="continue the run whose train_state.pt is in `out`")
    smoke_test: bool = Field(False, description="a --quick run: the chain works, the model is not for use")
    out: Path = Path("runs/unet2d")

    @classmethod
    def quick(cls, **overrides) -> TrainConfig:
        """A small, fast run of the same chain: for smoke tests and demos, not for quality."""
        values = dict(
            data=DataConfig(n_images=24, image_size=64),
            epochs=2,
            batch_size=4,
            patch_size=64,
            base_channels=8,
            depth=2,
            smoke_test=True,
        )
        values.update(overrides)
        return cls(**values)
