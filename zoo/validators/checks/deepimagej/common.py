"""What every DIJ check module shares: the decorator and how deepImageJ finds a weight file."""

from __future__ import annotations

from functools import partial
from pathlib import Path, PurePosixPath

from zoo.validators.context import PackageUnderTest
from zoo.bioimage.rdf import is_url, source_name, weights
from zoo.validators.registry import rule

# every DIJ rule feeds deepImageJ's verdict and reads the raw rdf, so it also runs when bioimageio.spec rejects it
dij = partial(rule, stage="deepimagej", needs="rdf", target="deepimagej")

TF_FORMAT = "tensorflow_saved_model_bundle"
TORCHSCRIPT_FORMATS = ("torchscript", "pytorch_script")
VANISHES = "the model silently vanishes from Fiji's model list"


def weight_path(pkg: PackageUnderTest, entry: dict) -> Path | None:
    """The weight file as deepImageJ finds it: by base name in the model folder."""
    source = source_name(entry)
    if source is None or is_url(source):
        return None
    path = pkg.root / PurePosixPath(source).name
    return path if path.is_file() else None


def entries(pkg: PackageUnderTest, formats: tuple[str, ...]) -> list[tuple[str, dict]]:
    return [(name, entry) for name, entry in weights(pkg.rdf).items() if name in formats]
