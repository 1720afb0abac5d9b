"""Predict with any bioimage.io model package on images of any size.

For each input image: map its axes onto the model's, compute the statistics the pre-processing needs once
over the whole image, cut it into windows of a valid size that overlap by the halo, and stream them through
the stages of zoo.inference.engine (read + pre-process, model, post-process + write, side by side, joined by
small bounded queues): memory is bounded by the tile size, not the image size. All images of a run go through
one pipeline: the model is loaded once, the next image is read and normalised while the current one runs, and
small whole images are stacked into one model call where the model takes a batch. Zarr outputs are written
chunk by chunk and a restarted run skips the tiles a small record says are done; TIFF and CSV outputs are
written atomically."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import ImageError, InputError, ZooError
from zoo.inference.axes import ArrayImage, MappedImage, map_axes
from zoo.inference.engine import TileEngine, TileTarget, apply_deferred, default_in_flight, run_tiles
from zoo.inference.image_io import (
    ImageSource,
    image_stem,
    is_image,
    is_zarr,
    open_image,
    write_csv,
    write_tiff,
)
from zoo.inference.model import PredictionModel, load_model
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
from zoo.inference.stats import compute_statistics
from zoo.inference.tiling import AxisTiling, Tile, TilePlan, plan_axis
from zoo.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_LIMIT = 2 * 1024**3
# inner area of an auto tile: 1024² on CPU (larger windows were no cheaper per pixel here, and cost memory)
CPU_WINDOW_PIXELS = 1024 * 1024
GPU_WINDOW_PIXELS = 2048 * 2048
# model activations per window pixel, for sizing tiles from the memory budget: a U-Net with 16-32 base
# channels holds about this many bytes per input pixel at its peak
ACTIVATION_BYTES_PER_PIXEL = 600
WINDOW_SHARE = 0.75  # of the memory budget for model activations and windows in flight; the rest for statistics
# One model call's peak memory, as a multiple of its input and output tensors' bytes (float32): pre-processing,
# stacking, the runtime's copies and workspace, post-processing and blending. Measured as the resident memory a
# prediction adds when it runs one window of a 1x1-convolution ONNX model on the CPU: 14x at 1024², 12.6x at 2048²,
# 15x at 3072². A model's own activations come on top (more channels, more memory); this is the floor.
CALL_FACTOR = 16
QUEUED_FACTOR = 2  # a batch waiting between two stages holds its windows, or its outputs and their cropped pieces
DEFAULT_BLEND = 32
# small whole images stacked into one model call, at most. On the CPU two calls run side by side (ONNX_CPU_WORKERS),
# one image each: stacking 2, 4 or 8 images of 256² per call took the same CPU time per image and more wall time
# (benchmarks/predict_folder.py, 2 cores); a GPU is fed best with many at once
MAX_IMAGES_PER_CALL = {"cpu": 1, "cuda": 16}


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


# ----------------------------------------------------------------------------------------------- arguments


def parse_memory(value: int | str | None) -> int:
    """Bytes from 2GB, 512MiB, 1.5G, or an int; None: the default budget."""
    if value is None:
        return DEFAULT_MEMORY_LIMIT
    if isinstance(value, (int, float)):
        return int(value)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)(i?b?)\s*", str(value), flags=re.IGNORECASE)
    if not match:
        raise InputError(f"--memory-limit {value!r}: give a size such as 2GB, 512MB or 1.5G")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


def parse_tile(value) -> str | dict[str, int]:
    """auto, none, or window sizes (y, x[, z]) as a tuple or the string Y,X[,Z]."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return "auto"
    if isinstance(value, str) and value.strip().lower() == "none":
        return "none"
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        sizes = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise InputError(f"--tile {value!r}: give auto, none, or window sizes Y,X or Y,X,Z") from None
    if len(sizes) not in (2, 3) or min(sizes) < 1:
        raise InputError(f"--tile {value!r}: give two or three positive sizes, Y,X or Y,X,Z")
    return dict(zip(("y", "x", "z"), sizes))


