"""Export a checkpoint to every requested weight format and prove each copy against the source model."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.bioimage.halo import TILING_ATOL, HaloMeasurement, measure_halo
from zoo.errors import ExportError, InputError
from zoo.packaging.agreement import AGREEMENT_ATOL, agreement_inputs, measure_agreement
from zoo.packaging.exporters import (
    EXPORTERS,
    FORMAT_ALIASES,
    WEIGHT_FILES,
    ExportContext,
    ExportedWeights,
    get_exporter,
)
from zoo.packaging.source_model import SourceModel
from zoo.progress import Progress, SilentProgress
from zoo.trainers.architectures import architecture_source
from zoo.trainers.checkpoint import Checkpoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Geometry:
    """Valid spatial sizes (min + n*step along every spatial axis; step 0: exactly min) and the halo that tiles
    must overlap by."""

    min_size: int
    step: int
    halo: int
    halo_measurement: HaloMeasurement | None = None

    @property
    def fixed(self) -> bool:
        return self.step == 0

    @classmethod
    def for_unet(cls, depth: int, source: SourceModel | None = None, image: np.ndarray | None = None) -> Geometry:
        """step = 2**depth; the halo is measured on the trained model when given (else the analytic bound
        of the receptive field, 8·step), on random noise and, when given, on the (normalised, spatial) `image`
        mirrored to the size needed: the larger of the two, since a model whose outputs saturate on noise can
        look local there and not on real content. The smallest size leaves one step inside the halos."""
        step = 2**depth
        bound = 8 * step
        measurement = None
        if source is not None:
            core = 8 * step if len(source.spatial) == 2 else 4 * step  # a 3D window grows with the cube
            # a 10x margin below the tiling tolerance: runtimes' float noise must not push a tile over it
            options = dict(atol=TILING_ATOL / 10, core=core, output_layout=source.output_layout)
            measurement = measure_halo(source.predict, source.layout, step, bound, **options)
            if image is not None:
                size = core + 2 * (bound + 2 * step)
                content = source.batch_of_one(_mirrored_to(image, size))
                on_content = measure_halo(source.predict, source.layout, step, bound, image=content, **options)
                measurement = max(measurement, on_content, key=lambda m: m.halo)
        halo = measurement.halo if measurement is not None else bound
        return cls(min_size=2 * halo + step, step=step, halo=halo, halo_measurement=measurement)

    @classmethod
    def for_checkpoint(
        cls, checkpoint: Checkpoint, source: SourceModel | None = None, image: np.ndarray | None = None
    ) -> Geometry:
        """A fixed input size for models that take one (classifiers), else the U-Net rule from the depth."""
        task = checkpoint.task_spec
        if task.fixed_size is not None:
            return cls(min_size=int(task.fixed_size[-1]), step=0, halo=0)
        return cls.for_unet(int(checkpoint.architecture_kwargs["depth"]), source, image)

    def largest_valid(self, size: int) -> int | None:
        """The largest valid size ≤ `size`, or None when `size` is below the minimum."""
        if size < self.min_size:
            return None
        return self.min_size if self.fixed else size - (size - self.min_size) % self.step


@dataclass
class ExportResult:
    weights: list[ExportedWeights]
    failures: dict[str, str] = field(default_factory=dict)  # weight format -> why it is not shipped
    geometry: Geometry | None = None
    layout: str = "bcyx"
    test_image: np.ndarray | None = None  # the raw test image (2D or 3D), cropped to a valid size
    output_layout: str = "bcyx"


def parse_formats(formats: str | list[str] | tuple[str, ...] | None, framework: str = "pytorch") -> list[str]:
    """`torchscript,onnx` -> the weight formats `framework` can export, native first, or a clear error.
    None means every format the framework allows."""
    table = EXPORTERS[framework]
    native = next(iter(table))
    if formats is None:
        return list(table)
    names = [f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    names = [FORMAT_ALIASES.get(n, n) for n in names]
    unknown = [n for n in names if n not in table]
    if unknown or not names:
        raise InputError(
            f"--formats {','.join(unknown) or '(empty)'}: not a weight format a {framework} model "
            f"exports to; choose from {', '.join(table)}"
        )
    if native not in names:
        names.insert(0, native)  # the parent every other format points to
    return [n for n in table if n in names]


def export_checkpoint(
    checkpoint: Checkpoint,
    formats: list[str],
    workdir: Path,
    test_image: np.ndarray,
    progress: Progress | None = None,
    source: SourceModel | None = None,
) -> ExportResult:
    """Measure the halo, then write each format into `workdir`, run it on the (normalised) test image and on
    random inputs of other valid sizes, and keep it only when it agrees with the source model. Failures are
    collected, not raised, unless nothing at all could be exported. `test_image` is the raw 2D image."""
    from zoo.trainers.datasets import normalize_image

    progress = progress or SilentProgress()
    source = source or SourceModel.from_checkpoint(checkpoint)  # callers that hold the model pass it
    geometry = Geometry.for_checkpoint(checkpoint, source, normalize_image(np.asarray(test_image, dtype=np.float32)))
    test_image = _crop_to_valid(np.asarray(test_image, dtype=np.float32), geometry)
    test_input = source.batch_of_one(normalize_image(test_image))
    context = ExportContext(
        architecture_file=architecture_source(checkpoint.architecture),
        architecture_callable=checkpoint.architecture_class,
        architecture_kwargs=checkpoint.architecture_kwargs,
        input_id=source.task.input_id,
        output_id=source.task.output_id,
        layout=source.layout,
        output_layout=source.output_layout if source.output_layout != source.layout else None,
    )
    result = export_model(source, formats, workdir, test_input, geometry, context, progress)
    result.test_image = test_image
    return result


def export_model(
    source: SourceModel,
    formats: list[str],
    workdir: Path,
    test_input: np.ndarray,
    geometry: Geometry,
    context: ExportContext,
    progress: Progress | None = None,
    *,
    max_batch: int = 2,
) -> ExportResult:
    """Write each format (EXPORTERS[source.framework]) into `workdir`, run it on `test_input` (a batch of one in
    the model's layout, as the model takes it) and on random inputs of other valid sizes (batches up to `max_batch`),
    and keep it only when it agrees with the source model. Failures are collected, not raised, unless nothing at all
    could be exported."""
    progress = progress or SilentProgress()
    inputs = agreement_inputs(test_input, geometry.min_size, geometry.step, source.layout, max_batch=max_batch)
    model, reference = source.model, source.predict

    result = ExportResult(weights=[], geometry=geometry, layout=source.layout, output_layout=source.output_layout)
    progress.start("exporting", len(formats))
    for weight_format in formats:
        progress.advance(0, format=f"{weight_format} (running)")  # the bar names the format being exported
        try:
            exported = get_exporter(source.framework, weight_format)(model, test_input, workdir, context)
            exported.agreement = prove_agreement(exported, reference, inputs)
        except ExportError as e:
            result.failures[weight_format] = str(e)
        except Exception as e:  # an exporter's unexpected failure must not hide the other formats
            logger.debug("export of %s failed", weight_format, exc_info=True)
            result.failures[weight_format] = f"{weight_format}: export failed ({type(e).__name__}: {e})"
        else:
            if exported.agreement.passed:
                result.weights.append(exported)
            else:
                worst = max(exported.agreement.cases, key=lambda c: c.max_abs)
                result.failures[weight_format] = (
                    f"{weight_format}: not shipped, max |Δ| {exported.agreement.max_abs:.2e} to the source model "
                    f"(case {worst.case!r}, shape {worst.shape}, at {worst.worst_index}), expected ≤ {AGREEMENT_ATOL:g}"
                )
        progress.advance(1, format=f"{weight_format} {'failed' if weight_format in result.failures else 'done'}")
    progress.finish()
    if not result.weights:
        raise ExportError("no weight format could be exported: " + "; ".join(result.failures.values()))
    return result


def export_files(checkpoint: Checkpoint, formats: list[str]) -> list[str]:
    """The names of the files an export of `formats` writes: each format's weight file, and the architecture's
    source file beside pytorch_state_dict weights."""
    names = [WEIGHT_FILES[f] for f in formats if f in WEIGHT_FILES]
    if "pytorch_state_dict" in formats:
        names.append(architecture_source(checkpoint.architecture).name)
    return names


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """Unless `overwrite`, an InputError naming the first of `paths` that exists: nothing is replaced silently."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more file(s) this would write)" if len(existing) > 1 else ""
        raise InputError(f"{existing[0]} exists already{more}: pass --overwrite to replace it")


def write_export(
    checkpoint: Checkpoint,
    out_dir: Path,
    formats: list[str],
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
) -> ExportResult:
    """Export `formats` (parse_formats' names) into `out_dir`. A file the export would write that exists already is
    refused (InputError) before any work unless `overwrite`; the files are made in a temporary folder inside
    `out_dir` and each moved into place in one atomic step, so an existing file is either untouched or replaced.
    Formats that fail are listed in the result, not written; with `overwrite`, an older file of such a format is
    left as it was and its failure says so."""
    out_dir = Path(out_dir)
    planned = [out_dir / name for name in export_files(checkpoint, formats)]
    refuse_existing(planned, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".zoo-export-") as tmp:
        result = export_checkpoint(checkpoint, formats, Path(tmp), checkpoint.sample["image"], progress)
        for weights in result.weights:
            destination = out_dir / weights.path.name
            os.replace(weights.path, destination)
            weights.path = destination
            architecture = weights.details.get("architecture_file")
            if architecture is not None:
                os.replace(architecture, out_dir / Path(architecture).name)
                weights.details["architecture_file"] = out_dir / Path(architecture).name
    for weight_format in result.failures:
        stale = out_dir / WEIGHT_FILES.get(weight_format, "")
        if weight_format in WEIGHT_FILES and stale.is_file():
            result.failures[weight_format] += f" ({stale} is from an earlier export and was left as it was)"
    return result


def _mirrored_to(image: np.ndarray, size: int) -> np.ndarray:
    """`image` mirrored outwards (or cropped at its centre) to `size` along every axis."""
    pads = [(max(0, size - s) // 2, max(0, size - s) - max(0, size - s) // 2) for s in image.shape]
    padded = np.pad(image, pads, mode="symmetric")
    window = tuple(slice((s - size) // 2, (s - size) // 2 + size) for s in padded.shape)
    return np.ascontiguousarray(padded[window], dtype=np.float32)


def _crop_to_valid(image: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The centre of `image` at the largest size the model accepts, along every (spatial) axis."""
    sizes = [geometry.largest_valid(s) for s in image.shape]
    if any(size is None for size in sizes):
        raise ExportError(
            f"the test image is {'x'.join(map(str, image.shape))} px, smaller than the model's "
            f"minimum of {geometry.min_size} px (halo {geometry.halo} on each side): train on "
            "larger images"
        )
    window = tuple(slice((s - size) // 2, (s - size) // 2 + size) for s, size in zip(image.shape, sizes))
    return image[window]


def prove_agreement(exported: ExportedWeights, reference, inputs: dict[str, np.ndarray]):
    """Load the exported file in its own runtime, run it on every input and compare with the source."""
    from zoo.bioimage.runtimes import load_backend

    options = {}
    if exported.weight_format == "pytorch_state_dict":
        options = {
            "architecture_file": exported.details["architecture_file"],
            "callable_name": exported.details["callable"],
            "kwargs": exported.details["kwargs"],
        }
    backend = load_backend(exported.weight_format, exported.path, **options)
    return measure_agreement(exported.weight_format, reference, lambda x: backend.predict(x)[0], inputs)
