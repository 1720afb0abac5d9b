"""`zoo fix-deepimagej`: rewrite a third-party package so that it satisfies the deepImageJ rules that can be satisfied
mechanically (RULES.md), re-validate it, and list what could not be fixed. The input is never modified: the package
is copied into a temporary folder, fixed there, zipped, validated, and only then moved into place.

Fixes: the descriptor renamed to `rdf.yaml` at the root (DIJ01); explicit axis ids (DIJ17); quoted versions (DIJ02,
DIJ08); `documentation` as a string at format 0.5.4 (DIJ03); an `id` when missing; ONNX re-exported from the
package's TorchScript at opset 17 / IR 8 when it is missing or too new (DIJ13), by zoo convert's re-export
(zoo.packaging.convert.reexport: proven against the TorchScript on the pre-processed test input and on random inputs
of other valid sizes); `scale_linear` lists of identical values written as a scalar (DIJ30).

TorchScript is loaded without --trust (an archive is run by the TorchScript interpreter, not unpickled as Python
code), after a scan for operations that act outside the model: a TorchScript with such operations is not re-exported."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from zoo.bioimage.source import open_source
from zoo.errors import ExportError, ZooError

logger = logging.getLogger(__name__)

ONNX_OPSET, ONNX_MAX_IR_VERSION = 17, 8  # deepImageJ's installable ONNX engine (DIJ13)
SPACE_AXIS_DEFAULT_ID = "x"  # bioimageio.spec's default id of a space axis, dropped when it writes yaml
VERSION_LINE = re.compile(
    r"^(\s*(?:format_version|pytorch_version|tensorflow_version|version|opset_version_str):"
    r"[ \t]*)([0-9][0-9.]*)[ \t]*$",
    re.MULTILINE,
)
RUNS = ("runs", "runs with risks")


@dataclass(frozen=True)
class Fix:
    rule_id: str  # the rule the change satisfies ("" when it is not a DIJ rule's)
    what: str


@dataclass
class FixResult:
    zip_path: Path | None
    fixed: list[Fix] = field(default_factory=list)
    not_fixed: dict[str, list[str]] = field(default_factory=dict)  # rule ID -> messages, after fixing
    report: object = None  # the ValidationReport of the fixed package

    @property
    def verdict(self) -> str | None:
        return self.report.deepimagej_verdict if self.report is not None else None

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict in RUNS else 1


def fix_deepimagej(source: Path, out_dir: Path, *, device: str = "cpu", progress=None) -> FixResult:
    """Fix a package folder, rdf.yaml or zip for deepImageJ; the zip lands in `out_dir` only once validated."""
    from zoo.packaging.rdf_yaml import write_zip_from_folder
    from zoo.validators import validate_source

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fixes: list[Fix] = []
    with open_source(Path(source)) as opened, tempfile.TemporaryDirectory(dir=out_dir, prefix=".zoo-fix-") as tmp:
        work = Path(tmp) / "package"
        shutil.copytree(opened.root, work, ignore=shutil.ignore_patterns(".zoo-fix-*"))
        rdf_path = work / opened.rdf_path.relative_to(opened.root)
        if rdf_path != work / "rdf.yaml":
            os.replace(rdf_path, work / "rdf.yaml")
            fixes.append(
                Fix(
                    "DIJ01",
                    f"renamed {opened.rdf_path.relative_to(opened.root).as_posix()} to rdf.yaml at the package root",
                )
            )
        rdf_path = work / "rdf.yaml"
        fixes += _quote_version_text(rdf_path)
        fixes += _edit_rdf(rdf_path, work)
        name = _package_name(rdf_path)
        zip_path = Path(tmp) / f"{name}.zip"
        write_zip_from_folder(work, zip_path)
        report = validate_source(zip_path, device=device, isolate=False, progress=progress)
        report.source = str(out_dir / zip_path.name)
        destination = out_dir / zip_path.name
        os.replace(zip_path, destination)
    not_fixed: dict[str, list[str]] = {}
    for finding in report.findings:
        if finding.rule.target == "deepimagej" and finding.status in ("failed", "warning"):
            not_fixed.setdefault(finding.id, []).append(finding.message)
    return FixResult(destination, fixes, not_fixed, report)


def _quote_version_text(rdf_path: Path) -> list[Fix]:
    """Quote unquoted version numbers as written (a YAML loader would read `1.10` as 1.1 first)."""
    text = rdf_path.read_text(encoding="utf-8")
    found = [m.group(0).strip() for m in VERSION_LINE.finditer(text)]
    if not found:
        return []
    rdf_path.write_text(VERSION_LINE.sub(lambda m: f'{m.group(1)}"{m.group(2)}"', text), encoding="utf-8")
    return [Fix("DIJ02" if line.startswith("format_version") else "DIJ08", f"quoted {line}") for line in found]


def _edit_rdf(rdf_path: Path, work: Path) -> list[Fix]:
    from ruyaml import YAML

    from zoo.packaging.rdf_yaml import adapt_rdf_for_deepimagej

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    with rdf_path.open(encoding="utf-8") as f:
        rdf = yaml.load(f)
    fixes: list[Fix] = []
    if not rdf.get("id"):
        rdf["id"] = _slug(str(rdf.get("name") or "model"))
        fixes.append(Fix("", f"added id {rdf['id']!r}"))
    for kind in ("inputs", "outputs"):
        for t_index, tensor in enumerate(rdf.get(kind) or []):
            for a_index, axis in enumerate(tensor.get("axes") or [] if isinstance(tensor.get("axes"), list) else []):
                if isinstance(axis, dict) and axis.get("type") == "space" and "id" not in axis:
                    axis.insert(0, "id", SPACE_AXIS_DEFAULT_ID)
                    fixes.append(Fix("DIJ17", f"{kind}.{t_index}.axes.{a_index}: wrote id x"))
                elif (
                    isinstance(axis, dict)
                    and axis.get("type") in ("batch", "channel", "index", "time")
                    and "id" not in axis
                ):
                    fixes.append(Fix("DIJ17", f"{kind}.{t_index}.axes.{a_index}: wrote the {axis['type']} id"))
            fixes += _simplify_processing(kind, t_index, tensor)
    documentation = rdf.get("documentation")
    if isinstance(documentation, dict):
        fixes.append(Fix("DIJ03", f"documentation written as the path {documentation.get('source')!r}"))
    with rdf_path.open("w", encoding="utf-8") as f:
        yaml.dump(rdf, f)
    try:
        fixes += _reexport_onnx(rdf, work)
    except ExportError as e:  # the re-validation reports DIJ13 as not fixed
        logger.warning("%s", e)
    with rdf_path.open("w", encoding="utf-8") as f:
        yaml.dump(rdf, f)
    if _axes_are_lists(rdf):  # format 0.5; 0.3/0.4 axes are strings of letters, with nothing to write out
        adapt_rdf_for_deepimagej(rdf_path)
    return fixes


def _axes_are_lists(rdf: dict) -> bool:
    """Every tensor's axes are a list of axis mappings (format 0.5), not a string (0.3/0.4)."""
    tensors = [t for kind in ("inputs", "outputs") for t in (rdf.get(kind) or [])]
    return all(isinstance(t, dict) and isinstance(t.get("axes"), list) for t in tensors)


