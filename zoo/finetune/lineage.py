"""The fine-tuned model as a new package that says where it comes from: every weight format its trained framework
allows re-exported with proof (zoo.packaging.export), the halo re-measured on the new weights, the base package's
description upgraded to format 0.5 (zoo.packaging.convert) with the new weights, test output, sizes and halo, a
`parent` link to the base model (its bioimage.io id; its rdf's sha256 is always recorded under config.zoo.finetune),
a card that records the base model and the fine-tuning run (zoo.finetune.card), validated in a temporary folder and
only then moved into place."""

from __future__ import annotations

import datetime
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bioimage.halo import TILING_ATOL, measure_halo
from zoo.bioimage.rdf_weights import weight_entries
from zoo.bioimage.source import OpenedSource, path_in_package
from zoo.errors import ZooError
from zoo.packaging.export import ExportResult, Geometry
from zoo.packaging.exporters import EXPORTERS
from zoo.packaging.rdf import model_id
from zoo.packaging.source_model import SourceModel
from zoo.progress import Progress
from zoo.trainers.task import Task

NAME_SUFFIX = " fine-tuned"
TASK_KINDS = {"bce-dice": "segmentation", "cross-entropy": "multiclass", "mse": "restoration"}


@dataclass
class Lineage:
    name: str
    parent: dict[str, Any]  # the base model: id (when it has one), version, name, rdf sha256
    halo: dict[str, Any]  # declared before, now, and how it was found
    exported: ExportResult | None = None
    report: Any = None  # zoo.validators.report.ValidationReport of the new package
    zip_path: Path | None = None
    not_written: str | None = None


def finetuned_name(rdf: dict) -> str:
    base = str(rdf.get("name") or rdf.get("id") or "model").strip()
    return base if base.endswith(NAME_SUFFIX) else base + NAME_SUFFIX


def package_path(rdf: dict, out: Path) -> Path:
    """Where the fine-tuned package's zip goes."""
    return Path(out) / f"{model_id(finetuned_name(rdf))}.zip"


def build_lineage(
    opened: OpenedSource,
    rdf: dict,
    trainable,
    objective,
    processing,
    sizes,
    result,
    facts: dict[str, Any],
    target: Path,
    *,
    formats: list[str] | None,
    trust: bool,
    overwrite: bool,
    progress: Progress,
) -> Lineage:
    """Export, describe, validate and move the fine-tuned package into place; a package that does not validate is
    not written (the Lineage says why)."""
    from zoo.bioimage.files import sha256_of

    parent = trainable.parent
    lineage = Lineage(
        finetuned_name(rdf),
        {
            **({"id": str(rdf["id"])} if rdf.get("id") else {}),
            **({"version": str(rdf["version"])} if rdf.get("version") is not None else {}),
            "name": str(rdf.get("name") or ""),
            "rdf_sha256": sha256_of(opened.rdf_path),
            "weights": trainable.weight_format,
        },
        {},
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".zoo-finetune-") as tmp:
        made = Path(tmp) / "made"
        made.mkdir()
        from zoo.packaging.convert import upgraded_description

        base = upgraded_description(opened, opened.rdf_path)  # before any export: the base must read at format 0.5
        source = _source_model(trainable, objective, made / "trained")
        exported = _export(trainable, source, formats, made, progress)
        lineage.exported = exported
        if not exported.weights:
            lineage.not_written = "no weight format could be exported: " + "; ".join(exported.failures.values())
            return lineage
        declared = max((a.halo for a in processing.output_spec.axes), default=0)
        geometry, lineage.halo = remeasure_halo(source, sizes, declared, parent.example)
        exported.geometry = geometry
        work = Path(tmp) / "package"
        _stage_files(opened, rdf, exported, work)
        files = _write_tensors(base, source, processing, parent.example, work, objective)
        from zoo.finetune.card import finetune_config, write_card

        files.update(write_card(work, base, lineage, result, facts, exported))
        config = finetune_config(base, lineage, result, facts, exported, geometry)
        descr = _describe(base, lineage, exported, geometry, files, config, work)
        staged = Path(tmp) / target.name
        from zoo.packaging.package import move_into_place, point_into_zip, write_package_zip
        from zoo.validators import validate_source

        write_package_zip(descr, work, staged)
        report = validate_source(staged, trust=trust, device="cpu", progress=progress)
        report.source = str(target)
        lineage.report = report
        if report.status != "passed":
            failed = sorted({f.id for f in report.failed()})
            lineage.not_written = (
                f"the fine-tuned package failed validation ({report.status}: {', '.join(failed) or 'no rule'}) and "
                "was not written"
            )
            return lineage
        move_into_place(staged, target, overwrite)
        point_into_zip(exported, work, target)
        lineage.zip_path = target
    return lineage


