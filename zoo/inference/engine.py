"""The tile pipeline: read + pre-process, run the model, post-process + write, each stage in its own thread(s)
with small bounded queues between them, so that reading and writing overlap the model's compute and memory is
bounded by the tiles in flight: at most `in_flight` model calls' worth of tiles between reading and writing.

Model calls may finish out of order (several model threads), but the writer stores them in the order they were
read: blended tiles are summed in the same order in every run, so a run's output is the same bit for bit, and the
same as with one model thread.

One run takes a stream of targets (images, or groups of images for a multi-input model): a folder of images goes
through one pipeline, the model loaded once, the next image read while the current one runs, and the tiles of
consecutive images with the same window shape stacked into one model call."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from zoo.errors import PredictionError, ZooError
from zoo.inference.axes import ArrayImage
from zoo.inference.model import PredictionModel
from zoo.inference.stats import compute_statistics
from zoo.inference.tiling import Tile, TilePlan, source_indices
from zoo.progress import Progress, SilentProgress

QUEUE_DEPTH = 2  # batches of tiles waiting between two stages


def default_in_flight(workers: int) -> int:
    """Model calls' worth of tiles held between reading and writing by default: the queues' and threads' share."""
    return QUEUE_DEPTH + 2 * max(1, workers)


STATISTICS_BUDGET = 2 * 1024**3  # for statistics of whole outputs, which are in memory already


@dataclass(eq=False)
class TileTarget:
    """One image (or group of inputs) to predict: its inputs in the model's axis order, how it is cut, the
    statistics its pre-processing needs, where its outputs go, the tiles still to run, and what to call as they
    complete. Without `on_error` an error stops the whole run; with it, only this target fails."""

    images: Mapping[str, object]
    plan: TilePlan
    stats: dict
    sinks: Mapping[str, object]
    tiles: list[Tile]
    on_done: Callable[[list[int]], None] | None = None  # tile indices stored
    on_finish: Callable[[], None] | None = None  # every tile stored
    on_read: Callable[[], None] | None = None  # every tile's input read: the images may be let go
    on_error: Callable[[BaseException], None] | None = None
    failed: bool = field(default=False, init=False)
    nonfinite: dict[str, int] = field(default_factory=dict, init=False)  # input id -> NaN/Inf pixels read


class _Fatal(Exception):
    """Wraps an error that must stop the whole run."""


