"""The job lifecycle: each job planned (plan_runs), started (outputs opened, tiles left to run chosen, statistics
computed), run through one TileEngine with the others (run_jobs), and finished (outputs written, resume record
completed) or failed on its own, its ItemResult filled in on the way."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import InputError, ZooError
from zoo.inference.discovery import Job
from zoo.inference.engine import TileEngine, TileTarget
from zoo.inference.image_io import write_csv, write_tiff
from zoo.inference.instances import instance_sinks
from zoo.inference.model import PredictionModel
from zoo.inference.outputs import (
    MemorySink,
    ResumeRecord,
    ZarrSink,
    blend_buffer_bytes,
    nan_count,
    output_layout,
    output_table,
    record_path,
    run_signature,
    scratch_file,
    write_zarr_whole,
)
from zoo.inference.planning import PipelineMemory, make_plan, output_shape, plan_pipeline, tiles_per_call
from zoo.inference.stats import compute_statistics
from zoo.inference.tiling import Tile, TilePlan
from zoo.inference.windows import apply_deferred
from zoo.progress import Progress

logger = logging.getLogger(__name__)


@dataclass
class ItemResult:
    """One input image (or one group of images for a multi-input model) and what was written for it."""

    inputs: dict[str, Path]
    outputs: dict[str, Path] = field(default_factory=dict)
    tiles: int = 0
    resumed_tiles: int = 0
    plan: str = ""
    duration_s: float = 0.0
    error: str | None = None
    nonfinite_inputs: dict[str, int] = field(default_factory=dict)  # input id -> NaN or infinite pixels read
    nan_share: dict[str, float] = field(default_factory=dict)  # output id -> share of NaN in what was written

    @property
    def nan_outputs(self) -> list[str]:
        """Outputs that are NaN throughout: nothing usable was written."""
        return [output for output, share in self.nan_share.items() if share >= 1.0]


@dataclass(eq=False)
class JobRun:
    """One job on its way through the pipeline: its plan, where its outputs go, its resume record, its result."""

    job: Job
    plan: TilePlan
    streaming: bool  # Zarr outputs written chunk by chunk as tiles come, resumable
    budget: int
    pipeline: PipelineMemory | None = None  # model calls in flight under the budget
    item: ItemResult = field(init=False)
    record: ResumeRecord | None = None
    sinks: dict = field(default_factory=dict)
    started: float = 0.0
    closed: bool = False
    target: TileTarget | None = None

    def __post_init__(self) -> None:
        self.item = ItemResult(dict(self.job.paths), plan=self.plan.describe())

    def start(self, model: PredictionModel) -> TileTarget:
        """Outputs opened, tiles left to run chosen, statistics computed: the job ready for the engine."""
        self.started = time.perf_counter()
        job, plan = self.job, self.plan
        tiles = plan.tiles()
        if self.streaming:
            self.record = ResumeRecord(job.outputs, record_path(job), run_signature(model, job, plan))
            done = self.record.done
            tiles = tiles_to_run(plan, done)
            self.item.resumed_tiles = plan.count - len(tiles)
            self.sinks = {
                o.id: ZarrSink(
                    job.outputs[o.id],
                    output_layout(model, job, o),
                    plan,
                    model.geometry.output_maps[o.id],
                    resume=bool(done),
                    done=done if plan.blended else None,
                )
                for o in model.outputs
            }
        else:
            in_memory = self.budget // 2
            if self.pipeline is not None:  # what the windows in flight and the images read whole leave
                held = sum(i.nbytes for i in job.images.values() if i.nbytes <= self.budget // 4)
                in_memory = min(in_memory, max(0, self.budget - self.pipeline.bytes - held))
            self.sinks = {
                o.id: MemorySink(o.axis_ids, plan.blended, scratch_file(job, o.id), in_memory)
                for o in model.outputs
                if o.id not in model.instance_outputs
            }
            self.sinks.update(instance_sinks(model, plan))  # objects found tile by tile, not the network's output
        self.item.tiles = len(tiles)
        stats = (
            compute_statistics(model.input_measures, {k: [v] for k, v in job.mapped.items()}, self.budget)
            if tiles
            else {}
        )
        self.target = TileTarget(
            job.mapped,
            plan,
            stats,
            self.sinks,
            tiles,
            on_done=self.done,
            on_finish=lambda: self.finish(model),
            on_error=self.fail,
            on_read=job.close,
        )
        return self.target

    def done(self, indices: list[int]) -> None:
        if self.record is None:
            return
        if self.plan.blended:  # a blended chunk is done once every tile reaching into it is in
            finished = [sink.completed() for sink in self.sinks.values()]
            indices = sorted(set.intersection(*finished)) if finished else []
        self.record.mark(indices)

    def finish(self, model: PredictionModel) -> None:
        """Every tile is in: write what is still in memory, complete the record."""
        job = self.job
        if self.target is not None:
            self.item.nonfinite_inputs = dict(self.target.nonfinite)
        if self.record is not None:
            self.record.complete()
            for output_id, sink in self.sinks.items():
                if sink.values:
                    self.item.nan_share[output_id] = sink.nan / sink.values
        else:
            arrays = apply_deferred(model, {k: s.array for k, s in self.sinks.items()})
            for output_id, array in arrays.items():
                if array.size:
                    self.item.nan_share[output_id] = nan_count(array) / array.size
            for output in model.outputs:
                path = job.outputs[output.id]
                if path.suffix == ".csv":
                    header, rows = output_table(output, arrays[output.id])
                    write_csv(path, header, rows)
                    continue
                layout = output_layout(model, job, output)
                data = layout.to_file(arrays[output.id])
                if job.zarr:
                    write_zarr_whole(path, data, layout.axes, layout.calibration)
                else:
                    write_tiff(path, data, layout.axes, layout.calibration)
        self.item.outputs = dict(job.outputs)
        self.close()

    def fail(self, error: BaseException) -> None:
        logger.debug("predicting %s failed", self.job.stem, exc_info=error)
        self.item.error = f"{type(error).__name__}: {str(error).strip()[:500]}"
        logger.warning("%s: prediction failed: %s", self.job.stem, self.item.error)
        self.close()

    def close(self) -> None:
        """Free the job's memory (its image, its outputs, scratch files); the record keeps what was finished."""
        if self.closed:
            return
        self.closed = True
        if self.record is not None:
            self.record.flush()
        for sink in self.sinks.values():
            sink.close()
        self.job.close()
        if self.started:
            self.item.duration_s = time.perf_counter() - self.started


