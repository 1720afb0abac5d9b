"""Predict with any bioimage.io model package on images of any size.

For each input image: map its axes onto the model's, compute the statistics the pre-processing needs once
over the whole image, cut it into windows of a valid size that overlap by the halo, and stream them through
the stages of zoo.inference.engine (read + pre-process, model, post-process + write, side by side, joined by
small bounded queues): memory is bounded by the tile size, not the image size. All images of a run go through
one pipeline: the model is loaded once, the next image is read and normalised while the current one runs, and
small whole images are stacked into one model call where the model takes a batch. Zarr outputs are written
chunk by chunk and a restarted run skips the tiles a small record says are done; TIFF and CSV outputs are
written atomically.

This module is the entry; the steps live beside it: discovery (the inputs), planning (tile sizes and memory),
jobs (each image from start to written outputs), engine and windows (the tile pipeline)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import InputError
from zoo.inference.axes import ArrayImage
from zoo.inference.discovery import Job, plan_jobs
from zoo.inference.engine import run_tiles
from zoo.inference.instances import instance_sinks
from zoo.inference.jobs import ItemResult, nan_warnings, plan_runs, run_jobs
from zoo.inference.model import PredictionModel, load_model
from zoo.inference.options import parse_memory, parse_tile
from zoo.inference.outputs import MemorySink
from zoo.inference.planning import make_plan, plan_pipeline, tiles_per_call
from zoo.inference.stats import compute_statistics
from zoo.inference.windows import apply_deferred
from zoo.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)


@dataclass
class PredictionResult:
    model: str
    weight_format: str
    device: str
    items: list[ItemResult] = field(default_factory=list)
    not_used: dict[str, str] = field(default_factory=dict)  # weight format (or "cuda") -> why it was not used
    warnings: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if i.error]

    @property
    def tiles(self) -> int:
        return sum(i.tiles for i in self.items)

    @property
    def nan_items(self) -> list[ItemResult]:
        """Items with an output that is NaN throughout (written anyway)."""
        return [i for i in self.items if i.nan_outputs]

    @property
    def exit_code(self) -> int:
        """1 when an image failed or an output is NaN throughout (the outputs are written anyway), else 0."""
        return 1 if self.failed or self.nan_items else 0


def predict(
    model_source,
    inputs,
    out_dir,
    *,
    weights: str | None = None,
    device: str = "auto",
    tile="auto",
    batch_size: int | None = None,
    memory_limit: int | str | None = None,
    trust: bool = False,
    progress: Progress | None = None,
    axes: str | None = None,
    blend: int | None = None,
    overwrite: bool = False,
) -> PredictionResult:
    """Predict every input with the package at `model_source`; one file per input and output tensor in
    `out_dir`: `<input stem>_<output id>.tif` (`.zarr` for Zarr inputs; `.csv` for outputs without spatial axes,
    such as a classifier's classes). Image outputs keep the input's axes and pixel sizes (ImageJ, OME or
    OME-Zarr metadata), times the model's scale where it resizes an axis."""
    started = time.perf_counter()
    budget = parse_memory(memory_limit)
    request = parse_tile(tile)
    if batch_size is not None and batch_size < 1:
        raise InputError(f"--batch-size {batch_size}: give 1 or more")
    if blend is not None and blend < 0:
        raise InputError(f"--blend {blend}: give 0 (off) or a number of pixels")
    model = load_model(Path(model_source), weights=weights, device=device, trust=trust)
    result = PredictionResult(model.name, model.weight_format, model.device, not_used=dict(model.not_used))
    jobs: list[Job] = []
    try:
        jobs = plan_jobs(model, inputs, Path(out_dir), axes, lazy_above_bytes=budget // 4)
        if not overwrite:
            refuse_existing_outputs(jobs)
        runs = plan_runs(
            model, jobs, request=request, budget=budget, blend=blend, batch_size=batch_size, warnings=result.warnings
        )
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        run_jobs(model, runs, batch_size=batch_size, progress=progress or SilentProgress())
        result.items = [run.item for run in runs]
        for run in runs:
            for message in nan_warnings(run):
                logger.warning(message)
                result.warnings.append(message)
    finally:
        for job in jobs:
            job.close()
        model.close()
    result.duration_s = time.perf_counter() - started
    return result


def refuse_existing_outputs(jobs: list[Job]) -> None:
    """Before any work: TIFF and CSV outputs that exist are not replaced silently (a Zarr output resumes)."""
    existing = [path for job in jobs if not job.zarr for path in job.outputs.values() if path.exists()]
    if existing:
        which = (
            f"{existing[0]} and {len(existing) - 1} more outputs exist"
            if len(existing) > 1
            else f"{existing[0]} exists"
        )
        raise InputError(f"{which} already: pass --overwrite to replace them, or choose another --out folder")


def predict_arrays(
    model: PredictionModel,
    arrays: Mapping[str, np.ndarray] | np.ndarray,
    *,
    tile="auto",
    batch_size: int | None = None,
    memory_limit: int | str | None = None,
    blend: int | None = None,
    warnings: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Arrays in the model's axis order in, whole outputs in the model's axis order out (tiled as asked)."""
    if isinstance(arrays, np.ndarray):
        arrays = {model.inputs[0].id: arrays}
    images = {spec.id: ArrayImage(np.asarray(arrays[spec.id]), spec.axis_ids) for spec in model.inputs}
    budget = parse_memory(memory_limit)
    plan = make_plan(
        model, images, parse_tile(tile), budget, blend, batch_size, warnings if warnings is not None else []
    )
    stats = compute_statistics(model.input_measures, {k: [v] for k, v in images.items()}, budget)
    sinks = {spec.id: MemorySink(spec.axis_ids, plan.blended) for spec in model.outputs}
    sinks.update(instance_sinks(model, plan))  # instance labels: objects found tile by tile
    per_call = tiles_per_call(model, batch_size, plan)
    pipeline = plan_pipeline(model, plan, budget, per_call, warnings if warnings is not None else [])
    run_tiles(model, images, plan, stats, sinks, plan.tiles(), per_call, pipeline=pipeline)
    return apply_deferred(model, {k: s.array for k, s in sinks.items()})


__all__ = ["PredictionResult", "predict", "predict_arrays"]
