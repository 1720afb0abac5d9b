"""Where predictions go: whole outputs in memory (or a scratch memory map) written as TIFF at the end, or
tiles written straight into OME-Zarr chunks, with a small record that lets a restarted run resume."""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoo.inference.calibration import PixelSize
from zoo.inference.image_io import create_zarr, open_zarr_output
from zoo.inference.tiling import Tile, TilePlan

if TYPE_CHECKING:
    from zoo.inference.discovery import Job
    from zoo.inference.model import PredictionModel

logger = logging.getLogger(__name__)

FILE_ORDER = "QBTCZYXS"  # axes of written files, slowest first (ImageJ's and OME-Zarr's order)
RECORD_SUFFIX = ".zoo-predict.json"


class MemorySink:
    """A whole output in the model's axis order: in memory, or in a temporary memory-mapped file next to the
    outputs when it is larger than `in_memory_bytes`."""

    def __init__(
        self, axes: tuple[str, ...], blended: bool, buffer_file: Path | None = None, in_memory_bytes: int | None = None
    ):
        self.axes = axes
        self.blended = blended
        self.buffer_file = buffer_file
        self.in_memory_bytes = in_memory_bytes
        self.array: np.ndarray | None = None

    def write(self, region: dict[str, tuple[int, int]], data: np.ndarray, weight, full_shape) -> None:
        if self.array is None:
            dtype = np.float32 if self.blended and data.dtype.kind != "f" else data.dtype
            nbytes = math.prod(full_shape) * np.dtype(dtype).itemsize
            if self.buffer_file is not None and self.in_memory_bytes is not None and nbytes > self.in_memory_bytes:
                self.array = np.memmap(self.buffer_file, dtype=dtype, mode="w+", shape=full_shape)
            else:
                self.array = np.zeros(full_shape, dtype=dtype)
        where = tuple(slice(*region[a]) if a in region else slice(None) for a in self.axes)
        if weight is None:
            self.array[where] = data
        else:
            self.array[where] += data * weight

    def close(self) -> None:
        if isinstance(self.array, np.memmap):
            self.array._mmap.close()
        self.array = None
        if self.buffer_file is not None:
            self.buffer_file.unlink(missing_ok=True)


def scratch_file(job: Job, output_id: str) -> Path:
    """Where an output too large for the memory budget is assembled before it is written."""
    return job.outputs[output_id].with_name(f".{job.outputs[output_id].name}.{os.getpid()}.buffer")


@dataclass
class FileLayout:
    """How an output in model axis order is stored: one letter per model axis, None for an axis the image did
    not have (size 1, dropped), in the file's axis order; with the physical pixel size of each model axis that
    has one (those that follow a calibrated input axis)."""

    model_axes: tuple[str, ...]
    letters: tuple[str | None, ...]
    pixel_sizes: tuple[PixelSize | None, ...] = ()

    @property
    def calibration(self) -> dict[str, PixelSize]:
        """File letter -> pixel size, for the written axes that have one."""
        sizes = dict(zip(range(len(self.letters)), self.pixel_sizes))
        return {self.letters[i]: sizes[i] for i in self.order if sizes.get(i) is not None}

    @property
    def order(self) -> list[int]:
        kept = [i for i, letter in enumerate(self.letters) if letter is not None]
        return sorted(kept, key=lambda i: FILE_ORDER.index(self.letters[i]) if self.letters[i] in FILE_ORDER else -1)

    @property
    def axes(self) -> str:
        return "".join(self.letters[i] for i in self.order)

    def to_file(self, data: np.ndarray) -> np.ndarray:
        dropped = tuple(i for i, letter in enumerate(self.letters) if letter is None)
        kept = [i for i in range(data.ndim) if i not in dropped]
        data = data.reshape([n for i, n in enumerate(data.shape) if i not in dropped])
        return np.transpose(data, [kept.index(i) for i in self.order])

    def file_index(self, region: dict[str, tuple[int, int]]) -> tuple[slice, ...]:
        return tuple(
            slice(*region[self.model_axes[i]]) if self.model_axes[i] in region else slice(None) for i in self.order
        )

    def file_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape[i] for i in self.order)


def output_layout(model: PredictionModel, job: Job, output) -> FileLayout:
    """The output's letters from the first input's (its axes in the image's terms) and its pixel sizes: an axis
    that follows a calibrated input axis keeps that axis's pixel size, divided by the model's size ratio (an
    output axis scale of 2 relative to the input's, a 2× downsampling, doubles it; an offset changes nothing)."""
    maps = {m.output_axis: m for m in model.geometry.output_maps[output.id]}
    first = job.mapped[model.inputs[0].id]
    input_letters = first.mapping.letters
    calibration = getattr(first.image, "calibration", {})
    source = first.mapping.source
    batch_in = model.inputs[0].of_kind("batch")
    letters: list[str | None] = []
    sizes: list[PixelSize | None] = []
    for axis in output.axes:
        size = None
        if axis.kind == "batch":
            letters.append(input_letters.get(batch_in[0].id) if batch_in else None)
            size = calibration.get(source.get(batch_in[0].id)) if batch_in else None
        elif axis.kind == "channel":
            letters.append("C")
        elif axis.id in maps:
            input_axis, ratio = maps[axis.id].input_axis, maps[axis.id].ratio
            letter = input_letters.get(input_axis, axis.id[0].upper())
            # pages of unknown meaning read as the model's z are written as z
            letters.append("Z" if letter == "Q" and input_axis == "z" else letter)
            pixel = calibration.get(source.get(input_axis))
            size = pixel.scaled(1 / ratio) if pixel is not None and ratio else None
        else:
            letters.append("Q")
        sizes.append(size)
    return FileLayout(output.axis_ids, tuple(letters), tuple(sizes))