class TileEngine:
    """Read + pre-process, run, post-process + write: stages in their own threads (the model stage in
    `model.workers` threads), bounded queues between. `batch_size`: tiles per model call, a number or a function
    of the plan (tiles of consecutive targets with the same window shape share calls). `in_flight`: batches held
    at once from reading to writing (the one being read included); it bounds the memory of the pipeline."""

    def __init__(
        self,
        model: PredictionModel,
        batch_size: int | Callable[[TilePlan], int] = 1,
        *,
        in_flight: int | None = None,
        workers: int | None = None,
    ):
        self.model = model
        self.batch_size = batch_size
        self.workers = max(1, min(model.workers, workers or model.workers))
        self.in_flight = max(1, in_flight or default_in_flight(self.workers))
        self._lock = threading.Lock()
        self._remaining: dict[int, int] = {}

    def run(
        self,
        targets: Iterable[TileTarget],
        *,
        progress: Progress | None = None,
        task: str = "predict",
        total: int | None = None,
    ) -> None:
        """Predict every target's tiles. `targets` may be a generator: it is consumed by the reading thread, so
        the work it does per target (statistics, opening outputs) overlaps the model's compute."""
        progress = progress or SilentProgress()
        if total is None:
            targets = list(targets)
            total = sum(len(t.tiles) for t in targets)
        workers = min(self.workers, self.in_flight)
        to_model: queue.Queue = queue.Queue()  # both bounded by the slots
        to_writer: queue.Queue = queue.Queue()
        slots = threading.Semaphore(self.in_flight)  # one per batch from its first tile read to its last stored
        holding = [False]  # the reader holds a slot for the batch it is reading
        sequence = [0]  # batches numbered as they are read; the writer stores them in this order
        stop = threading.Event()
        failures: list[BaseException] = []
        started = time.perf_counter()
        written = [0]

        def fatal(e: BaseException, first: bool = False) -> None:
            e = e.__cause__ if isinstance(e, _Fatal) else e
            if first:
                failures.insert(0, e)
            else:
                failures.append(e)
            stop.set()

        def reserve() -> bool:
            """A slot for the next batch, waiting while `in_flight` batches are read and not yet stored."""
            while not holding[0]:
                if stop.is_set():
                    return False
                holding[0] = slots.acquire(timeout=0.1)
            return True

        def send(chunk: list[tuple[TileTarget, Tile, list[np.ndarray]]]) -> None:
            kept = [(t, tile, windows) for t, tile, windows in chunk if not t.failed]
            if not kept:
                return  # its slot stays with the reader for the next batch
            batch = ([(t, tile) for t, tile, _ in kept], self.stack([w for _, _, w in kept]))
            holding[0] = False
            _put(to_model, (sequence[0], batch), stop)
            sequence[0] += 1

        def read() -> None:
            try:
                pending: list[tuple[TileTarget, Tile, list[np.ndarray]]] = []
                for target in targets:
                    if stop.is_set():
                        return
                    if not target.tiles:
                        self._finish(target, progress)
                        continue
                    self._remaining[id(target)] = len(target.tiles)
                    limit = self._limit(target.plan)
                    if pending and (
                        pending[0][0].plan.window_shape != target.plan.window_shape or len(pending) >= limit
                    ):
                        send(pending)
                        pending = []
                    for tile in target.tiles:
                        if stop.is_set() or target.failed or not reserve():
                            break
                        windows = self.prepare(target, tile, progress)
                        if windows is not None:
                            pending.append((target, tile, windows))
                        if len(pending) >= limit:
                            send(pending)
                            pending = []
                if pending and not stop.is_set():
                    send(pending)
            except BaseException as e:
                fatal(e)
            finally:
                if holding[0]:
                    slots.release()
                for _ in range(workers):
                    _put(to_model, None, stop)

        def compute() -> None:
            while (got := _get(to_model, stop)) is not None:
                number, (chunk, arrays) = got  # positions in the chunk are positions in the batch
                outputs = None
                if not all(t.failed for t, _ in chunk):
                    try:
                        outputs = self.model.run(arrays)
                    except Exception as e:
                        self._fail_all(chunk, e, progress)
                del arrays
                _put(to_writer, (number, chunk, outputs), stop)  # None: nothing to store, the slot is freed

        def write() -> None:
            waiting: dict[int, tuple] = {}  # batches that finished before an earlier one
            next_number = 0
            try:
                while (got := _get(to_writer, stop)) is not None:
                    waiting[got[0]] = got[1:]
                    while next_number in waiting:
                        chunk, outputs = waiting.pop(next_number)
                        next_number += 1
                        if outputs is not None:
                            self.store(chunk, outputs, progress)
                            stored = sum(1 for t, _ in chunk if not t.failed)  # a failed target's were counted
                            written[0] += stored
                            rate = written[0] / max(time.perf_counter() - started, 1e-9)
                            progress.advance(stored, **{"tiles/s": f"{rate:.2f}"})
                        del chunk, outputs
                        slots.release()
            except BaseException as e:
                fatal(e)

        progress.start(task, total)
        reader = threading.Thread(target=read, name="zoo-predict-read", daemon=True)
        writer = threading.Thread(target=write, name="zoo-predict-write", daemon=True)

        def model_worker() -> None:
            try:
                compute()
            except BaseException as e:
                fatal(e, first=True)

        models = [
            threading.Thread(target=model_worker, name=f"zoo-predict-model-{i}", daemon=True)
            for i in range(workers - 1)
        ]
        for thread in (reader, writer, *models):
            thread.start()
        try:
            compute()  # this thread is one of the model workers: Ctrl-C lands here
            for thread in models:
                thread.join()
        except BaseException as e:
            fatal(e, first=True)
        finally:
            _put(to_writer, None, stop)
            reader.join()
            writer.join()
            for thread in models:
                thread.join()
            progress.finish()
        if failures:
            raise failures[0]

    def _limit(self, plan: TilePlan) -> int:
        return max(1, self.batch_size(plan) if callable(self.batch_size) else self.batch_size)

    # failures of one target
    def _fail(self, target: TileTarget, error: BaseException, progress: Progress) -> None:
        """Mark a target failed (its other tiles are skipped), or stop the run when it takes no errors."""
        if target.on_error is None or isinstance(error, ZooError) or not isinstance(error, Exception):
            raise _Fatal() from error
        with self._lock:
            if target.failed:
                return
            target.failed = True
            left = self._remaining.pop(id(target), 0)
        progress.advance(left)
        target.on_error(error)

    def _fail_all(self, chunk: list[tuple[TileTarget, Tile]], error: BaseException, progress: Progress) -> None:
        for target in dict.fromkeys(t for t, _ in chunk):
            self._fail(target, error, progress)

    def _finish(self, target: TileTarget, progress: Progress) -> None:
        if target.on_finish is None:
            return
        try:
            target.on_finish()
        except Exception as e:
            self._fail(target, e, progress)

    # read side
    def prepare(self, target: TileTarget, tile: Tile, progress: Progress) -> list[np.ndarray] | None:
        """A tile's pre-processed input windows, read as soon as the tile is queued (so that a target's images can
        be let go once its last tile is read); None when reading fails, which fails this target only."""
        try:
            windows = self.preprocess(target, tile)
            if tile is target.tiles[-1] and target.on_read is not None:
                target.on_read()
        except Exception as e:
            self._fail(target, e, progress)
            return None
        return windows

    def stack(self, windows: list[list[np.ndarray]]) -> list[np.ndarray]:
        """Per input, the tiles' windows stacked along its batch axis."""
        arrays = []
        for i, spec in enumerate(self.model.inputs):
            batch = spec.of_kind("batch")
            parts = [w[i] for w in windows]
            stacked = np.concatenate(parts, axis=spec.axis_ids.index(batch[0].id)) if batch else parts[0]
            arrays.append(np.ascontiguousarray(stacked))
        return arrays

    def preprocess(self, target: TileTarget, tile: Tile) -> list[np.ndarray]:
        """One tile's pre-processed input windows, in the rdf's input order."""
        from bioimageio.core import Sample, Tensor
        from bioimageio.core.axis import AxisId
        from bioimageio.core.common import MemberId

        members, stat = {}, {}
        for spec in self.model.inputs:
            data, regions, index_maps = self.window(target, spec, tile)
            members[MemberId(spec.id)] = Tensor.from_numpy(data, dims=[AxisId(a) for a in spec.axis_ids])
            for measure, value in target.stats.items():
                if str(measure.member_id) == spec.id:
                    stat[measure] = value.window(regions, index_maps)
        sample = Sample(members=members, stat=stat, id=None)
        for op in self.model.pre_ops:
            op(sample)
        return [
            sample.members[MemberId(spec.id)].transpose([AxisId(a) for a in spec.axis_ids]).data.to_numpy()
            for spec in self.model.inputs
        ]

    def window(self, target: TileTarget, spec, tile: Tile) -> tuple[np.ndarray, dict, dict]:
        """The raw input window of a tile, padded by the model's padding mode where it leaves the image."""
        image = target.images[spec.id]
        regions: dict[str, tuple[int, int]] = {}
        index_maps: dict[str, np.ndarray] = {}
        batch = spec.of_kind("batch")
        if batch:
            regions[batch[0].id] = (tile.batch, tile.batch + 1)
        for tiling, k in zip(target.plan.axes, tile.grid):
            if tiling.axis not in image.shape:
                continue
            start, stop = tiling.window(k)
            if start >= 0 and stop <= tiling.length:
                regions[tiling.axis] = (start, stop)
                continue
            index = source_indices(start, stop, tiling.length, spec.pad_mode)
            valid = index[index >= 0]
            lo, hi = int(valid.min()), int(valid.max()) + 1
            regions[tiling.axis] = (lo, hi)
            index_maps[tiling.axis] = np.where(index >= 0, index - lo, -1)
        data = image.read(regions)
        self.count_nonfinite(target, spec, tile, data, regions)
        for axis, local in index_maps.items():
            position = spec.axis_ids.index(axis)
            data = np.take(data, np.clip(local, 0, None), axis=position)
            if spec.pad_mode == "constant" and (local < 0).any():
                data = np.array(data, copy=True)
                where = [slice(None)] * data.ndim
                where[position] = local < 0
                data[tuple(where)] = spec.pad_value
        return data, regions, index_maps

    def count_nonfinite(self, target: TileTarget, spec, tile: Tile, data: np.ndarray, regions: dict) -> None:
        """Count the NaN and infinite pixels of the range `tile` owns (the ranges of all tiles cover the image
        once)."""
        count = target.nonfinite.setdefault(spec.id, 0)
        if data.dtype.kind not in "fc":
            return
        index: list = [slice(None)] * data.ndim
        for tiling, k in zip(target.plan.axes, tile.grid):
            if tiling.axis not in regions or tiling.axis not in spec.axis_ids:
                continue
            lo, hi = tiling.inner(k)
            start = regions[tiling.axis][0]
            index[spec.axis_ids.index(tiling.axis)] = slice(max(lo - start, 0), max(hi - start, 0))
        owned = data[tuple(index)]
        target.nonfinite[spec.id] = count + int(owned.size - np.count_nonzero(np.isfinite(owned)))

    # write side
    def store(self, chunk: list[tuple[TileTarget, Tile]], outputs: list[np.ndarray], progress: Progress) -> None:
        """Post-process a model call's outputs and hand every tile's part to its target's sinks."""
        try:
            outputs = self.postprocess(outputs)
        except Exception as e:
            self._fail_all(chunk, e, progress)
            return
        by_target: dict[int, list[tuple[int, Tile]]] = {}
        targets: dict[int, TileTarget] = {}
        for j, (target, tile) in enumerate(chunk):
            by_target.setdefault(id(target), []).append((j, tile))
            targets[id(target)] = target
        for key, placed in by_target.items():
            target = targets[key]
            if target.failed:
                continue
            try:
                for j, tile in placed:
                    self.store_tile(target, tile, j, outputs)
                if target.on_done is not None:
                    target.on_done([tile.index for _, tile in placed])
            except Exception as e:
                self._fail(target, e, progress)
                continue
            with self._lock:
                left = self._remaining.get(key, 0) - len(placed)
                self._remaining[key] = left
            if left == 0:
                self._remaining.pop(key, None)
                self._finish(target, progress)

    def store_tile(self, target: TileTarget, tile: Tile, j: int, outputs: list[np.ndarray]) -> None:
        """Crop entry `j` of the outputs to what `tile` owns and write it into the target's sinks."""
        by_axis = {a.axis: (i, a) for i, a in enumerate(target.plan.axes)}
        for spec, data in zip(self.model.outputs, outputs):
            index: list = [slice(None)] * data.ndim
            region: dict[str, tuple[int, int]] = {}
            weights = []
            batch = spec.of_kind("batch")
            if batch:
                position = spec.axis_ids.index(batch[0].id)
                index[position] = slice(j, j + 1)
                region[batch[0].id] = (tile.batch, tile.batch + 1)
            empty = False
            for axis_map in self.model.geometry.output_maps[spec.id]:
                i, tiling = by_axis[axis_map.input_axis]
                k = tile.grid[i]
                start, stop = tiling.window(k)
                lo, hi = tiling.kept(k)
                ratio, length = axis_map.ratio, axis_map.length(tiling.length)
                # the last tile owns the output's end, however the rdf's offset and rounding place it
                out_lo, out_hi = lo * ratio, (length if k == tiling.count - 1 else hi * ratio)
                out_lo, out_hi = max(out_lo, 0), min(out_hi, length)
                origin = start * ratio
                if any(b.denominator != 1 for b in (out_lo, origin)):
                    raise PredictionError(
                        f"output {spec.id} axis {axis_map.output_axis} is scaled by {ratio}, "
                        f"which does not map tile {tile.grid} onto whole pixels"
                    )
                position = spec.axis_ids.index(axis_map.output_axis)
                first, last = int(out_lo - origin), int(out_hi - origin)
                if out_hi > out_lo and last > data.shape[position]:
                    expected = axis_map.length(stop - start)
                    raise PredictionError(
                        f"output {spec.id} axis {axis_map.output_axis}: the model returned {data.shape[position]} "
                        f"pixels for a window of {stop - start}, the rdf's size (·{ratio}{axis_map.offset:+d}) "
                        f"promises {expected}: correct the output's size in the rdf"
                    )
                empty = empty or out_hi <= out_lo
                index[position] = slice(first, last)
                region[axis_map.output_axis] = (int(out_lo), int(out_hi))
                if tiling.overlap:
                    weights.append((position, tiling.blend_weights(k)))
            if empty:
                continue  # a model that crops more than this tile owns (only at the image's end)
            piece = data[tuple(index)]
            weight = None
            if weights:
                weight = np.ones([1] * piece.ndim, dtype=np.float32)
                for position, w in weights:
                    shape = [1] * piece.ndim
                    shape[position] = w.size
                    weight = weight * w.reshape(shape)
            target.sinks[spec.id].write(region, piece, weight, self.full_shape(target, spec, data))

    def postprocess(self, outputs: list[np.ndarray]) -> list[np.ndarray]:
        if not self.model.tile_post_ops:
            return outputs
        from bioimageio.core import Sample, Tensor
        from bioimageio.core.axis import AxisId
        from bioimageio.core.common import MemberId

        sample = Sample(
            members={
                MemberId(s.id): Tensor.from_numpy(o, dims=[AxisId(a) for a in s.axis_ids])
                for s, o in zip(self.model.outputs, outputs)
            },
            stat={},
            id=None,
        )
        for op in self.model.tile_post_ops:
            op(sample)
        return [
            sample.members[MemberId(s.id)].transpose([AxisId(a) for a in s.axis_ids]).data.to_numpy()
            for s in self.model.outputs
        ]

    def full_shape(self, target: TileTarget, spec, data: np.ndarray) -> tuple[int, ...]:
        lengths = {a.axis: a.length for a in target.plan.axes}
        maps = {m.output_axis: m for m in self.model.geometry.output_maps[spec.id]}
        shape = []
        for i, axis in enumerate(spec.axes):
            if axis.kind == "batch":
                shape.append(target.plan.batch)
            elif axis.id in maps:
                shape.append(maps[axis.id].length(lengths[maps[axis.id].input_axis]))
            else:
                shape.append(data.shape[i])
        return tuple(shape)


