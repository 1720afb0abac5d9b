"""The zoo of trainers: one module per trainer, all behind the Trainer protocol, found by name."""

from __future__ import annotations

import importlib
from pathlib import Path

from zoo.config import DataConfig, PackageConfig, TrainConfig
from zoo.errors import InputError
from zoo.trainers.base import Trainer, TrainResult

# name -> "module:Class", imported only when used so that `zoo --help` loads no framework
TRAINERS: dict[str, str] = {
    "unet2d": "zoo.trainers.unet2d:UNet2dTrainer",
    "unet2d-keras": "zoo.trainers.unet2d_keras:UNet2dKerasTrainer",
    "unet2d-multiclass": "zoo.trainers.unet2d_multiclass:UNet2dMulticlassTrainer",
    "care2d": "zoo.trainers.restoration:Care2dTrainer",
    "n2v2d": "zoo.trainers.restoration:N2v2dTrainer",
    "classifier2d": "zoo.trainers.classifier2d:Classifier2dTrainer",
    "unet3d": "zoo.trainers.unet3d:UNet3dTrainer",
}


def get_trainer(name: str) -> Trainer:
    if name not in TRAINERS:
        raise InputError(f"trainer {name!r} is unknown; choose one of: {', '.join(sorted(TRAINERS))}")
    module, class_name = TRAINERS[name].split(":")
    return getattr(importlib.import_module(module), class_name)()


def default_config(trainer: str, quick: bool = False, **overrides) -> TrainConfig:
    """The trainer's default settings (its `defaults` over TrainConfig's), the quick variant's on top when asked,
    then `overrides`; the run goes to runs/<trainer> unless `out` is given."""
    chosen = get_trainer(trainer)
    values: dict = {"trainer": trainer, "out": Path("runs") / trainer}
    layers = [getattr(chosen, "defaults", {})]
    if quick:
        layers += [TrainConfig.quick().model_dump(exclude_unset=True), getattr(chosen, "quick_defaults", {})]
    layers.append(overrides)
    data: dict = {}
    for layer in layers:
        layer = dict(layer)
        nested = layer.pop("data", None)
        if isinstance(nested, DataConfig):
            nested = nested.model_dump(exclude_unset=True)
        data.update(nested or {})
        values.update(layer)
    return TrainConfig(**values, data=DataConfig(**data))


def default_package_config(trainer: str, **overrides) -> PackageConfig:
    """PackageConfig with the trainer's name, description and tags (PackageConfig's own defaults otherwise)."""
    chosen = get_trainer(trainer) if trainer in TRAINERS else None
    return PackageConfig(**{**getattr(chosen, "package", {}), **overrides})


__all__ = ["TRAINERS", "TrainResult", "Trainer", "default_config", "default_package_config", "get_trainer"]
