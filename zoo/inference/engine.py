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

from zoo.errors import ZooError
from zoo.inference.model import PredictionModel
from zoo.inference.tiling import Tile, TilePlan
from zoo.inference.windows import postprocess, preprocess, stack, store_tile
from zoo.progress import Progress, SilentProgress

QUEUE_DEPTH = 2  # batches of tiles waiting between two stages


def default_in_flight(workers: int) -> int:
    """Model calls' worth of tiles held between reading and writing by default: the queues' and threads' share."""
    return QUEUE_DEPTH + 2 * max(1, workers)


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
        _Run(self, targets, progress, workers=min(self.workers, self.in_flight)).execute(task, total)

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
            windows = preprocess(self.model, target.images, target.plan, target.stats, tile, target.nonfinite)
            if tile is target.tiles[-1] and target.on_read is not None:
                target.on_read()
        except Exception as e:
            self._fail(target, e, progress)
            return None
        return windows

    # write side
    def store(self, chunk: list[tuple[TileTarget, Tile]], outputs: list[np.ndarray], progress: Progress) -> None:
        """Post-process a model call's outputs and hand every tile's part to its target's sinks."""
        try:
            outputs = postprocess(self.model, outputs)
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
                    store_tile(self.model, target.plan, target.sinks, tile, j, outputs)
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


_Chunk = list[tuple[TileTarget, Tile, list[np.ndarray]]]  # tiles read for one model call, with their windows


class _Run:
    """One TileEngine.run: a reading thread, `workers` model threads (the calling thread among them) and a writing
    thread, joined by queues. A slot is held per batch from its first tile read to its last stored; the engine's
    `in_flight` slots bound the memory. The first error that must stop the run stops every thread."""

    def __init__(self, engine: TileEngine, targets: Iterable[TileTarget], progress: Progress, workers: int):
        self.engine = engine
        self.targets = targets
        self.progress = progress
        self.workers = workers
        self.to_model: queue.Queue = queue.Queue()  # both bounded by the slots
        self.to_writer: queue.Queue = queue.Queue()
        self.slots = threading.Semaphore(engine.in_flight)
        self.holding = False  # the reader holds a slot for the batch it is reading
        self.sequence = 0  # batches numbered as they are read; the writer stores them in this order
        self.stop = threading.Event()
        self.failures: list[BaseException] = []
        self.started = time.perf_counter()
        self.written = 0

    def execute(self, task: str, total: int) -> None:
        """Start the threads, run the model in this one too (Ctrl-C lands here), wait for all, raise the first
        error."""
        self.progress.start(task, total)
        reader = threading.Thread(target=self.read, name="zoo-predict-read", daemon=True)
        writer = threading.Thread(target=self.write, name="zoo-predict-write", daemon=True)
        models = [
            threading.Thread(target=self.model_worker, name=f"zoo-predict-model-{i}", daemon=True)
            for i in range(self.workers - 1)
        ]
        for thread in (reader, writer, *models):
            thread.start()
        try:
            self.compute()
            for thread in models:
                thread.join()
        except BaseException as e:
            self.fatal(e, first=True)
        finally:
            _put(self.to_writer, None, self.stop)
            reader.join()
            writer.join()
            for thread in models:
                thread.join()
            self.progress.finish()
        if self.failures:
            raise self.failures[0]

    def fatal(self, e: BaseException, first: bool = False) -> None:
        e = e.__cause__ if isinstance(e, _Fatal) else e
        if first:
            self.failures.insert(0, e)
        else:
            self.failures.append(e)
        self.stop.set()

    # reading thread
    def read(self) -> None:
        try:
            pending = self._read_targets()
            if pending and not self.stop.is_set():
                self.send(pending)
        except BaseException as e:
            self.fatal(e)
        finally:
            if self.holding:
                self.slots.release()
            for _ in range(self.workers):
                _put(self.to_model, None, self.stop)

    def _read_targets(self) -> _Chunk:
        """Read every target's tiles and send them in batches; the last batch, not yet sent, is returned (nothing
        when the run stops)."""
        pending: _Chunk = []
        for target in self.targets:
            if self.stop.is_set():
                return []
            if not target.tiles:
                self.engine._finish(target, self.progress)
                continue
            pending = self._read_target(target, pending)
        return pending

    def _read_target(self, target: TileTarget, pending: _Chunk) -> _Chunk:
        """One target's tiles, added to the batch being read (when it has the same window shape and room)."""
        engine = self.engine
        engine._remaining[id(target)] = len(target.tiles)
        limit = engine._limit(target.plan)
        if pending and (pending[0][0].plan.window_shape != target.plan.window_shape or len(pending) >= limit):
            self.send(pending)
            pending = []
        for tile in target.tiles:
            if self.stop.is_set() or target.failed or not self.reserve():
                break
            windows = engine.prepare(target, tile, self.progress)
            if windows is not None:
                pending.append((target, tile, windows))
            if len(pending) >= limit:
                self.send(pending)
                pending = []
        return pending

    def reserve(self) -> bool:
        """A slot for the next batch, waiting while `in_flight` batches are read and not yet stored."""
        while not self.holding:
            if self.stop.is_set():
                return False
            self.holding = self.slots.acquire(timeout=0.1)
        return True

    def send(self, chunk: _Chunk) -> None:
        kept = [(t, tile, windows) for t, tile, windows in chunk if not t.failed]
        if not kept:
            return  # its slot stays with the reader for the next batch
        batch = ([(t, tile) for t, tile, _ in kept], stack(self.engine.model, [w for _, _, w in kept]))
        self.holding = False
        _put(self.to_model, (self.sequence, batch), self.stop)
        self.sequence += 1

    # model threads
    def model_worker(self) -> None:
        try:
            self.compute()
        except BaseException as e:
            self.fatal(e, first=True)

    def compute(self) -> None:
        while (got := _get(self.to_model, self.stop)) is not None:
            number, (chunk, arrays) = got  # positions in the chunk are positions in the batch
            outputs = None
            if not all(t.failed for t, _ in chunk):
                try:
                    outputs = self.engine.model.run(arrays)
                except Exception as e:
                    self.engine._fail_all(chunk, e, self.progress)
            del arrays
            _put(self.to_writer, (number, chunk, outputs), self.stop)  # None: nothing to store, the slot is freed

    # writing thread
    def write(self) -> None:
        waiting: dict[int, tuple] = {}  # batches that finished before an earlier one
        next_number = 0
        try:
            while (got := _get(self.to_writer, self.stop)) is not None:
                waiting[got[0]] = got[1:]
                while next_number in waiting:
                    self._store(*waiting.pop(next_number))
                    next_number += 1
                    self.slots.release()
        except BaseException as e:
            self.fatal(e)

    def _store(self, chunk: list[tuple[TileTarget, Tile]], outputs: list[np.ndarray] | None) -> None:
        if outputs is None:
            return
        self.engine.store(chunk, outputs, self.progress)
        stored = sum(1 for t, _ in chunk if not t.failed)  # a failed target's were counted
        self.written += stored
        rate = self.written / max(time.perf_counter() - self.started, 1e-9)
        self.progress.advance(stored, **{"tiles/s": f"{rate:.2f}"})


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
    and model calls side by side that fit the memory budget (zoo.inference.planning.plan_pipeline)."""
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


__all__ = ["QUEUE_DEPTH", "TileEngine", "TileTarget", "default_in_flight", "run_tiles"]
