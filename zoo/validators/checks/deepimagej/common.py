"""What every DIJ check module shares: the decorator, how deepImageJ finds a weight file, which weights it would use,
and what a check says when the files it needs are not here (a lone rdf: "cannot judge")."""

from __future__ import annotations

from functools import partial
from pathlib import Path, PurePosixPath

from zoo.bioimage.files import is_url
from zoo.bioimage.rdf_weights import referenced_files, runnable_formats, source_name, weights
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, Rule, rule, skipped

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


def used_formats(rdf: dict) -> list[str]:
    """The weight formats deepImageJ may pick: those it runs at the rdf's format version, pytorch_state_dict only when
    it is the only one (DIJ14). Keras, TF.js and a state dict beside TorchScript or ONNX are never loaded."""
    runnable = runnable_formats(rdf)
    others = [name for name in runnable if name != "pytorch_state_dict"]
    return others or runnable


def _present(root: Path, source: str) -> bool:
    """Whether a named file is here: at its relative path, or by its base name (where deepImageJ looks, and where it
    puts what it downloads when it installs a model from bioimage.io)."""
    name = PurePosixPath(source.split("?")[0]).name
    if not is_url(source) and (root / source).exists():
        return True
    return bool(name) and (root / name).exists()


def lone_rdf(pkg: PackageUnderTest) -> bool:
    """The description without its package: none of the files that running needs (weights, architecture, test
    tensors) is in its folder. Then a rule that reads those files cannot judge: deepImageJ, installing the model from
    bioimage.io, downloads them next to the rdf first."""
    needed = [ref for ref in referenced_files(pkg.rdf) if ref.needed]
    return not any(_present(pkg.root, ref.source) for ref in needed)


def weight_absent(pkg: PackageUnderTest, entry: dict) -> bool:
    """The weight file (or, for TF, an unpacked saved_model.pb) is not in the package folder at all."""
    source = source_name(entry)
    if source is not None and _present(pkg.root, source):
        return False
    return not (pkg.root / "saved_model.pb").is_file()


def cannot_judge(rule_: Rule, what: str, location: str, missing: list[str]) -> Finding:
    """The check needs files that are not here (a lone rdf): it judges nothing, and says which files it lacked."""
    return skipped(
        rule_,
        f"cannot judge: {what} (absent here: {', '.join(missing)}); validate the whole package",
        location,
        cannot_judge=True,
        missing=missing,
    )


def absent_weight_finding(pkg: PackageUnderTest, rule_: Rule, name: str, entry: dict, what: str) -> Finding:
    """What a rule that reads the weight file says when it is absent: cannot judge on a lone rdf, otherwise nothing
    (DIJ04 reports the missing file)."""
    location = f"weights.{name}"
    if lone_rdf(pkg):
        return cannot_judge(rule_, what, location, [source_name(entry) or f"{location}.source"])
    return skipped(rule_, "the weight file is not in the package (see DIJ04)", location)
