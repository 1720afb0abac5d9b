"""Tile sizing and memory planning: how an image is cut into windows (make_plan), how many tiles go into one
model call (tiles_per_call), and how many model calls fit the memory budget side by side (plan_pipeline)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from zoo.errors import ImageError, InputError
from zoo.inference.engine import default_in_flight
from zoo.inference.model import PredictionModel
from zoo.inference.tiling import AxisTiling, TilePlan, plan_axis

logger = logging.getLogger(__name__)

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


# ------------------------------------------------------------------------------------------------- plan


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
    "CALL_FACTOR",
    "PipelineMemory",
    "call_tensor_bytes",
    "make_plan",
    "output_shape",
    "plan_pipeline",
    "tiles_per_call",
]