def _source_model(trainable, objective, folder: Path) -> SourceModel:
    """The trained model as the exporters take it (for ONNX: the graph with its trained weights written back)."""
    parent = trainable.parent
    layout, output_layout = parent.context.layout, parent.context.output_axes
    task = Task(
        kind=TASK_KINDS[objective.loss],
        spatial="zyx" if "z" in layout else "yx",
        input_id=parent.context.input_id,
        output_id=parent.context.output_id,
        output_range=None,
    )
    return SourceModel(trainable.framework, layout, trainable.export_model(folder), task, outputs=output_layout)


def _export(trainable, source: SourceModel, formats: list[str] | None, made: Path, progress: Progress) -> ExportResult:
    """Every requested format the trained framework exports to, each made by zoo.packaging.convert.reexport (the one
    place that re-exports with proof) and proven against the trained module on the package's test input and random
    inputs of other sizes its rdf allows; the trained model's own format first, the parent of the others."""
    from zoo.packaging.convert import reexport
    from zoo.packaging.parent import ParentModel

    table = EXPORTERS[trainable.framework]
    native = next(iter(table))
    wanted = [native, *(f for f in (formats or table) if f in table and f != native)]
    parent = trainable.parent
    trained = ParentModel(
        native, trainable.framework, source.model, trainable.predict, parent.example, parent.inputs, parent.context,
        parent.entry,
    )  # fmt: skip
    result = ExportResult(weights=[], layout=source.layout, output_layout=source.output_layout)
    result.failures.update(
        {
            f: f"{f}: zoo has no converter from the trained {native} model to {f}"
            for f in formats or []
            if f not in table
        }
    )
    progress.start("exporting", len(wanted))
    for weight_format in wanted:
        progress.advance(0, format=f"{weight_format} (running)")
        try:
            result.weights.append(reexport(trained, weight_format, made))
        except ZooError as e:
            result.failures[weight_format] = str(e)
        except Exception as e:  # an exporter's unexpected failure must not hide the other formats
            result.failures[weight_format] = f"{weight_format}: export failed ({type(e).__name__}: {_first_line(e)})"
        done = "failed" if weight_format in result.failures else "done"
        progress.advance(1, format=f"{weight_format} {done}")
    progress.finish()
    return result


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


def remeasure_halo(source: SourceModel, sizes, declared: int, example: np.ndarray) -> tuple[Geometry, dict[str, Any]]:
    """The halo of the trained weights (tiled vs whole output within zoo.bioimage.halo's tolerance), measured as for
    zoo's own models, and the smallest valid size that leaves a step inside it. A fixed input size keeps the declared
    halo: no whole image larger than one tile can be run to compare with."""
    minimum = max(sizes.minimum.values())
    steps = set(sizes.step.values())
    if 0 in steps or len(steps) != 1:
        how = "kept as declared: the rdf fixes the input size, so no image larger than one tile can be compared"
        return Geometry(min_size=minimum, step=0, halo=declared), {"declared": declared, "halo": declared, "how": how}
    step = steps.pop()
    depth = int(math.log2(step)) if step & (step - 1) == 0 and step > 1 else None
    if depth is not None and example.shape[source.layout.index("c")] == 1:
        spatial = example[tuple(0 if a in "bc" else slice(None) for a in source.layout)]
        geometry = Geometry.for_unet(depth, source, spatial)
    else:
        measurement = measure_halo(source.predict, source.layout, step, 8 * step, atol=TILING_ATOL / 10, core=8 * step)
        geometry = Geometry(2 * measurement.halo + step, step, measurement.halo, measurement)
    need = 2 * geometry.halo + step
    min_size = minimum if minimum >= need else minimum + math.ceil((need - minimum) / step) * step
    geometry = replace(geometry, min_size=min_size)
    measured = geometry.halo_measurement
    return geometry, {
        "declared": declared,
        "halo": geometry.halo,
        "how": "measured on the fine-tuned weights: the smallest overlap at which a tile equals the whole output",
        **(
            {"tiled_vs_whole_max_abs": measured.max_abs, "at_one_step_less": measured.max_abs_below} if measured else {}
        ),
        "min_size": min_size,
    }


def _stage_files(opened: OpenedSource, rdf: dict, exported: ExportResult, work: Path) -> None:
    """The base package's files without its weights, and the new weight files beside them."""
    shutil.copytree(opened.root, work)
    for entry in weight_entries(rdf).values():
        path, refused = path_in_package(work, entry.source or "")
        if refused is None and path is not None and path.is_file():
            path.unlink()
    for weights in exported.weights:
        os.replace(weights.path, work / weights.path.name)
        weights.path = work / weights.path.name
        architecture = weights.details.get("architecture_file")
        if architecture is not None and Path(architecture).exists():
            if Path(architecture).resolve() != (work / Path(architecture).name).resolve():
                shutil.copyfile(architecture, work / Path(architecture).name)
            weights.details["architecture_file"] = work / Path(architecture).name