def _simplify_processing(kind: str, t_index: int, tensor: dict) -> list[Fix]:
    """scale_linear with lists of identical values → scalars (JDLL uses the first element anyway, DIJ30)."""
    fixes = []
    key = "preprocessing" if kind == "inputs" else "postprocessing"
    for s_index, step in enumerate(tensor.get(key) or []):
        if not isinstance(step, dict) or step.get("id", step.get("name")) != "scale_linear":
            continue
        kwargs = step.get("kwargs") or {}
        lists = {k: kwargs[k] for k in ("gain", "offset") if isinstance(kwargs.get(k), list)}
        if lists and all(len(v) and len({float(x) for x in v}) == 1 for v in lists.values()):
            for k, v in lists.items():
                kwargs[k] = float(v[0])
            kwargs.pop("axis", None)
            kwargs.pop("axes", None)
            fixes.append(
                Fix(
                    "DIJ30",
                    f"{kind}.{t_index}.{key}.{s_index}: scale_linear {sorted(lists)} lists of "
                    "one value written as scalars",
                )
            )
    return fixes


def _reexport_onnx(rdf: dict, work: Path) -> list[Fix]:
    """Export ONNX at opset 17 / IR 8 from the package's TorchScript when the ONNX is missing or too new, proven
    against the TorchScript by zoo convert's re-export (zoo.packaging.convert: the test input after its
    pre-processing and random inputs of other valid sizes). `work` holds the package with its rdf written."""
    from zoo.bioimage.onnx_file import read_onnx
    from zoo.bioimage.source import OpenedSource
    from zoo.packaging.convert import reexport
    from zoo.packaging.parent import open_parent

    weights = rdf.get("weights") or {}
    script_key = "torchscript" if "torchscript" in weights else "pytorch_script"
    script_entry = weights.get(script_key)
    if not isinstance(script_entry, dict) or not (work / str(script_entry.get("source", ""))).is_file():
        return []
    onnx_entry = weights.get("onnx")
    if isinstance(onnx_entry, dict) and (work / str(onnx_entry.get("source", ""))).is_file():
        content = read_onnx(work / str(onnx_entry["source"]))
        if content.opset is not None and content.opset <= ONNX_OPSET and content.ir_version <= ONNX_MAX_IR_VERSION:
            return []
        why = f"opset {content.opset}, IR {content.ir_version}"
        target = work / str(onnx_entry["source"])
    else:
        why, target, onnx_entry = "missing", work / "weights.onnx", None
    with tempfile.TemporaryDirectory(dir=work.parent, prefix=".zoo-onnx-") as tmp:
        try:
            parent = open_parent(OpenedSource(work, work, work / "rdf.yaml"), "torchscript")
            exported = reexport(parent, "onnx", Path(tmp))
        except ZooError as e:
            raise ExportError(f"onnx: not re-exported from the TorchScript: {e}") from e
        os.replace(exported.path, target)
    from ruyaml.comments import CommentedMap

    entry = onnx_entry if onnx_entry is not None else CommentedMap()
    for key in ("parent", "comment", "opset_version"):
        entry.pop(key, None)
    entry["source"] = target.relative_to(work).as_posix()
    entry["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    entry["parent"] = script_key
    entry["opset_version"] = exported.details["opset_version"]
    entry["comment"] = f"re-exported from the TorchScript by zoo fix-deepimagej; {exported.agreement.summary()}"
    weights["onnx"] = entry
    cases = len(exported.agreement.cases)
    return [
        Fix(
            "DIJ13",
            f"re-exported {target.name} from the TorchScript at opset {exported.details['opset_version']}, IR "
            f"{exported.details['ir_version']} (was {why}); max |Δ| {exported.agreement.max_abs:.2e} on {cases} inputs",
        )
    ]


def _package_name(rdf_path: Path) -> str:
    from ruyaml import YAML

    rdf = YAML(typ="safe").load(rdf_path.read_text(encoding="utf-8"))
    return f"{_slug(str(rdf.get('id') or rdf.get('name') or 'model'))}-deepimagej"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"
