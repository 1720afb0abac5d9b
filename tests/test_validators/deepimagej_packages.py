"""Helpers for the DIJ tests: run only the deepImageJ rules, and break the tiny package in the ways they detect."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from zoo.validators.report import ValidationReport

TF_ZIP = "tf_saved_model_bundle.zip"


def dij_report(source: Path) -> ValidationReport:
    """The deepImageJ rules only, on the raw rdf as validate_source reads it; bioimageio.spec is not asked (the DIJ
    rules do not use its description) and no model is executed, so this is fast."""
    import zoo.validators.checks  # noqa: F401  (registers the rules)
    from zoo.bioimage.source import open_source
    from zoo.validators import run_rule
    from zoo.validators.registry import CHECKS, RULES

    report = ValidationReport(source=str(source))
    with open_source(Path(source)) as opened:
        pkg = raw_package(opened)
        for rule_id in sorted(CHECKS):
            if RULES[rule_id].target == "deepimagej":
                report.findings.extend(run_rule(pkg, rule_id))
    return report


def raw_package(opened):
    """A PackageUnderTest holding the rdf parsed as zoo.validators.load_package parses it (ruyaml, safe loader)."""
    from ruyaml import YAML

    from zoo.validators.context import PackageUnderTest

    pkg = PackageUnderTest(opened)
    with opened.rdf_path.open(encoding="utf-8") as f:
        pkg.rdf = YAML(typ="safe").load(f)
    return pkg


def statuses(report: ValidationReport, rule_id: str) -> set[str]:
    return {f.status for f in report.by_id(rule_id)}


def problems(report: ValidationReport, rule_id: str) -> list:
    """Findings of `rule_id` that count against the package (failed, or warning for a risk)."""
    return [f for f in report.by_id(rule_id) if f.status in ("failed", "warning")]


def set_scalar_text(folder: Path, key: str, raw: str, top_level: bool = False) -> None:
    """Rewrite every `key: ...` line of rdf.yaml (only unindented ones with `top_level`) to `key: <raw>`, as text:
    YAML types (quoted or not) survive only this way."""
    path = folder / "rdf.yaml"
    indent = "" if top_level else r"[ \t]*"
    text, count = re.subn(
        rf"^({indent}{re.escape(key)}:)[ \t]*\S.*$", rf"\g<1> {raw}", path.read_text(), flags=re.MULTILINE
    )
    assert count, key
    path.write_text(text)


def edit_rdf(folder: Path, change: Callable[[dict], None]) -> None:
    from tests.conftest import load_rdf, save_rdf

    rdf = load_rdf(folder)
    change(rdf)
    save_rdf(folder, rdf)


def rewrite_zip(
    path: Path, change: Callable[[str, bytes], tuple[str, bytes] | None], add: dict[str, bytes] | None = None
) -> None:
    """Rewrite a zip member by member: `change(name, data)` returns the new (name, data), or None to drop it."""
    with zipfile.ZipFile(path) as archive:
        members = [(name, archive.read(name)) for name in archive.namelist()]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            changed = change(name, data)
            if changed is not None:
                archive.writestr(*changed)
        for name, data in (add or {}).items():
            archive.writestr(name, data)


def edit_saved_model(folder: Path, change: Callable, prefix: str = "") -> None:
    """Parse saved_model.pb inside the package's TF zip, let `change` edit the protobuf, write it back (with every
    member moved under `prefix`)."""
    from tensorflow.core.protobuf import saved_model_pb2

    def edit(name: str, data: bytes):
        if name == "saved_model.pb":
            saved = saved_model_pb2.SavedModel()
            saved.ParseFromString(data)
            change(saved)
            data = saved.SerializeToString()
        return prefix + name, data

    rewrite_zip(folder / TF_ZIP, edit)


def nodes(saved) -> list:
    """Every NodeDef of a SavedModel: graph nodes and function bodies."""
    out = []
    for meta_graph in saved.meta_graphs:
        out.extend(meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            out.extend(function.node_def)
    return out


def add_tf_2_13_additions(saved) -> None:
    """What TF ≥ 2.13 writes into a SavedModel and TF 2.7 cannot read: a DisableCopyOnRead node, VarHandleOp's
    debug_name attribute."""
    graph = saved.meta_graphs[0].graph_def
    graph.node.add(name="disable_copy_on_read", op="DisableCopyOnRead")
    graph.node.add(name="variable", op="VarHandleOp").attr["debug_name"].s = b"conv/kernel"
