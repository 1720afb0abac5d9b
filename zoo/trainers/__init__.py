"""The zoo of trainers: one module per trainer, all behind the Trainer protocol, found by name.

Each trainer is registered once, below, with everything the later stages need to know about it: where its class
is, its model card and the paper its models cite. A trainer that lacks one of them is refused at registration."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

from zoo.config import DataConfig, PackageConfig, TrainConfig
from zoo.errors import InputError
from zoo.trainers import cards
from zoo.trainers.base import Trainer, TrainResult
from zoo.trainers.cards import Card, Citation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainerEntry:
    """One trainer: its class as "module:Class" (imported only when used, so that `zoo --help` loads no
    framework), its model card and the paper its packages cite."""

    name: str
    target: str
    card: Card
    citation: Citation

    def __post_init__(self):
        module, _, class_name = self.target.partition(":")
        if not module or not class_name:
            raise ValueError(f"trainer {self.name!r}: target {self.target!r}, expected 'module:Class'")
        if not isinstance(self.card, Card) or self.card.trainer != self.name:
            found = self.card.trainer if isinstance(self.card, Card) else type(self.card).__name__
            raise ValueError(f"trainer {self.name!r}: card for {found!r}, expected a Card for {self.name!r}")
        if not isinstance(self.citation, Citation):
            raise ValueError(
                f"trainer {self.name!r}: citation {self.citation!r}, expected a Citation of the paper its models cite"
            )

    def load(self) -> Trainer:
        module, class_name = self.target.split(":")
        return getattr(importlib.import_module(module), class_name)()


TRAINERS: dict[str, TrainerEntry] = {}


def register_trainer(name: str, target: str, *, card: Card, citation: Citation) -> TrainerEntry:
    """Add a trainer to TRAINERS: its class ("module:Class"), card and citation, all required."""
    if name in TRAINERS:
        raise ValueError(f"trainer {name!r} is registered already (as {TRAINERS[name].target})")
    TRAINERS[name] = entry = TrainerEntry(name, target, card, citation)
    return entry


register_trainer("unet2d", "zoo.trainers.unet2d:UNet2dTrainer", card=cards.UNET2D, citation=cards.UNET_PAPER)
register_trainer(
    "unet2d-keras", "zoo.trainers.unet2d_keras:UNet2dKerasTrainer", card=cards.UNET2D_KERAS, citation=cards.UNET_PAPER
)
register_trainer(
    "unet2d-multiclass",
    "zoo.trainers.unet2d_multiclass:UNet2dMulticlassTrainer",
    card=cards.UNET2D_MULTICLASS,
    citation=cards.UNET_PAPER,
)
register_trainer("care2d", "zoo.trainers.restoration:Care2dTrainer", card=cards.CARE2D, citation=cards.CARE_PAPER)
register_trainer("n2v2d", "zoo.trainers.restoration:N2v2dTrainer", card=cards.N2V2D, citation=cards.N2V_PAPER)
register_trainer(
    "classifier2d",
    "zoo.trainers.classifier2d:Classifier2dTrainer",
    card=cards.CLASSIFIER2D,
    citation=cards.DEEP_LEARNING_PAPER,
)
register_trainer("unet3d", "zoo.trainers.unet3d:UNet3dTrainer", card=cards.UNET3D, citation=cards.UNET3D_PAPER)
register_trainer(
    "stardist2d", "zoo.trainers.stardist2d:StarDist2dTrainer", card=cards.STARDIST2D, citation=cards.STARDIST_PAPER
)


def get_trainer(name: str) -> Trainer:
    if name not in TRAINERS:
        raise InputError(f"trainer {name!r} is unknown; choose one of: {', '.join(sorted(TRAINERS))}")
    return TRAINERS[name].load()


def card_for(trainer: str) -> Card:
    """The card of `trainer`, or a generic one for a trainer that is not registered."""
    entry = TRAINERS.get(trainer)
    return entry.card if entry is not None else cards.fallback_card(trainer)


def citation_for(trainer: str, architecture: str = "") -> Citation:
    """The citation of `trainer`. A checkpoint of a trainer not registered here (an older zoo's) cites what the
    trainer named after its architecture cites (unet2d, unet3d, classifier2d), else the U-Net paper."""
    entry = TRAINERS.get(trainer) or TRAINERS.get(architecture.removesuffix("_keras"))
    if entry is None:
        logger.warning(
            "trainer %r is not registered and its architecture %r names no trainer: citing the U-Net paper",
            trainer,
            architecture,
        )
        return cards.UNET_PAPER
    return entry.citation


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


__all__ = [
    "TRAINERS",
    "Card",
    "Citation",
    "TrainResult",
    "Trainer",
    "TrainerEntry",
    "card_for",
    "citation_for",
    "default_config",
    "default_package_config",
    "get_trainer",
    "register_trainer",
]
