from __future__ import annotations

from typing import Literal

from pydantic import Field

from zoo.config.base import StrictConfig

Target = Literal["deepimagej", "bioimageio"]


class AuthorConfig(StrictConfig):
    name: str = Field(min_length=1)
    affiliation: str | None = None
    orcid: str | None = None
    github_user: str | None = None


class PackageConfig(StrictConfig):
    """What the package says about the model beyond what training recorded."""

    name: str = "zoo U-Net 2D nuclei segmentation"
    description: str = (
        "2D U-Net that segments fluorescent nuclei into a foreground probability map; trained and packaged with zoo."
    )
    authors: list[AuthorConfig] = [AuthorConfig(name="zoo user")]
    license: str = "CC-BY-4.0"
    tags: list[str] = ["unet", "2d", "segmentation", "nuclei", "fluorescence-light-microscopy", "zoo"]
    git_repo: str | None = None
    version: str = "0.1.0"
    target: Target = "deepimagej"