# -------------------------------------------------------------------------------------------------- entry


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
) -> PredictionResult:
    """Predict every input with the package at `model_source`; one file per input and output tensor in
    `out_dir`: `<input stem>_<output id>.tif` (`.zarr` for Zarr inputs; `.csv` for outputs without spatial axes,
    such as a classifier's classes)."""
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
    per_call = tiles_per_call(model, batch_size, plan)
    pipeline = plan_pipeline(model, plan, budget, per_call, warnings if warnings is not None else [])
    run_tiles(model, images, plan, stats, sinks, plan.tiles(), per_call, pipeline=pipeline)
    return apply_deferred(model, {k: s.array for k, s in sinks.items()})


# ------------------------------------------------------------------------------------------------- jobs


@dataclass
class Job:
    stem: str
    paths: dict[str, Path]  # input id -> image
    images: dict[str, ImageSource]
    mapped: dict[str, MappedImage]
    outputs: dict[str, Path]  # output id -> file to write
    zarr: bool

    def close(self) -> None:
        for image in self.images.values():
            image.close()


def expand_inputs(model: PredictionModel, inputs) -> list[dict[str, Path]]:
    """One {input id: path} per prediction: folders become their images; for a multi-input model each input is
    a mapping, `id=path,id=path`, or `path,path` in the rdf's order."""
    ids = [t.id for t in model.inputs]
    if isinstance(inputs, (str, Path, Mapping)):
        inputs = [inputs]
    groups: list[dict[str, Path]] = []
    for item in inputs:
        if isinstance(item, Mapping):
            group = {str(k): Path(v) for k, v in item.items()}
        elif len(ids) > 1 and "," in str(item):
            parts = [p.strip() for p in str(item).split(",")]
            if all("=" in p for p in parts):
                group = {p.split("=", 1)[0]: Path(p.split("=", 1)[1]) for p in parts}
            else:
                group = dict(zip(ids, (Path(p) for p in parts)))
                if len(parts) != len(ids):
                    group = {}
        elif len(ids) == 1:
            path = Path(item)
            if path.is_dir() and not is_zarr(path):
                found = sorted(p for p in path.iterdir() if is_image(p) and not p.name.startswith("."))
                if not found:
                    raise ImageError(f"{path} holds no TIFF, PNG, .npy or Zarr image")
                groups.extend({ids[0]: p} for p in found)
                continue
            group = {ids[0]: path}
        else:
            group = {}
        if set(group) != set(ids):
            raise ImageError(
                f"model {model.name!r} has {len(ids)} inputs ({', '.join(ids)}): give each prediction "
                f"as {','.join(f'{i}=PATH' for i in ids)} (got {item})"
            )
        groups.append(group)
    if not groups:
        raise ImageError("no input images given")
    return groups


def plan_jobs(
    model: PredictionModel,
    inputs,
    out_dir: Path,
    axes: str | None,
    *,
    lazy_above_bytes: int = DEFAULT_MEMORY_LIMIT // 4,
) -> list[Job]:
    """Open and map every input before any compute: a bad image is reported before hours are spent. Only the
    headers are read here; the pixels when the image's turn comes (images larger than `lazy_above_bytes`
    box by box)."""
    jobs: list[Job] = []
    names: dict[Path, Path] = {}
    opened: list[ImageSource] = []
    spatial = {o.id: o.id not in model.geometry.non_spatial_outputs for o in model.outputs}
    try:
        for group in expand_inputs(model, inputs):
            images: dict[str, ImageSource] = {}
            mapped: dict[str, MappedImage] = {}
            for spec in model.inputs:
                image = open_image(group[spec.id], lazy_above_bytes=lazy_above_bytes, defer=True)
                opened.append(image)
                images[spec.id] = image
                mapped[spec.id] = MappedImage(image, map_axes(image, spec, axes))
            first = group[model.inputs[0].id]
            zarr_out = is_zarr(first)
            stem = image_stem(first)
            image_suffix = ".zarr" if zarr_out else ".tif"
            outputs = {
                o.id: out_dir / f"{stem}_{o.id}{image_suffix if spatial[o.id] else '.csv'}" for o in model.outputs
            }
            for path in outputs.values():
                if path in names:
                    raise ImageError(f"{first} and {names[path]} would both write {path.name}: rename one of them")
                names[path] = first
            jobs.append(Job(stem, group, images, mapped, outputs, zarr_out))
            _check_same_extent(model, mapped)
    except BaseException:
        for image in opened:
            image.close()
        raise
    return jobs


