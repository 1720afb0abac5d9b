"""`zoo convert`: add weight formats to a bioimage.io package someone already made (folder, rdf or zip; formats 0.4
and 0.5), e.g. TorchScript, ONNX and TF for a package that has only `pytorch_state_dict` weights, which Fiji cannot
run, or ONNX at opset 17 for a package whose ONNX is too new for deepImageJ.

The package's best loadable weights are the parent (PARENT_ORDER; code-running formats only with trust); each new
copy is made from it by the exporter table (zoo.packaging.exporters) and proven against it through the runtime that
`zoo predict` and `zoo validate` use, on the package's test input after its pre-processing and on random inputs of
other valid sizes. The rdf is written at format 0.5 by bioimageio.spec with the original weights kept, each new
entry with its `parent` and the agreement in its comment, hashes recomputed. The package is built in a temporary
folder inside the output folder, validated, and only then moved into place; the input is never modified.

`open_parent` + `reexport` are the one place that re-exports a format from another with proof: `zoo
fix-deepimagej` uses them for its ONNX."""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo.bioimage.formats import ALIASES, WEIGHT_FORMATS
from zoo.bioimage.onnx_file import read_onnx
from zoo.bioimage.rdf_weights import WeightsEntry, weight_entries
from zoo.bioimage.source import OpenedSource, open_source, path_in_package, refuse_output_inside
from zoo.errors import ExportError, InputError, PackageError, ZooError
from zoo.packaging.agreement import AGREEMENT_ATOL
from zoo.packaging.exporters import EXPORTERS, ExportedWeights, get_exporter
from zoo.packaging.parent import (  # noqa: F401  (re-exported: convert's public names)
    PARENT_ORDER,
    Parent,
    ParentModel,
    choose_parent,
    convertible_tensors,
    open_parent,
    preprocessed_test_input,
    proof_inputs,
    read_package_rdf,
)
from zoo.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)

# what `formats=None` asks for: the formats deepImageJ runs without Python
DEFAULT_FORMATS = ("torchscript", "onnx", "tensorflow_saved_model_bundle")
ONNX_OPSET, ONNX_MAX_IR_VERSION = 17, 8  # deepImageJ's installable ONNX engine (RULES.md DIJ13)


@dataclass
class FormatOutcome:
    """What happened to one requested format."""

    weight_format: str
    status: str  # "kept" (in the package already), "added", "re-written" (replaced by a proven copy), "not made"
    made_from: str | None  # the format it was made from; None when kept as it was or nothing was tried
    why: str  # why kept, why that parent, or why it was not made
    weights: ExportedWeights | None = None  # the new copy, with its agreement

    @property
    def max_abs(self) -> float | None:
        agreement = self.weights.agreement if self.weights is not None else None
        return agreement.max_abs if agreement is not None else None


@dataclass
class ConvertResult:
    source: Path
    parent: Parent
    outcomes: list[FormatOutcome]
    zip_path: Path | None = None  # None: nothing was written (see not_written)
    report: Any = None  # zoo.validators.report.ValidationReport of the new package
    not_written: str | None = None

    @property
    def added(self) -> list[ExportedWeights]:
        return [o.weights for o in self.outcomes if o.weights is not None and o.status in ("added", "re-written")]

    @property
    def failures(self) -> dict[str, str]:
        return {o.weight_format: o.why for o in self.outcomes if o.status == "not made"}

    @property
    def kept(self) -> list[str]:
        return [o.weight_format for o in self.outcomes if o.status == "kept"]

    @property
    def made_from(self) -> dict[str, str]:
        return {o.weight_format: o.made_from for o in self.outcomes if o.made_from is not None}

    @property
    def exit_code(self) -> int:
        """0: every requested format is in the written package; 1: a format was not made or nothing was written."""
        return 0 if self.zip_path is not None and not self.failures else 1