def output_table(output, data: np.ndarray) -> tuple[list[str], np.ndarray]:
    """An output without spatial axes (a classifier's) as a table: one row per batch entry, one column per
    channel (named by the rdf's channel names), other axes flattened into more columns."""
    batch = output.of_kind("batch")
    if batch:
        data = np.moveaxis(data, output.axis_ids.index(batch[0].id), 0)
        rest = [a for a in output.axes if a.kind != "batch"]
    else:
        data = data[None]
        rest = list(output.axes)
    rows = data.reshape(data.shape[0], -1)
    if len(rest) == 1 and rest[0].kind == "channel" and len(rest[0].channel_names) == rows.shape[1]:
        header = list(rest[0].channel_names)
    elif rows.shape[1] == 1:
        header = [output.id]
    else:
        header = [f"{output.id}[{','.join(map(str, i))}]" for i in np.ndindex(*data.shape[1:])]
    return header, rows


class ZarrSink:
    """Tiles written straight into an OME-Zarr output whose chunks are the tiles' own output boxes, so that every
    tile writes whole chunks of its own.

    Blended tiles reach into their neighbours' chunks: a chunk's weighted sum is kept in memory until the last
    tile that reaches into it is in, then written once. Tiles come in raster order, so at most about three rows
    of tiles (slabs, for 3D) are held. `done`: chunks an interrupted run has written already (they are left as
    they are); completed() tells which chunks have been written since it was last asked."""

    def __init__(
        self, path: Path, layout: FileLayout, plan: TilePlan, maps=(), *, resume: bool, done: set[int] | None = None
    ):
        self.path = path
        self.layout = layout
        self.plan = plan
        self.ratios = {m.output_axis: m.ratio for m in maps}
        self.inputs = {m.output_axis: m.input_axis for m in maps}
        self.array = open_zarr_output(path) if resume else None
        self.done = set(done or ())
        self.pending: dict[int, list] = {}  # chunk index -> [weighted sum, tiles still to come]
        self._completed: set[int] = set()
        self.nan = 0  # NaN values written by this run
        self.values = 0  # values written by this run

    def write(self, region, data: np.ndarray, weight, full_shape) -> None:
        if self.array is None:
            if self.path.exists():
                shutil.rmtree(self.path)
            dtype = np.float32 if weight is not None and data.dtype.kind != "f" else data.dtype
            chunks = self._chunks(full_shape, data.shape)
            self.array = create_zarr(
                self.path,
                self.layout.file_shape(full_shape),
                dtype,
                self.layout.file_shape(chunks),
                self.layout.axes,
                self.layout.calibration,
            )
        if weight is None:
            self._store(region, data)
            return
        self._accumulate(region, data * weight, full_shape)

    def _store(self, region, data: np.ndarray) -> None:
        self.array[self.layout.file_index(region)] = self.layout.to_file(data)
        self.nan += nan_count(data)
        self.values += data.size

    def completed(self) -> set[int]:
        """Chunks (numbered like the tiles whose own range they are) written since the last call."""
        finished, self._completed = self._completed, set()
        return finished

    def _accumulate(self, region, weighted: np.ndarray, full_shape) -> None:
        """Add a blended tile (output = input coordinates: blending is refused for resized outputs) to the chunks
        it reaches into; write each chunk whose last contribution this was."""
        axes = self.plan.axes
        model_axes = self.layout.model_axes
        output_of = {i: o for o, i in self.inputs.items()}
        batch = next((region[a][0] for a in model_axes if a in region and a not in self.inputs), 0)
        touched = [
            range(region[output_of[t.axis]][0] // t.stride, (region[output_of[t.axis]][1] - 1) // t.stride + 1)
            for t in axes
        ]
        for grid in itertools.product(*touched):
            chunk = self.plan.index(batch, grid)
            if chunk in self.done:
                continue
            box = dict(region)
            for tiling, k in zip(axes, grid):
                box[output_of[tiling.axis]] = (k * tiling.stride, min((k + 1) * tiling.stride, tiling.length))
            entry = self.pending.get(chunk)
            if entry is None:
                shape = [box[a][1] - box[a][0] if a in self.inputs else n for a, n in zip(model_axes, weighted.shape)]
                contributions = len(self.plan.neighbours(Tile(chunk, batch, tuple(grid))))
                entry = [np.zeros(shape, dtype=np.result_type(weighted, np.float32)), contributions, box]
                self.pending[chunk] = entry
            in_piece, in_chunk = [], []
            for a in model_axes:
                if a in self.inputs:
                    lo, hi = max(box[a][0], region[a][0]), min(box[a][1], region[a][1])
                    in_piece.append(slice(lo - region[a][0], hi - region[a][0]))
                    in_chunk.append(slice(lo - box[a][0], hi - box[a][0]))
                else:
                    in_piece.append(slice(None))
                    in_chunk.append(slice(None))
            entry[0][tuple(in_chunk)] += weighted[tuple(in_piece)]
            entry[1] -= 1
            if entry[1] == 0:
                total, _, where = self.pending.pop(chunk)
                self._store(where, total.astype(self.array.dtype))
                self._completed.add(chunk)

    def _chunks(self, full_shape, piece_shape) -> tuple[int, ...]:
        strides = {a.axis: a.stride for a in self.plan.axes}
        chunks = []
        for axis, size, piece in zip(self.layout.model_axes, full_shape, piece_shape):
            if axis in self.inputs:
                chunk = strides[self.inputs[axis]] * self.ratios[axis]
                chunk = int(chunk) if chunk.denominator == 1 else piece
            else:
                chunk = piece
            chunks.append(max(1, min(size, chunk)))
        return tuple(chunks)

    @property
    def held_bytes(self) -> int:
        return sum(entry[0].nbytes for entry in self.pending.values())

    def close(self) -> None:
        self.pending.clear()


def nan_count(array: np.ndarray, block_elements: int = 1 << 24) -> int:
    """NaN values in `array` (a memory map too), counted in slabs along the first axis."""
    if array.dtype.kind not in "fc":
        return 0
    if array.size <= block_elements or array.ndim == 0:
        return int(np.count_nonzero(np.isnan(array)))
    step = max(1, block_elements // max(1, array[0].size))
    return sum(int(np.count_nonzero(np.isnan(array[i : i + step]))) for i in range(0, array.shape[0], step))


def blend_buffer_bytes(plan: TilePlan, output_shapes: list[tuple[int, ...]]) -> int:
    """About the most a blended Zarr output holds in memory: three rows (slabs) of tiles along the slowest tiled
    axis, for every output (float32)."""
    if not plan.axes:
        return 0
    first = plan.axes[0]
    share = min(1.0, 3 * (first.stride + 2 * first.overlap) / max(first.length, 1))
    return int(sum(math.prod(shape) / plan.batch * share * 4 for shape in output_shapes))


def write_zarr_whole(path: Path, data: np.ndarray, axes: str, calibration: dict[str, PixelSize] | None = None) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    array = create_zarr(tmp, data.shape, data.dtype, tuple(min(n, 1024) for n in data.shape), axes, calibration)
    array[...] = data
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def record_path(job: Job) -> Path:
    first = next(iter(job.outputs.values()))
    return first.parent / f"{job.stem}{RECORD_SUFFIX}"


def run_signature(model: PredictionModel, job: Job, plan: TilePlan) -> dict:
    inputs = {}
    for input_id, path in job.paths.items():
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())[:64]
        inputs[input_id] = [
            str(path.resolve()),
            sum(p.stat().st_size for p in files),
            max((p.stat().st_mtime_ns for p in files), default=0),
        ]
    return {
        "model": model.sha256,
        "weights": model.weight_format,
        "plan": plan.signature(),
        "inputs": inputs,
        "outputs": sorted(p.name for p in job.outputs.values()),
    }


class ResumeRecord:
    """`<stem>.zoo-predict.json` next to Zarr outputs: the run's signature and the tiles whose chunks are written.
    A run with the same signature skips those tiles; any other signature starts afresh."""

    def __init__(self, outputs: dict[str, Path], path: Path, signature: dict):
        self.path = path
        self.signature = signature
        self.done: set[int] = set()
        self._last_write = 0.0
        self._completed = False
        self._lock = threading.Lock()
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError):
                saved = {}
            if saved.get("signature") == signature and all(p.exists() for p in outputs.values()):
                self.done = set(saved.get("done", []))
                logger.info("resuming %s: %d tiles already written", path.name, len(self.done))
        if not self.done:
            for output in outputs.values():
                if output.exists():
                    shutil.rmtree(output)
        self._save(False)

    def mark(self, indices: list[int]) -> None:
        with self._lock:
            self.done.update(indices)
            if time.monotonic() - self._last_write > 0.5:
                self._save(False)

    def complete(self) -> None:
        with self._lock:
            self._save(True)
            self._completed = True

    def flush(self) -> None:
        with self._lock:
            if not self._completed:
                self._save(False)

    def _save(self, complete: bool) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({"signature": self.signature, "complete": complete, "done": sorted(self.done)}))
        os.replace(tmp, self.path)
        self._last_write = time.monotonic()


__all__ = [
    "FileLayout",
    "MemorySink",
    "ResumeRecord",
    "ZarrSink",
    "blend_buffer_bytes",
    "nan_count",
    "output_layout",
    "output_table",
    "record_path",
    "run_signature",
    "scratch_file",
    "write_zarr_whole",
]