def _check_same_extent(model: PredictionModel, mapped: Mapping[str, object]) -> None:
    first_id = model.inputs[0].id
    first = mapped[first_id]
    for spec in model.inputs[1:]:
        other = mapped[spec.id]
        for axis in (*model.geometry.tiled_axes, *[a.id for a in spec.of_kind("batch")]):
            if axis in first.shape and axis in other.shape and first.shape[axis] != other.shape[axis]:
                raise ImageError(
                    f"inputs {first_id} and {spec.id} differ along {axis} ({first.shape[axis]} vs "
                    f"{other.shape[axis]}): give images of the same size"
                )


# -------------------------------------------------------------------------------------------------- runs


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
                o.id: MemorySink(o.axis_ids, plan.blended, scratch_file(job, o.id), in_memory) for o in model.outputs
            }
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
                    write_zarr_whole(path, data, layout.axes)
                else:
                    write_tiff(path, data, layout.axes)
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
        streaming = job.zarr and not model.deferred_post_ops and not model.geometry.non_spatial_outputs
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


def output_shape(model: PredictionModel, output, plan: TilePlan) -> tuple[int, ...]:
    """The whole output's shape in the model's axis order."""
    lengths = {a.axis: a.length for a in plan.axes}
    maps = {m.output_axis: m for m in model.geometry.output_maps[output.id]}
    shape = []
    for axis in output.axes:
        if axis.kind == "batch":
            shape.append(plan.batch)
        elif axis.kind == "channel":
            shape.append(len(axis.channel_names))
        elif axis.id in maps:
            shape.append(maps[axis.id].length(lengths[maps[axis.id].input_axis]))
        else:
            shape.append(1)
    return tuple(shape)


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