def parse_convert_formats(formats: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """`torchscript,onnx,tensorflow` -> rdf weight format names (CLI aliases allowed); None: DEFAULT_FORMATS."""
    if formats is None:
        return list(DEFAULT_FORMATS)
    names = [f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    names = list(dict.fromkeys(ALIASES.get(n, n) for n in names))
    unknown = [n for n in names if n not in WEIGHT_FORMATS]
    if unknown or not names:
        raise InputError(
            f"--formats {','.join(unknown) or '(empty)'}: not a weight format; choose from "
            f"{', '.join(DEFAULT_FORMATS)} (tensorflow for short)"
        )
    return names


def convert_package(
    source: Path,
    out_dir: Path,
    formats: list[str],
    *,
    trust: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ConvertResult:
    """Add `formats` to the package at `source`; the zip lands in `out_dir` only once it validates. Raises InputError
    before any work for what the user must change (no weights to convert from without --trust, an existing output
    without `overwrite`, more than one input); formats that cannot be made or do not agree are in the result."""
    from zoo.packaging.rdf import model_id

    progress = progress or SilentProgress()
    source, out_dir = Path(source), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file, not a folder: give a new or existing folder")
    refuse_output_inside("--out", out_dir, source)
    with open_source(source) as opened:
        rdf = read_package_rdf(opened)
        parent = choose_parent(opened, rdf, trust)
        target = out_dir / f"{model_id(str(rdf.get('id') or rdf.get('name') or 'model'))}.zip"
        if target.resolve() == source.resolve():
            raise InputError(
                f"--out {out_dir} would replace the input {source}, which is never changed: choose another"
            )
        if target.exists() and not overwrite:
            raise InputError(f"{target} exists already: pass --overwrite to replace it")
        convertible_tensors(opened, rdf)
        plan = _plan(rdf, opened, formats, parent)
        work_to_do = any(step.action in ("make", "rewrite") for step in plan)
        loaded = open_parent(opened, parent.weight_format, trust=trust) if work_to_do else None
        from zoo.packaging.package import move_into_place, point_into_zip, staging_folder

        with staging_folder(out_dir, ".zoo-convert-") as tmp:
            work = tmp / "package"
            shutil.copytree(opened.root, work)
            outcomes = _make(loaded, plan, opened, tmp / "made", trust, progress)
            result = ConvertResult(source, parent, outcomes)
            if not [o for o in outcomes if o.status in ("added", "re-written", "kept")]:
                result.not_written = "no requested format could be made; nothing was written"
                return result
            staged = tmp / target.name
            _write(opened, work, outcomes, staged)
            report = _validate(staged, trust, progress)
            report.source = str(target)
            result.report = report
            if report.status != "passed":
                failed = sorted({f.id for f in report.failed()})
                result.not_written = (
                    f"the converted package failed validation ({report.status}: {', '.join(failed) or 'no rule'})"
                    f" and was not written"
                )
                return result
            from zoo.packaging.export import ExportResult

            move_into_place(staged, target, overwrite)
            point_into_zip(ExportResult(weights=result.added), work, target)
            result.zip_path = target
    return result


# ------------------------------------------------------------------------------------------ making copies


def reexport(parent: ParentModel, weight_format: str, workdir: Path, *, model: Any = None) -> ExportedWeights:
    """`weight_format` made from the parent (or from `model`, e.g. a re-written ONNX file of the same graph) by the
    exporter table, its `parent` set to the parent's format, and proven against the parent as the package ships it.
    ExportError when it cannot be made from this parent or differs by more than AGREEMENT_ATOL."""
    from zoo.packaging.export import prove_agreement

    if not parent.can_make(weight_format):
        raise ExportError(why_not(weight_format, parent.weight_format))
    workdir = Path(workdir) / weight_format
    workdir.mkdir(parents=True, exist_ok=True)
    exporter = get_exporter(parent.framework, weight_format)
    exported = exporter(parent.model if model is None else model, parent.example, workdir, parent.context)
    exported.parent = parent.weight_format
    exported.agreement = prove_agreement(exported, parent.reference, parent.inputs)
    if not exported.agreement.passed:
        worst = max(exported.agreement.cases, key=lambda c: c.max_abs)
        raise ExportError(
            f"{weight_format}: not shipped, max |Δ| {exported.agreement.max_abs:.2e} to the {parent.weight_format} "
            f"weights (case {worst.case!r}, shape {worst.shape}, at {worst.worst_index}), expected ≤ {AGREEMENT_ATOL:g}"
        )
    return exported


def why_not(weight_format: str, parent: str) -> str:
    """One line: why `weight_format` cannot be made from `parent` weights, and what would work."""
    makers = [p for p in PARENT_ORDER if weight_format in EXPORTERS[_FRAMEWORKS[p]] and p != weight_format]
    alternative = f"a package with {' or '.join(makers)} weights would work" if makers else "no zoo exporter writes it"
    return f"{weight_format}: zoo has no converter from {parent} to {weight_format}; {alternative}"


_FRAMEWORKS = {  # the exporter table a parent's live model goes through (zoo.packaging.sources)
    "pytorch_state_dict": "pytorch",
    "torchscript": "torchscript",
    "keras_v3": "keras",
    "keras_hdf5": "keras",
    "onnx": "onnx",
}


@dataclass(frozen=True)
class _Step:
    weight_format: str
    action: str  # "keep", "make", "rewrite", "refuse"
    why: str


def _plan(rdf: dict, opened: OpenedSource, formats: list[str], parent: Parent) -> list[_Step]:
    present = weight_entries(rdf)
    steps = []
    for weight_format in formats:
        if weight_format in present:
            too_new = _onnx_too_new(present[weight_format], opened) if weight_format == "onnx" else None
            if too_new:
                steps.append(_Step(weight_format, "rewrite", too_new))
            else:
                steps.append(_Step(weight_format, "keep", "in the package already"))
        elif weight_format in EXPORTERS[_FRAMEWORKS[parent.weight_format]]:
            steps.append(_Step(weight_format, "make", parent.why))
        else:
            steps.append(_Step(weight_format, "refuse", why_not(weight_format, parent.weight_format)))
    # TF from an ONNX parent is made from the re-written graph: the re-write goes first
    steps.sort(key=lambda s: s.action != "rewrite")
    return steps


def _onnx_too_new(entry: WeightsEntry, opened: OpenedSource) -> str | None:
    """Why deepImageJ cannot read the package's ONNX file (opset > 17 or IR > 8), else None."""
    path, _ = path_in_package(opened.root, entry.source or "")
    if path is None or not path.is_file():
        return None
    content = read_onnx(path)
    if content.opset is not None and content.opset <= ONNX_OPSET and (content.ir_version or 0) <= ONNX_MAX_IR_VERSION:
        return None
    return (
        f"its own graph, at opset {content.opset}, IR {content.ir_version}: deepImageJ reads opset ≤ {ONNX_OPSET}, "
        f"IR ≤ {ONNX_MAX_IR_VERSION}, so it was re-written at opset {ONNX_OPSET}"
    )


def _make(
    parent: ParentModel | None, plan: list[_Step], opened: OpenedSource, workdir: Path, trust: bool, progress: Progress
) -> list[FormatOutcome]:
    outcomes: dict[str, FormatOutcome] = {}
    to_make = [s for s in plan if s.action in ("make", "rewrite")]
    progress.start("converting", len(to_make))
    for step in plan:
        if step.action == "keep":
            outcomes[step.weight_format] = FormatOutcome(step.weight_format, "kept", None, step.why)
        elif step.action == "refuse":
            outcomes[step.weight_format] = FormatOutcome(step.weight_format, "not made", None, step.why)
    for step in to_make:
        progress.advance(0, format=f"{step.weight_format} (running)")
        made_from = "onnx" if step.action == "rewrite" else parent.weight_format
        try:
            if step.action == "rewrite":
                own = parent if parent.weight_format == "onnx" else open_parent(opened, "onnx", trust=trust)
                weights = reexport(own, "onnx", workdir)
                weights.parent = own.entry.raw.get("parent") if isinstance(own.entry.raw.get("parent"), str) else None
                if own is parent:  # later copies start from the graph deepImageJ reads, proven against the original
                    parent = replace(parent, model=weights.path)
            else:
                weights = reexport(parent, step.weight_format, workdir)
        except ZooError as e:
            outcomes[step.weight_format] = FormatOutcome(step.weight_format, "not made", made_from, str(e))
        except Exception as e:  # an exporter's unexpected failure must not hide the other formats
            logger.debug("conversion to %s failed", step.weight_format, exc_info=True)
            why = f"{step.weight_format}: export failed ({type(e).__name__}: {e})"
            outcomes[step.weight_format] = FormatOutcome(step.weight_format, "not made", made_from, why)
        else:
            status = "re-written" if step.action == "rewrite" else "added"
            outcomes[step.weight_format] = FormatOutcome(step.weight_format, status, made_from, step.why, weights)
        done = "done" if outcomes[step.weight_format].status != "not made" else "failed"
        progress.advance(1, format=f"{step.weight_format} {done}")
    progress.finish()
    return [outcomes[s.weight_format] for s in plan if s.weight_format in outcomes]


# ------------------------------------------------------------------------------------------ the package


def _write(opened: OpenedSource, work: Path, outcomes: list[FormatOutcome], staged_zip: Path) -> None:
    """The rdf at format 0.5 (bioimageio.spec's upgrade), the new weights beside the original ones, zipped."""
    from bioimageio.spec import ValidationContext

    from zoo.packaging.package import write_package_zip

    descr = upgraded_description(opened, work / opened.rdf_path.relative_to(opened.root))
    entries: dict[str, Any] = {}
    with ValidationContext(root=work, perform_io_checks=True):
        for outcome in outcomes:
            if outcome.weights is None:
                continue
            weights = outcome.weights
            replaced = getattr(descr.weights, weights.weight_format, None) if outcome.status == "re-written" else None
            name = _replaced_source(replaced) or _free_name(work, weights.path.name)
            os.replace(weights.path, work / name)
            weights.path = work / name
            entries[weights.weight_format] = _weights_entry(weights, outcome, name)
        descr = descr.model_copy(update={"weights": descr.weights.model_copy(update=entries)})
    if descr.id is None:  # deepImageJ drops a model without an id from its list when it has a config (DIJ03)
        from bioimageio.spec.model.v0_5 import ModelId

        from zoo.packaging.rdf import model_id

        descr = descr.model_copy(update={"id": ModelId(model_id(str(descr.name)))})
    write_package_zip(without_nulls(explicit_axis_ids(descr), work), work, staged_zip)


def upgraded_description(opened: OpenedSource, rdf_path: Path):
    """The package's description at format 0.5 (bioimageio.spec's upgrade, files checked against `rdf_path`'s
    folder), or one PackageError line."""
    from bioimageio.spec import load_model_description

    try:
        with warnings.catch_warnings(record=True) as caught:  # the upgrade's doubts: the validation decides
            warnings.simplefilter("always")
            descr = load_model_description(rdf_path, format_version="latest", perform_io_checks=True)
        for warning in caught:
            logger.info("bioimageio.spec upgrading %s to format 0.5: %s", opened.source, warning.message)
    except Exception as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [""]
        first = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]  # the heading
        raise PackageError(
            f"bioimageio.spec cannot describe {opened.source} at format 0.5 ({type(e).__name__}: {first[:300]}): "
            "run `zoo validate` on it"
        ) from e
    return descr


def without_nulls(descr, work: Path):
    """The description built again from what was given, less the nulls that bioimageio.spec's 0.4 → 0.5 upgrade
    writes for every absent field (`torchscript: null` among the weights, which a reader may take for an entry)."""
    from bioimageio.spec import InvalidDescr, ValidationContext, build_description

    content = descr.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    with ValidationContext(root=work, perform_io_checks=True):
        rebuilt = build_description(content)
    if isinstance(rebuilt, InvalidDescr):
        raise PackageError(f"the converted rdf is not valid: {rebuilt.validation_summary.format()}")
    return rebuilt


def explicit_axis_ids(descr):
    """Every axis id marked as given, so that bioimageio.spec writes ids equal to their default too (a space axis
    `x`): deepImageJ cannot name an axis without one (RULES.md DIJ17)."""

    def tensor(t):
        return t.model_copy(update={"axes": [a.model_copy(update={"id": a.id}) for a in t.axes]})

    return descr.model_copy(
        update={"inputs": [tensor(t) for t in descr.inputs], "outputs": [tensor(t) for t in descr.outputs]}
    )


def _replaced_source(entry) -> str | None:
    """The package-relative path of the weights a re-written copy replaces (None for a URL)."""
    source = str(entry.source) if entry is not None else ""
    return source if source and "://" not in source and not Path(source).is_absolute() else None


def _free_name(folder: Path, name: str) -> str:
    """`name`, or `name` with a number when the package has a file of that name already."""
    stem, suffix = name.split(".", 1) if "." in name else (name, "")
    candidate, n = name, 1
    while (folder / candidate).exists():
        n += 1
        candidate = f"{stem}_{n}.{suffix}" if suffix else f"{stem}_{n}"
    return candidate


def _weights_entry(weights: ExportedWeights, outcome: FormatOutcome, source: str):
    from bioimageio.spec.model import v0_5

    how = "re-written from its own graph" if outcome.status == "re-written" else f"made from {outcome.made_from}"
    common: dict[str, Any] = dict(source=Path(source), comment=f"{how} by zoo convert; {weights.agreement.summary()}")
    if weights.parent is not None:
        common["parent"] = weights.parent
    if weights.weight_format == "torchscript":
        return v0_5.TorchscriptWeightsDescr(**common, pytorch_version=v0_5.Version(weights.framework_version))
    if weights.weight_format == "onnx":
        return v0_5.OnnxWeightsDescr(**common, opset_version=weights.details["opset_version"])
    if weights.weight_format == "tensorflow_saved_model_bundle":
        return v0_5.TensorflowSavedModelBundleWeightsDescr(
            **common, tensorflow_version=v0_5.Version(weights.framework_version)
        )
    if weights.weight_format == "keras_v3":
        return v0_5.KerasV3WeightsDescr(
            **common,
            keras_version=v0_5.Version(weights.framework_version),
            backend=(weights.details["backend"], v0_5.Version(weights.details["backend_version"])),
        )
    raise PackageError(f"{weights.weight_format}: zoo convert does not describe this format")


def _validate(staged_zip: Path, trust: bool, progress: Progress):
    from zoo.validators import validate_source

    return validate_source(staged_zip, trust=trust, device="cpu", progress=progress)


__all__ = [
    "ConvertResult",
    "FormatOutcome",
    "Parent",
    "ParentModel",
    "choose_parent",
    "convert_package",
    "convertible_tensors",
    "explicit_axis_ids",
    "open_parent",
    "parse_convert_formats",
    "preprocessed_test_input",
    "proof_inputs",
    "reexport",
    "upgraded_description",
    "why_not",
    "without_nulls",
]
