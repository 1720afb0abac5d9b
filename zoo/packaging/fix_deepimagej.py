"""`zoo fix-deepimagej`: rewrite a third-party package so that it satisfies the deepImageJ rules that can be satisfied
mechanically (RULES.md), re-validate it, and list what could not be fixed. The input is never modified: the package
is copied into a temporary folder, fixed there, zipped, validated, and only then moved into place.

Fixes: the descriptor renamed to `rdf.yaml` at the root (DIJ01); explicit axis ids (DIJ17); quoted versions (DIJ02,
DIJ08); `documentation` as a string at format 0.5.4 (DIJ03); an `id` when missing; ONNX re-exported from the
package's TorchScript at opset 17 / IR 8 when it is missing or too new (DIJ13), proven against the TorchScript on the
test input; `scale_linear` lists of identical values written as a scalar (DIJ30).

TorchScript is loaded with torch.jit.load without --trust: an archive is run by the TorchScript interpreter, not
unpickled as Python code (validators.context.CODE_EXECUTING_FORMATS does not list it either)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.bioimage.source import open_source
from zoo.errors import ExportError

logger = logging.getLogger(__name__)

ONNX_OPSET, ONNX_MAX_IR_VERSION = 17, 8  # deepImageJ's installable ONNX engine (DIJ13)
ONNX_MAX_ABS_DIFFERENCE = 1e-4
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
    """Export ONNX at opset 17 / IR 8 from the package's TorchScript when the ONNX is missing or too new."""
    from zoo.bioimage.onnx_file import read_onnx

    weights = rdf.get("weights") or {}
    script_entry = weights.get("torchscript") or weights.get("pytorch_script")
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
    from zoo.bioimage.rdf_tensors import tensors
    from zoo.validators.deepimagej.emulation import NotEmulated, apply_processing

    try:  # the model sees pre-processed data: compare there, not on raw intensities
        inputs = [
            apply_processing(view, np.load(work / _test_source(rdf, i, t)).astype(np.float32))
            for i, (view, t) in enumerate(zip(tensors(rdf, "inputs"), rdf.get("inputs") or []))
        ]
    except NotEmulated as e:
        raise ExportError(f"onnx: the test input cannot be pre-processed to prove a re-export ({e})") from e
    input_ids = [str(t.get("id", t.get("name"))) for t in rdf.get("inputs") or []]
    output_ids = [str(t.get("id", t.get("name"))) for t in rdf.get("outputs") or []]
    written = target.with_name(f".{target.name}")
    try:
        difference = export_onnx_from_torchscript(
            work / str(script_entry["source"]), written, inputs, input_ids, output_ids
        )
    except ExportError:
        written.unlink(missing_ok=True)
        raise
    os.replace(written, target)
    from ruyaml.comments import CommentedMap

    entry = onnx_entry if onnx_entry is not None else CommentedMap()
    for key in ("parent", "comment", "opset_version"):
        entry.pop(key, None)
    entry["source"] = target.name
    entry["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    entry["parent"] = "torchscript" if "torchscript" in weights else "pytorch_script"
    entry["opset_version"] = ONNX_OPSET
    entry["comment"] = (
        f"re-exported from the TorchScript at opset {ONNX_OPSET} by zoo fix-deepimagej; max |Δ| "
        f"{difference:.2e} on the test input"
    )
    weights["onnx"] = entry
    return [
        Fix(
            "DIJ13",
            f"re-exported weights.onnx from the TorchScript at opset {ONNX_OPSET}, IR "
            f"≤ {ONNX_MAX_IR_VERSION} (was {why}); max |Δ| {difference:.2e} on the test input",
        )
    ]


def _test_source(rdf: dict, index: int, tensor: dict) -> str:
    """The input's test file: format 0.5 `test_tensor`, 0.3/0.4 `test_inputs[index]`."""
    entry = tensor.get("test_tensor")
    if isinstance(entry, dict) and entry.get("source"):
        return str(entry["source"])
    listed = rdf.get("test_inputs")
    if isinstance(listed, list) and index < len(listed) and isinstance(listed[index], str):
        return listed[index]
    name = tensor.get("id", tensor.get("name"))
    raise ExportError(f"tensor {name!r} has no test tensor to prove a re-exported ONNX against")


def export_onnx_from_torchscript(
    script_path: Path, onnx_path: Path, inputs: list[np.ndarray], input_ids: list[str], output_ids: list[str]
) -> float:
    """Write the TorchScript as ONNX (opset 17, IR ≤ 8, dynamic axes but channels), and return the largest |Δ|
    between the two on `inputs`; raises ExportError when they disagree by more than 1e-4."""
    import warnings

    import onnx
    import torch

    from zoo.bioimage.runtimes.onnx_backend import OnnxBackend

    module = torch.jit.load(str(script_path), map_location="cpu").eval()
    tensors = tuple(torch.from_numpy(x) for x in inputs)
    with torch.no_grad():
        expected = module(*tensors)
    expected = [e.numpy() for e in (expected if isinstance(expected, (list, tuple)) else [expected])]
    dynamic = {name: {i: f"{name}_{i}" for i in range(x.ndim) if i != 1} for name, x in zip(input_ids, inputs)}
    dynamic.update({name: {i: f"{name}_{i}" for i in range(e.ndim) if i != 1} for name, e in zip(output_ids, expected)})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                tensors,
                str(onnx_path),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=input_ids,
                output_names=output_ids,
                dynamic_axes=dynamic,
            )
        proto = onnx.load(str(onnx_path))
        if proto.ir_version > ONNX_MAX_IR_VERSION:
            proto.ir_version = ONNX_MAX_IR_VERSION
            onnx.save(proto, str(onnx_path))
        onnx.checker.check_model(proto)
        actual = OnnxBackend(onnx_path).predict(*inputs)
    except Exception as e:
        raise ExportError(
            f"onnx: re-export of {script_path.name} at opset {ONNX_OPSET} failed ({type(e).__name__}: {e})"
        ) from e
    difference = max(float(np.max(np.abs(a.astype(np.float64) - e))) for a, e in zip(actual, expected))
    if difference > ONNX_MAX_ABS_DIFFERENCE:
        raise ExportError(
            f"onnx: the re-exported {onnx_path.name} differs from {script_path.name} by {difference:.2e} "
            f"on the test input, more than {ONNX_MAX_ABS_DIFFERENCE:g}"
        )
    return difference


def _package_name(rdf_path: Path) -> str:
    from ruyaml import YAML

    rdf = YAML(typ="safe").load(rdf_path.read_text(encoding="utf-8"))
    return f"{_slug(str(rdf.get('id') or rdf.get('name') or 'model'))}-deepimagej"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"