def tiles_per_call(model: PredictionModel, requested: int | None, plan: TilePlan | None = None) -> int:
    """Tiles stacked into one model call: 1 where the model takes no batch; what was asked for; or, for small
    whole images, as many as fill the window a tile would have (at most MAX_IMAGES_PER_CALL)."""
    if model.geometry.batch_fixed or not model.inputs[0].of_kind("batch"):
        return 1
    if requested:
        return requested
    base = 4 if model.device == "cuda" else 1
    if plan is None or plan.count != plan.batch:
        return base
    window = max(1, int(np.prod(list(plan.window_shape.values()), dtype=np.int64)))
    speed = CPU_WINDOW_PIXELS if model.device == "cpu" else GPU_WINDOW_PIXELS
    return max(base, min(MAX_IMAGES_PER_CALL.get(model.device, 1), speed // window))


# ------------------------------------------------------------------------------------------------- plan


def make_plan(
    model: PredictionModel,
    images: Mapping[str, object],
    request,
    budget: int,
    blend: int | None,
    batch_size: int | None,
    warnings: list[str],
    *,
    name: str = "",
) -> TilePlan:
    geometry = model.geometry
    first = images[model.inputs[0].id]
    batch_axis = model.inputs[0].of_kind("batch")
    batch = first.shape[batch_axis[0].id] if batch_axis else 1
    lengths = {a: first.shape[a] for a in geometry.tiled_axes}
    if geometry.tileable and request != "none":
        if request != "auto":
            raise InputError(
                f"--tile {','.join(map(str, request.values()))}: this model cannot be tiled "
                f"({geometry.tileable}); use --tile none"
            )
        request = "none"
    if isinstance(request, dict) and set(request) - set(geometry.tiled_axes):
        raise InputError(
            f"--tile gives sizes for {', '.join(request)}, the model's input is tiled along "
            f"{', '.join(geometry.tiled_axes) or 'no axis'}"
        )
    if geometry.non_spatial_outputs:
        _check_whole_size(model, lengths, name, warnings)
    can_blend = not geometry.resized_outputs
    if blend and not can_blend:
        raise InputError(
            f"--blend {blend}: blending needs outputs the size of the input, and this model's are "
            "scaled or offset: give --blend 0"
        )
    target = _target_lengths(model, lengths, budget, batch_size)
    axes: list[AxisTiling] = []
    for axis in geometry.tiled_axes:
        halo, after = geometry.halo[axis], geometry.after(axis)
        no_context = halo == 0 and after == 0
        overlap = blend if blend is not None else (DEFAULT_BLEND if no_context and can_blend else 0)
        tiling = plan_axis(
            axis,
            lengths[axis],
            geometry.sizes[axis],
            halo,
            geometry.align[axis],
            whole=request == "none",
            requested=request.get(axis) if isinstance(request, dict) else None,
            target=target.get(axis),
            overlap=overlap,
            halo_after=after,
        )
        message = ""
        if tiling.count > 1 and no_context and not tiling.overlap:
            message = (
                f"the model declares no halo along {axis}: tiles are cut without overlap and may show "
                "seams (give --tile none" + (", or --blend PX)" if can_blend else ")")
            )
        elif tiling.count > 1 and no_context and blend is None:
            message = (
                f"the model declares no halo along {axis}: tiles overlap by {tiling.overlap} px and are "
                "blended; seams are softened, not exact (give --tile none to avoid tiling)"
            )
        if message and message not in warnings:
            warnings.append(message)
            logger.warning(message)
        axes.append(tiling)
    _check_smallest_call(model, budget)
    return TilePlan(tuple(axes), batch)


# ------------------------------------------------------------------------------------------------ memory


def call_tensor_bytes(model: PredictionModel, window: Mapping[str, int], batch: int = 1) -> int:
    """Bytes of one model call's input and output tensors (float32) for windows of `window` pixels per tiled
    axis, `batch` tiles per call."""
    pixels = int(np.prod([window[a] for a in model.geometry.tiled_axes], dtype=np.int64))
    elements = sum(spec.channels or 1 for spec in model.inputs) * pixels
    for output in model.outputs:
        size = output.channels or 1
        for axis_map in model.geometry.output_maps[output.id]:
            size *= max(1, axis_map.length(window[axis_map.input_axis]))
        elements += size
    return 4 * batch * elements


@dataclass(frozen=True)
class PipelineMemory:
    """Model calls in flight and what they hold: `workers` calls at their peak (CALL_FACTOR times their tensors),
    the other batches between the stages (QUEUED_FACTOR times)."""

    tensor_bytes: int  # one call's input and output tensors
    in_flight: int  # batches from the first tile read to the last stored
    workers: int  # model calls at the same time

    @property
    def call_bytes(self) -> int:
        return CALL_FACTOR * self.tensor_bytes

    @property
    def bytes(self) -> int:
        return self.workers * self.call_bytes + (self.in_flight - self.workers) * QUEUED_FACTOR * self.tensor_bytes


def plan_pipeline(
    model: PredictionModel, plan: TilePlan, budget: int, batch: int, warnings: list[str], name: str = ""
) -> PipelineMemory:
    """As many batches in flight and model calls side by side as fit WINDOW_SHARE of the budget: fewer batches
    waiting first, then fewer model threads, down to one call at a time."""
    tensors = call_tensor_bytes(model, plan.window_shape, batch)
    workers = max(1, model.workers)
    in_flight = default_in_flight(workers)
    while True:
        pipeline = PipelineMemory(tensors, in_flight, workers)
        if pipeline.bytes <= budget * WINDOW_SHARE or in_flight == 1:
            break
        if in_flight > workers:
            in_flight -= 1
        else:
            workers -= 1
    if pipeline.bytes > budget:
        window = "×".join(str(n) for n in plan.window_shape.values())
        message = (
            f"{name + ': ' if name else ''}a model call on windows of {window} ({batch} per call) needs about "
            f"{_size(pipeline.call_bytes)}, more than --memory-limit {_size(budget)}: give a smaller --tile or "
            "--batch-size"
        )
        warnings.append(message)
        logger.warning(message)
    return pipeline


def _check_smallest_call(model: PredictionModel, budget: int) -> None:
    """Refuse before any compute when one call on the smallest window the model takes needs more than `budget`."""
    geometry = model.geometry
    smallest = {
        a: geometry.sizes[a].at_least(geometry.halo[a] + geometry.after(a) + 1) or geometry.sizes[a].min
        for a in geometry.tiled_axes
    }
    need = CALL_FACTOR * call_tensor_bytes(model, smallest)
    if need > budget:
        window = "×".join(str(smallest[a]) for a in geometry.tiled_axes)
        raise InputError(
            f"--memory-limit {_size(budget)}: the smallest window model {model.name!r} takes, {window} "
            f"({'×'.join(geometry.tiled_axes)}), needs about {_size(need)} ({need} bytes) per model call: "
            "give a larger --memory-limit"
        )


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MB"


def _check_whole_size(model: PredictionModel, lengths: dict[str, int], name: str, warnings: list[str]) -> None:
    """A model with outputs that do not follow the image (a classifier) sees each image whole and untouched: a
    fixed input size must be met exactly; a parameterized one is padded up to the next valid size."""
    geometry = model.geometry
    axes = [a for a in geometry.tiled_axes if not geometry.sizes[a].is_valid(lengths[a])]
    if not axes:
        return
    where = f"{name}: " if name else ""
    if any(geometry.sizes[a].step == 0 for a in axes):
        need = "×".join(str(geometry.sizes[a]) for a in geometry.tiled_axes)
        have = "×".join(str(lengths[a]) for a in geometry.tiled_axes)
        order = "×".join(geometry.tiled_axes)
        raise ImageError(
            f"{where}the image is {have} ({order}), model input {model.inputs[0].id!r} takes exactly "
            f"{need}; its output {', '.join(geometry.non_spatial_outputs)} does not follow the image, "
            f"so it cannot be tiled or padded: crop or resize the image to {need}"
        )
    padded = ", ".join(f"{a} {lengths[a]} → {geometry.sizes[a].at_least(lengths[a])}" for a in axes)
    message = (
        f"{where}padded to a size the model takes ({padded}); the padding ({model.inputs[0].pad_mode}) "
        f"is part of what {', '.join(geometry.non_spatial_outputs)} sees"
    )
    warnings.append(message)
    logger.warning(message)


def _target_lengths(
    model: PredictionModel, lengths: dict[str, int], budget: int, batch_size: int | None
) -> dict[str, int]:
    """Window length per tiled axis: an inner area near the speed optimum plus the halo, capped by the memory
    budget (activations and the windows in flight)."""
    if not lengths:
        return {}
    channels_in = sum(t.channels or 1 for t in model.inputs)
    channels_out = sum(t.channels or 1 for t in model.outputs)
    batch = tiles_per_call(model, batch_size)
    in_flight = batch * (default_in_flight(model.workers) + 2)
    per_pixel = model.workers * batch * ACTIVATION_BYTES_PER_PIXEL + in_flight * 4 * (channels_in + channels_out)
    memory_pixels = max(1, int(budget * WINDOW_SHARE) // per_pixel)
    speed_pixels = CPU_WINDOW_PIXELS if model.device == "cpu" else GPU_WINDOW_PIXELS
    geometry = model.geometry
    context = {a: geometry.halo[a] + geometry.after(a) for a in lengths}
    inner = _split_area(speed_pixels, {a: n for a, n in lengths.items()})
    cap = _split_area(memory_pixels, {a: n + context[a] for a, n in lengths.items()})
    return {a: min(inner[a] + context[a], cap[a]) for a in lengths}


def _split_area(pixels: int, lengths: dict[str, int]) -> dict[str, int]:
    """Side lengths whose product is about `pixels`; an axis shorter than its share gives the rest to others."""
    sides: dict[str, int] = {}
    remaining = sorted(lengths, key=lengths.get)
    while remaining:
        axis = remaining.pop(0)
        share = max(1, int(round(max(pixels, 1) ** (1 / (len(remaining) + 1)))))
        sides[axis] = min(lengths[axis], share)
        pixels = max(1, pixels // sides[axis])
    return sides


__all__ = [
    "ItemResult",
    "JobRun",
    "PipelineMemory",
    "call_tensor_bytes",
    "PredictionResult",
    "make_plan",
    "nan_warnings",
    "parse_memory",
    "parse_tile",
    "plan_pipeline",
    "plan_runs",
    "predict",
    "predict_arrays",
    "run_jobs",
    "tiles_per_call",
]
