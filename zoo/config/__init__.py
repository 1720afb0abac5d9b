"""Pydantic configurations: one strict base, one config per stage."""

from zoo.config.base import StrictConfig
from zoo.config.packaging import AuthorConfig, CiteConfig, PackageConfig
from zoo.config.training import DataConfig, TrainConfig

__all__ = ["AuthorConfig", "CiteConfig", "DataConfig", "PackageConfig", "StrictConfig", "TrainConfig"]