def run_tiles(
    model: PredictionModel,
    images: Mapping[str, object],
    plan: TilePlan,
    stats: dict,
    sinks: Mapping[str, object],
    tiles: list[Tile],
    batch_size: int,
    *,
    progress: Progress | None = None,
    task: str = "predict",
    on_done: Callable[[list[int]], None] | None = None,
    pipeline=None,
) -> None:
    """The tiles of one image through the pipeline; any error stops the run. `pipeline`: the batches in flight
    and model calls side by side that fit the memory budget (zoo.inference.predict.plan_pipeline)."""
    target = TileTarget(images, plan, stats, sinks, tiles, on_done=on_done)
    limits = {} if pipeline is None else {"in_flight": pipeline.in_flight, "workers": pipeline.workers}
    TileEngine(model, batch_size, **limits).run([target], progress=progress, task=task)


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                return


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return None


def apply_deferred(model: PredictionModel, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Post-processing that needs the whole output (statistics of the output, samplewise operators)."""
    if not model.deferred_post_ops:
        return arrays
    from bioimageio.core import Sample, Tensor
    from bioimageio.core.axis import AxisId
    from bioimageio.core.common import MemberId

    specs = {s.id: s for s in model.outputs}
    sample = Sample(
        members={
            MemberId(k): Tensor.from_numpy(np.asarray(v), dims=[AxisId(a) for a in specs[k].axis_ids])
            for k, v in arrays.items()
        },
        stat={},
        id=None,
    )
    for op in model.deferred_post_ops:
        missing = [m for m in op.required_measures if m not in sample.stat]
        if missing:
            current = {
                str(k): [
                    ArrayImage(
                        v.transpose([AxisId(a) for a in specs[str(k)].axis_ids]).data.to_numpy(), specs[str(k)].axis_ids
                    )
                ]
                for k, v in sample.members.items()
                if str(k) in specs
            }
            for measure, value in compute_statistics(missing, current, STATISTICS_BUDGET).items():
                sample.stat[measure] = value.window({}, {})
        op(sample)
    return {
        k: sample.members[MemberId(k)].transpose([AxisId(a) for a in specs[k].axis_ids]).data.to_numpy() for k in arrays
    }


__all__ = ["QUEUE_DEPTH", "TileEngine", "TileTarget", "apply_deferred", "default_in_flight", "run_tiles"]
