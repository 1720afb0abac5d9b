"""Finishing touches on the rdf that bioimageio.spec wrote, for readers stricter than the spec
(deepImageJ, RULES.md DIJ02/DIJ08/DIJ17), and the zip writer."""

from __future__ import annotations

import zipfile
from pathlib import Path

DEFAULT_AXIS_IDS = {"batch": "batch", "channel": "channel", "index": "i", "time": "t"}
DEEPIMAGEJ_FORMAT_VERSION = "0.5.4"
VERSION_KEYS = {"format_version", "pytorch_version", "tensorflow_version", "version", "opset_version_str"}


def adapt_rdf_for_deepimagej(rdf_path: Path) -> None:
    """Write every axis id explicitly (the spec drops ids equal to their default), quote versions, and
    write `documentation` as a plain path."""
    from ruyaml import YAML
    from ruyaml.scalarstring import DoubleQuotedScalarString

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    with rdf_path.open(encoding="utf-8") as f:
        rdf = yaml.load(f)
    for kind in ("inputs", "outputs"):
        for tensor in rdf.get(kind, []):
            axes = tensor.get("axes", [])
            for axis in axes if isinstance(axes, list) else []:  # 0.3/0.4 axes are a string: nothing to add
                if isinstance(axis, dict) and "id" not in axis and axis.get("type") in DEFAULT_AXIS_IDS:
                    axis.insert(0, "id", DEFAULT_AXIS_IDS[axis["type"]])

    def quote_versions(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in VERSION_KEYS and isinstance(value, (str, int, float)):
                    node[key] = DoubleQuotedScalarString(str(value))
                else:
                    quote_versions(value)
        elif isinstance(node, list):
            for item in node:
                quote_versions(item)

    quote_versions(rdf)
    documentation = rdf.get("documentation")
    if isinstance(documentation, dict) and "source" in documentation:
        # deepImageJ reads `documentation` as a string (DIJ03); format 0.5.12 wants a mapping, 0.5.4 a path.
        # bioimageio.spec reads 0.5.4 and upgrades it, so the package states the older 0.5 format.
        rdf["documentation"] = documentation["source"]
        rdf["format_version"] = DoubleQuotedScalarString(DEEPIMAGEJ_FORMAT_VERSION)
    with rdf_path.open("w", encoding="utf-8") as f:
        yaml.dump(rdf, f)


def write_zip_from_folder(folder: Path, zip_path: Path) -> None:
    """Every file of `folder` at the zip root (rdf.yaml first), in a stable order; empty folders are kept
    as entries (a SavedModel's `variables/` must exist even when empty)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name != "rdf.yaml")
    empty = sorted(p for p in folder.rglob("*") if p.is_dir() and not any(p.iterdir()))
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder).as_posix())
        for path in empty:
            archive.writestr(path.relative_to(folder).as_posix() + "/", b"")