def nan_warnings(run: JobRun) -> list[str]:
    """One line per input that held NaN or infinite pixels and per output with NaN, naming the file and count."""
    messages = []
    item = run.item
    for input_id, count in item.nonfinite_inputs.items():
        if count:
            size = int(np.prod(list(run.job.mapped[input_id].shape.values()), dtype=np.int64))
            messages.append(
                f"{item.inputs[input_id]}: {count} NaN or infinite pixels of {size} in input {input_id!r}: "
                "replace them (e.g. by the background value) before predicting"
            )
    for output_id, share in item.nan_share.items():
        if share:
            path = item.outputs.get(output_id, run.job.outputs[output_id])
            messages.append(f"{path}: {share:.2%} of output {output_id!r} is NaN (written as it is)")
    return messages


def tiles_to_run(plan: TilePlan, done: set[int]) -> list[Tile]:
    """The tiles a restarted run still needs: those not done, or for blended outputs (where `done` numbers the
    chunks written) every tile that reaches into a chunk not yet written."""
    if not done:
        return plan.tiles()
    if not plan.blended:
        return [t for t in plan.tiles() if t.index not in done]
    return [t for t in plan.tiles() if any(n not in done for n in plan.neighbours(t))]


def plan_runs(
    model: PredictionModel,
    jobs: list[Job],
    *,
    request,
    budget: int,
    blend: int | None,
    batch_size: int | None,
    warnings: list[str],
) -> list[JobRun]:
    """A tile plan for every job, before any compute: an image the model cannot take stops the run here."""
    runs = []
    for job in jobs:
        streaming = job.zarr and model.streams_zarr
        if job.zarr and model.deferred_post_ops:
            warnings.append(
                f"{job.stem}: post-processing needs the whole output; it is assembled in memory and "
                "written at the end (no resume)"
            )
        plan = make_plan(
            model, job.mapped, request, budget, blend, batch_size, warnings, name=job.paths[model.inputs[0].id].name
        )
        if streaming and plan.blended:
            held = blend_buffer_bytes(plan, [output_shape(model, o, plan) for o in model.outputs])
            if held > budget // 2:
                raise InputError(
                    f"{job.stem}: blending tiles into the Zarr output would hold about "
                    f"{held / 2**20:.1f} MB of overlapping chunks (more than half of --memory-limit "
                    f"{budget / 2**20:.0f} MB): give --blend 0, a larger --memory-limit, or smaller "
                    "tiles along the first axis with --tile"
                )
            warnings.append(
                f"{job.stem}: overlapping tiles are blended into the Zarr output; each chunk is written "
                f"once every tile reaching into it is in (at most about {held / 2**20:.1f} MB held)"
            )
        pipeline = plan_pipeline(model, plan, budget, tiles_per_call(model, batch_size, plan), warnings, job.stem)
        runs.append(JobRun(job, plan, streaming, budget, pipeline))
    return runs


def run_jobs(model: PredictionModel, runs: list[JobRun], *, batch_size: int | None, progress: Progress) -> None:
    """Every job through one pipeline: the next job is started (read, normalised) while the current one runs."""

    def targets():
        for run in runs:
            try:
                target = run.start(model)
            except (ZooError, KeyboardInterrupt):
                raise
            except Exception as e:  # this image fails, the others go on
                run.fail(e)
                progress.advance(run.plan.count)
                continue
            if run.item.resumed_tiles:
                progress.advance(run.item.resumed_tiles)
            yield target

    task = f"predict {runs[0].job.stem}" if len(runs) == 1 else f"predict {len(runs)} images"
    pipelines = [run.pipeline for run in runs if run.pipeline is not None]
    engine = TileEngine(
        model,
        lambda plan: tiles_per_call(model, batch_size, plan),
        in_flight=min((p.in_flight for p in pipelines), default=None),
        workers=min((p.workers for p in pipelines), default=None),
    )
    try:
        engine.run(targets(), progress=progress, task=task, total=sum(run.plan.count for run in runs))
    finally:
        for run in runs:
            run.close()


def run_job(
    model: PredictionModel,
    job: Job,
    *,
    request,
    budget: int,
    batch_size: int | None,
    blend: int | None,
    progress: Progress,
    warnings: list[str],
) -> ItemResult:
    """One job on its own (a Dask worker's share of a folder)."""
    (run,) = plan_runs(
        model, [job], request=request, budget=budget, blend=blend, batch_size=batch_size, warnings=warnings
    )
    run_jobs(model, [run], batch_size=batch_size, progress=progress)
    return run.item


__all__ = ["ItemResult", "JobRun", "nan_warnings", "plan_runs", "run_job", "run_jobs", "tiles_to_run"]