def _write_tensors(
    base, source: SourceModel, processing, example: np.ndarray, work: Path, objective
) -> dict[str, Path]:
    """The new test output (the trained model on the package's test input, post-processed as the rdf says), sample
    TIFFs of the test input and output, and a cover."""
    import tifffile

    from zoo.model_cards.covers import render_task_cover

    output = processing.postprocess(np.asarray(source.predict(example), dtype=np.float32))
    test_output = Path(str(base.outputs[0].test_tensor.source))
    np.save(work / test_output, output)
    raw = np.load(work / str(base.inputs[0].test_tensor.source), allow_pickle=False).astype(np.float32)
    files = {
        "test_output": test_output,
        "sample_input": Path("sample_input_finetuned.tif"),
        "sample_output": Path("sample_output_finetuned.tif"),
        "cover": Path("cover_finetuned.png"),
    }
    tifffile.imwrite(work / files["sample_input"], np.squeeze(raw))
    tifffile.imwrite(work / files["sample_output"], np.squeeze(output))
    layout, output_layout = source.layout, source.output_layout
    picture = np.squeeze(raw[tuple(0 if a in "bc" else slice(None) for a in layout)])
    shown = np.moveaxis(
        output[0 if output_layout[0] == "b" else slice(None)], output_layout.replace("b", "").index("c"), 0
    )
    render_task_cover(
        source.task.kind,
        picture,
        objective.probabilities(shown[None])[0] if objective.shipped_activation else shown,
        work / files["cover"],
    )
    return files


def _describe(
    descr, lineage: Lineage, exported: ExportResult, geometry: Geometry, files: dict, config: dict, work: Path
):
    """The base description at format 0.5 with the fine-tuned model's weights, files, sizes, halo and lineage."""
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model import v0_5

    from zoo.packaging.convert import explicit_axis_ids, without_nulls
    from zoo.packaging.rdf import weights_descr

    with ValidationContext(root=work, perform_io_checks=True):
        input_tensor = descr.inputs[0]
        axes = [_input_axis(a, geometry) for a in input_tensor.axes]
        inputs = [
            input_tensor.model_copy(
                update={"axes": axes, "sample_tensor": v0_5.FileDescr(source=files["sample_input"])}
            )
        ]
        output_tensor = descr.outputs[0]
        out_axes = [_output_axis(v0_5, a, geometry) for a in output_tensor.axes]
        outputs = [
            output_tensor.model_copy(
                update={
                    "axes": out_axes,
                    "test_tensor": v0_5.FileDescr(source=files["test_output"]),
                    "sample_tensor": v0_5.FileDescr(source=files["sample_output"]),
                }
            )
        ]
        attachments = [*(descr.attachments or []), *(v0_5.FileDescr(source=p) for p in files.get("attachments", []))]
        update = {
            "name": lineage.name,
            "id": v0_5.ModelId(model_id(lineage.name)),
            "description": f"{descr.description.rstrip('.')}. Fine-tuned with zoo on the user's images.",
            "covers": [v0_5.FileDescr(source=files["cover"])],
            "documentation": v0_5.FileDescr(source=files["documentation"]),
            "attachments": attachments or None,
            "inputs": inputs,
            "outputs": outputs,
            "weights": weights_descr(exported, v0_5),
            "parent": _parent_link(v0_5, lineage.parent),
            "training_data": None,
            "timestamp": v0_5.Datetime(datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)),
            "config": v0_5.Config(**config),
        }
        descr = descr.model_copy(update=update)
    return without_nulls(explicit_axis_ids(descr), work)


def _parent_link(v0_5, parent: dict[str, Any]):
    """`parent`: the base model's bioimage.io id (and version); None for a base without an id (its rdf's sha256 is
    in config.zoo.finetune.base either way)."""
    if "id" not in parent:
        return None
    return v0_5.LinkedModel(
        id=v0_5.ModelId(parent["id"]), **({"version": parent["version"]} if "version" in parent else {})
    )


def _input_axis(axis, geometry: Geometry):
    from bioimageio.spec.model import v0_5

    if geometry.fixed or getattr(axis, "type", "") != "space" or not isinstance(axis.size, v0_5.ParameterizedSize):
        return axis
    return axis.model_copy(update={"size": v0_5.ParameterizedSize(min=geometry.min_size, step=axis.size.step)})


def _output_axis(v0_5, axis, geometry: Geometry):
    if geometry.fixed or getattr(axis, "type", "") != "space" or not isinstance(axis.size, v0_5.SizeReference):
        return axis  # a halo goes with a size that follows the input's
    common = dict(id=axis.id, size=axis.size)
    common.update({k: getattr(axis, k) for k in ("description", "unit") if getattr(axis, k, None)})
    common.update({"scale": axis.scale} if axis.scale != 1 else {})
    if geometry.halo:
        return v0_5.SpaceOutputAxisWithHalo(halo=geometry.halo, **common)
    return v0_5.SpaceOutputAxis(**common)


__all__ = ["Lineage", "build_lineage", "finetuned_name", "package_path", "remeasure_halo"]
