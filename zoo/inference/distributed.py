"""Prediction on a Dask distributed cluster: files of a folder as one task each, tiles of a Zarr image in groups.

The client opens the package and every input first (a bad one is reported before any work is sent), computes
the statistics of each Zarr image once, creates its outputs, and hands tile groups to the workers; each worker
loads the model once and writes whole chunks of the shared outputs. The numbers are the single-process ones:
the same plan, statistics and code run per tile. Workers must see the same paths as the client (a shared file
system); "local" starts a LocalCluster on this machine."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import InputError
from zoo.inference.engine import run_tiles
from zoo.inference.model import PredictionModel, load_model
from zoo.inference.outputs import ResumeRecord, ZarrSink, output_layout, record_path, run_signature
from zoo.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)

TILE_GROUPS_PER_WORKER = 4
_MODELS: dict[tuple, PredictionModel] = {}  # per worker process: the model of each (package, options)
_LOADING = threading.Lock()


@dataclass(frozen=True)
class ModelKey:
    source: str
    weights: str | None
    device: str
    trust: bool

    def load(self) -> PredictionModel:
        key = (self.source, self.weights, self.device, self.trust)
        with _LOADING:  # workers may be threads of one process; bioimageio.spec's YAML reader is not thread-safe
            if key not in _MODELS:
                _MODELS[key] = load_model(Path(self.source), weights=self.weights, device=self.device, trust=self.trust)
        return _MODELS[key]


def _client(scheduler: str):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as e:
        raise InputError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from e
    if scheduler == "local" or scheduler.startswith("local:"):
        count = scheduler.partition(":")[2]
        workers = int(count) if count.isdigit() and int(count) > 0 else max(1, min(4, os.cpu_count() or 1))
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="10s"), None
    except OSError as e:
        raise InputError(
            f"--scheduler {scheduler}: no Dask scheduler answers there ({e}); give its address "
            "(tcp://host:8786) or local"
        ) from e


def predict_distributed(
    model_source: Path,
    inputs,
    out_dir: Path,
    *,
    scheduler: str,
    weights: str | None = None,
    device: str = "auto",
    tile="auto",
    batch_size: int | None = None,
    memory_limit=None,
    trust: bool = False,
    axes: str | None = None,
    blend: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
):
    """Like zoo.inference.predict.predict, the files or tiles spread over Dask workers: `scheduler` is an
    address, "local" or "local:N" (N local worker processes)."""
    from zoo.bioimage.devices import resolve_device
    from zoo.inference.discovery import plan_jobs
    from zoo.inference.options import parse_memory, parse_tile
    from zoo.inference.predict import PredictionResult, refuse_existing_outputs

    started = time.perf_counter()
    budget = parse_memory(memory_limit)
    request = parse_tile(tile)
    progress = progress or SilentProgress()
    device = resolve_device(device)
    key = ModelKey(str(Path(model_source).resolve()), weights, device, trust)
    model = load_model(Path(model_source), weights=weights, device=device, trust=trust)
    result = PredictionResult(model.name, model.weight_format, model.device, not_used=dict(model.not_used))
    jobs = []
    client = cluster = None
    try:
        jobs = plan_jobs(model, inputs, Path(out_dir), axes)
        if not overwrite:
            refuse_existing_outputs(jobs)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        client, cluster = _client(scheduler)
        options = dict(request=request, budget=budget, batch_size=batch_size, blend=blend)
        file_jobs = [j for j in jobs if not (j.zarr and model.streams_zarr)]
        futures = {
            client.submit(_predict_file, key, dict(j.paths), Path(out_dir), axes, options, pure=False): j
            for j in file_jobs
        }
        for job in jobs:
            if job not in file_jobs:
                result.items.append(
                    _predict_zarr_tiles(client, key, model, job, axes, options, progress, result.warnings)
                )
        if futures:
            from dask.distributed import as_completed

            progress.start("predict files", len(futures))
            for future in as_completed(futures):
                item, warnings = future.result()
                result.items.append(item)
                result.warnings.extend(w for w in warnings if w not in result.warnings)
                progress.advance(1)
            progress.finish()
    finally:
        for job in jobs:
            job.close()
        model.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    order = {tuple(j.paths.values()): i for i, j in enumerate(jobs)}
    result.items.sort(key=lambda item: order.get(tuple(item.inputs.values()), 0))
    result.duration_s = time.perf_counter() - started
    return result


def _predict_file(key: ModelKey, paths: dict[str, Path], out_dir: Path, axes, options: dict):
    """One input (group) on a worker, as the single-process run does it."""
    from zoo.inference.discovery import plan_jobs
    from zoo.inference.jobs import run_job

    model = key.load()
    (job,) = plan_jobs(model, [paths], out_dir, axes)
    warnings: list[str] = []
    try:
        item = run_job(model, job, progress=SilentProgress(), warnings=warnings, **options)
    finally:
        job.close()
    return item, warnings


def _predict_zarr_tiles(
    client, key: ModelKey, model: PredictionModel, job, axes, options: dict, progress: Progress, warnings: list[str]
):
    """A Zarr image's tiles in groups over the workers, writing into outputs the client created."""
    from dask.distributed import as_completed

    from zoo.inference.jobs import ItemResult, run_job
    from zoo.inference.planning import make_plan, plan_pipeline, tiles_per_call
    from zoo.inference.stats import compute_statistics

    item = ItemResult(dict(job.paths))
    started = time.perf_counter()
    plan = make_plan(
        model, job.mapped, options["request"], options["budget"], options["blend"], options["batch_size"], warnings
    )
    item.plan = plan.describe()
    if plan.blended:  # workers would add into each other's chunks: the blended Zarr output is written here
        warnings.append(f"{job.stem}: blended tiles of a Zarr output run in this process, not on the workers")
        return run_job(model, job, progress=progress, warnings=warnings, **options)
    record = ResumeRecord(job.outputs, record_path(job), run_signature(model, job, plan))
    tiles = [t for t in plan.tiles() if t.index not in record.done]
    item.resumed_tiles = len(record.done)
    item.tiles = len(tiles)
    batch_size = tiles_per_call(model, options["batch_size"])
    pipeline = plan_pipeline(model, plan, options["budget"], batch_size, warnings, job.stem)
    try:
        if tiles:
            stats = compute_statistics(model.input_measures, {k: [v] for k, v in job.mapped.items()}, options["budget"])
            progress.start(f"predict {job.stem}", len(tiles))
            if not record.done:  # the first tiles here: they create the outputs the workers write into
                first, tiles = tiles[:batch_size], tiles[batch_size:]
                _run_tiles(model, job, plan, stats, first, batch_size, pipeline, resume=False)
                record.mark([t.index for t in first])
                progress.advance(len(first))
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            size = max(batch_size, -(-len(tiles) // (workers * TILE_GROUPS_PER_WORKER)))
            groups = [tiles[i : i + size] for i in range(0, len(tiles), size)]
            out_dir = next(iter(job.outputs.values())).parent
            futures = {
                client.submit(
                    _tiles_task,
                    key,
                    dict(job.paths),
                    out_dir,
                    axes,
                    plan,
                    stats,
                    group,
                    batch_size,
                    pipeline,
                    pure=False,
                ): group
                for group in groups
            }
            for future in as_completed(futures):
                future.result()
                record.mark([t.index for t in futures[future]])
                progress.advance(len(futures[future]))
            progress.finish()
        record.complete()
        item.outputs = dict(job.outputs)
    finally:
        record.flush()
    item.duration_s = time.perf_counter() - started
    return item


def _run_tiles(model, job, plan, stats, tiles, batch_size: int, pipeline, *, resume: bool) -> None:
    sinks = {
        o.id: ZarrSink(
            job.outputs[o.id], output_layout(model, job, o), plan, model.geometry.output_maps[o.id], resume=resume
        )
        for o in model.outputs
    }
    run_tiles(model, job.mapped, plan, stats, sinks, tiles, batch_size, pipeline=pipeline)


def _tiles_task(
    key: ModelKey, paths: dict[str, Path], out_dir: Path, axes, plan, stats, tiles, batch_size: int, pipeline
) -> int:
    """A group of tiles on a worker, written into the outputs' own chunks."""
    from zoo.inference.discovery import plan_jobs

    model = key.load()
    (job,) = plan_jobs(model, [paths], out_dir, axes)
    try:
        _run_tiles(model, job, plan, stats, tiles, batch_size, pipeline, resume=True)
    finally:
        job.close()
    return len(tiles)
