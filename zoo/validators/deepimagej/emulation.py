"""What deepImageJ (JDLL) computes for a package's single input, reproduced in numpy around the package's own model.

The semantics follow /work/shared/deepimagej/RULES.md:
- pre- and post-processing run on the whole image (DIJ30), on float32 input (DIJ19), `ensure_dtype` skipped (DIJ27);
  statistics are computed on this sample even for `per_dataset` (DIJ29), percentiles are nearest-rank (DIJ29),
  `scale_range` ignores `reference_tensor` (DIJ29), `scale_linear` lists use their first element (DIJ30), axes lists
  are matched per character and a kept channel/batch axis of size > 1 makes `zero_mean_unit_variance` joint (DIJ30),
  post-processed integer outputs are floored (DIJ30);
- tiling (DIJ24/DIJ25): the channel axis is never tiled; a fixed size is the tile (the image may be down to a third
  of it, and is mirrored to fill it); a `min + n·step` axis takes the smallest such size that holds the whole image;
  while a tile exceeds 4096·4096·3 elements the largest tileable axis shrinks by its step, and the image is covered
  by tiles that overlap by twice the output halo, each keeping its centre; an output axis that references an input
  axis has `tile · scale + 2 · offset` elements (DIJ21).

What JDLL cannot do, or what this emulation does not model, raises `NotEmulated` with the reason."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zoo.bioimage.rdf_tensors import AxisView, TensorView

MAX_INPUT_TILE_ELEMENTS = 4096 * 4096 * 3  # JDLL TileCalculator
FIJI_ATOL, FIJI_RTOL = 1.5e-4, 1e-4  # the bioimage.io nightly Fiji check: |a − e| ≤ 1.5e-4 + 1e-4·|e|


class NotEmulated(Exception):
    """The package does something this emulation cannot reproduce (or JDLL cannot run)."""


# ---------------------------------------------------------------- processing


def nearest_rank_percentile(values: np.ndarray, percentile: float) -> float:
    """The nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    flat = np.sort(values, axis=None)
    if flat.size == 0:
        return float("nan")
    rank = max(1, math.ceil(percentile / 100 * flat.size))
    return float(flat[min(rank, flat.size) - 1])


def _first(value, default: float) -> float:
    if isinstance(value, list):
        value = value[0] if value else default
    return float(default if value is None else value)


def _jdll_reduced(tensor: TensorView, shape: tuple[int, ...], axes) -> tuple[int, ...] | None:
    """The array axes JDLL reduces over for `axes` (each character of each name matched against the axis letters),
    or None for the whole tensor: also when a kept channel or batch axis has more than one element."""
    if axes is None:
        return None
    names = [str(a) for a in axes] if isinstance(axes, list) else [str(axes)]
    chars = {ch for name in names for ch in name}
    reduced = tuple(i for i, axis in enumerate(tensor.axes) if axis.letter in chars)
    kept_multi = [
        axis for i, axis in enumerate(tensor.axes) if i not in reduced and axis.letter in ("b", "c") and shape[i] > 1
    ]
    return None if kept_multi or not reduced else reduced


def _apply_step(name: str, kwargs: dict, data: np.ndarray, tensor: TensorView) -> np.ndarray:
    if name == "ensure_dtype":
        return data
    if name == "binarize":
        threshold = kwargs.get("threshold")
        if isinstance(threshold, list) or "axis" in kwargs:
            raise NotEmulated("binarize with a per-channel threshold does not run in deepImageJ (DIJ27)")
        return (data > float(threshold)).astype(np.float32)
    if name == "clip":
        if "min" not in kwargs or "max" not in kwargs or set(kwargs) & {"min_percentile", "max_percentile", "axes"}:
            raise NotEmulated(f"clip with {sorted(map(str, kwargs))} does not run in deepImageJ (DIJ27)")
        return np.clip(data, float(kwargs["min"]), float(kwargs["max"])).astype(np.float32)
    if name == "scale_linear":
        return data * np.float32(_first(kwargs.get("gain"), 1.0)) + np.float32(_first(kwargs.get("offset"), 0.0))
    if name == "sigmoid":
        return (1.0 / (1.0 + np.exp(-data))).astype(np.float32)
    if name == "scale_range":
        reduced = _jdll_reduced(tensor, data.shape, kwargs.get("axes"))
        lo_p, hi_p = float(kwargs.get("min_percentile", 0.0)), float(kwargs.get("max_percentile", 100.0))
        eps = float(kwargs.get("eps", 1e-6))
        if reduced is None:
            lo, hi = nearest_rank_percentile(data, lo_p), nearest_rank_percentile(data, hi_p)
            return ((data - lo) / (hi - lo + eps)).astype(np.float32)
        moved = np.moveaxis(data, reduced, range(len(reduced)))
        flat = moved.reshape(-1, *moved.shape[len(reduced) :])
        lo = np.apply_along_axis(nearest_rank_percentile, 0, flat, lo_p)
        hi = np.apply_along_axis(nearest_rank_percentile, 0, flat, hi_p)
        scaled = (moved - lo) / (hi - lo + eps)
        return np.moveaxis(scaled, range(len(reduced)), reduced).astype(np.float32)
    if name == "zero_mean_unit_variance":
        eps = float(kwargs.get("eps", 1e-6))
        if kwargs.get("mode") == "fixed":
            mean, std = kwargs.get("mean"), kwargs.get("std")
            return ((data - _first(mean, 0.0)) / (_first(std, 1.0) + eps)).astype(np.float32)
        reduced = _jdll_reduced(tensor, data.shape, kwargs.get("axes"))
        mean = data.mean(axis=reduced, keepdims=True)
        std = data.std(axis=reduced, keepdims=True)
        return ((data - mean) / (std + eps)).astype(np.float32)
    if name == "fixed_zero_mean_unit_variance":
        mean, std = kwargs.get("mean", 0.0), kwargs.get("std", 1.0)
        eps = float(kwargs.get("eps", 1e-6))
        if isinstance(mean, list) and len(mean) > 1 or isinstance(std, list) and len(std) > 1:
            if not tensor.axes or tensor.axes[0].letter != "c":
                raise NotEmulated(
                    "fixed_zero_mean_unit_variance lists fail in deepImageJ unless the channel axis is first (DIJ30)"
                )
            shape = (-1,) + (1,) * (data.ndim - 1)
            mean_a = np.asarray(mean, np.float32).reshape(shape)
            std_a = np.asarray(std, np.float32).reshape(shape)
            return ((data - mean_a) / (std_a + eps)).astype(np.float32)
        return ((data - _first(mean, 0.0)) / (_first(std, 1.0) + eps)).astype(np.float32)
    raise NotEmulated(f"{name} is not implemented in deepImageJ (DIJ27)")


def apply_processing(tensor: TensorView, data: np.ndarray) -> np.ndarray:
    """The tensor's pre- (inputs) or post-processing steps (outputs) as JDLL applies them, on float32 data."""
    data = np.asarray(data, dtype=np.float32)
    for _, name, kwargs in tensor.processing():
        data = _apply_step(name, kwargs, data, tensor)
    return data


def cast_output(tensor: TensorView, data: np.ndarray) -> np.ndarray:
    """JDLL stores a post-processed output in its declared type; integer types floor (DIJ30)."""
    dtype = np.dtype(tensor.data_type() or "float32")
    if np.issubdtype(dtype, np.integer):
        return np.floor(data).astype(dtype)
    return data.astype(dtype)


# ---------------------------------------------------------------- tiling


@dataclass(frozen=True)
class AxisTiling:
    image: int  # the image's size along the axis
    tile: int  # the input tile's size
    halo: int  # the input-side halo (output halo divided by the output's scale)
    starts: tuple[int, ...]  # where each tile starts in the image (may be negative: mirrored)


def _tile_size(axis: AxisView, image: int) -> int:
    size = axis.size
    if axis.letter in ("b", "c"):
        return image
    if size.kind == "fixed":
        if image < math.ceil(size.value / 3):
            raise NotEmulated(
                f"axis {axis.letter}: image size {image} is under a third of the fixed size "
                f"{size.value}; deepImageJ refuses it (DIJ24)"
            )
        return size.value
    if size.kind == "parameterized" and size.min is not None:
        if not size.step:
            return size.min
        if size.min % size.step:
            raise NotEmulated(f"axis {axis.letter}: min {size.min} is not a multiple of step {size.step} (DIJ24)")
        return size.min + max(0, math.ceil((image - size.min) / size.step)) * size.step
    if size.kind == "free":
        return image
    raise NotEmulated(f"axis {axis.letter}: size {size.kind} is not supported by deepImageJ (DIJ22)")


def _starts(image: int, tile: int, halo: int) -> tuple[int, ...]:
    if tile >= image:
        return (-((tile - image) // 2),)  # one tile, the image centred in it
    stride = tile - 2 * halo
    if stride <= 0:
        raise NotEmulated(f"a tile of {tile} minus twice the halo {halo} is not positive (DIJ24)")
    starts, position = [], 0
    while position < image:  # each tile keeps [start + halo, start + tile − halo): the centres abut
        start = min(position - halo, image - tile + halo)
        starts.append(start)
        position = start + tile - halo
    return tuple(starts)


def plan_tiling(tensor: TensorView, shape: tuple[int, ...], halos: dict[str, int]) -> list[AxisTiling]:
    """JDLL's tiles for an input of `shape`: the tile size per axis, then where the tiles start."""
    if len(shape) != len(tensor.axes):
        raise NotEmulated(f"the test input has {len(shape)} axes, the rdf declares {len(tensor.axes)}")
    tiles = [_tile_size(axis, n) for axis, n in zip(tensor.axes, shape)]
    while math.prod(tiles) > MAX_INPUT_TILE_ELEMENTS:
        shrinkable = [
            i
            for i, axis in enumerate(tensor.axes)
            if axis.size.kind == "parameterized"
            and axis.size.step
            and tiles[i] - axis.size.step >= max(axis.size.min or 0, 2 * halos.get(axis.letter or "", 0) + 1)
        ]
        if not shrinkable:
            raise NotEmulated(f"tile {tiles} exceeds {MAX_INPUT_TILE_ELEMENTS} elements and cannot shrink (DIJ25)")
        largest = max(shrinkable, key=lambda i: tiles[i])
        tiles[largest] -= tensor.axes[largest].size.step
    return [
        AxisTiling(n, tile, halos.get(axis.letter or "", 0), _starts(n, tile, halos.get(axis.letter or "", 0)))
        for axis, n, tile in zip(tensor.axes, shape, tiles)
    ]


def _mirror_crop(image: np.ndarray, starts: tuple[int, ...], sizes: tuple[int, ...]) -> np.ndarray:
    """image[start:start+size] per axis, mirrored (edge repeated) where it leaves the image."""
    pads = [(max(0, -s), max(0, s + t - n)) for s, t, n in zip(starts, sizes, image.shape)]
    if any(before > n or after > n for (before, after), n in zip(pads, image.shape)):
        raise NotEmulated(f"a tile of {sizes} needs more mirroring than the image {image.shape} allows (DIJ24)")
    padded = np.pad(image, pads, mode="symmetric")
    index = tuple(slice(s + before, s + before + t) for s, t, (before, _) in zip(starts, sizes, pads))
    return padded[index]


@dataclass(frozen=True)
class OutputGeometry:
    """How an output axis follows the input: out = in · scale + 2 · offset for a reference, else fixed."""

    letter: str | None
    ref_index: int | None  # the input axis it references (array position), None for fixed/batch/channel
    scale: float
    offset: float
    fixed: int | None


def output_geometry(output: TensorView, input_tensor: TensorView) -> list[OutputGeometry]:
    out = []
    for axis in output.axes:
        size = axis.size
        if size.kind == "reference":
            if size.ref_tensor != input_tensor.tensor_id:
                raise NotEmulated(f"outputs[{output.tensor_id}] references {size.ref_tensor!r}, not the input")
            ref = next((i for i, a in enumerate(input_tensor.axes) if size.ref_axis in (a.axis_id, a.letter)), None)
            if ref is None:
                raise NotEmulated(f"outputs[{output.tensor_id}] references unknown axis {size.ref_axis!r}")
            out.append(OutputGeometry(axis.letter, ref, size.scale, size.offset, None))
        elif size.kind == "fixed" or axis.letter in ("b", "c"):
            fixed = size.value if size.kind == "fixed" else None
            out.append(OutputGeometry(axis.letter, None, 1.0, 0.0, fixed))
        else:
            raise NotEmulated(f"outputs[{output.tensor_id}] axis {axis.letter}: {size.kind} size (DIJ22)")
    return out


def run_tiled(
    input_tensor: TensorView,
    outputs: list[TensorView],
    image: np.ndarray,
    model: Callable[[np.ndarray], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Cut the pre-processed image into JDLL's tiles, run `model` on each, stitch each output's tile centres."""
    geometries = {o.tensor_id: output_geometry(o, input_tensor) for o in outputs}
    halos: dict[str, int] = {}
    for output in outputs:
        for axis, geometry in zip(output.axes, geometries[output.tensor_id]):
            if geometry.ref_index is not None and axis.halo:
                letter = input_tensor.axes[geometry.ref_index].letter or ""
                halos[letter] = max(halos.get(letter, 0), math.ceil(axis.halo / (geometry.scale or 1.0)))
    plan = plan_tiling(input_tensor, image.shape, halos)
    grids = np.meshgrid(*[np.arange(len(p.starts)) for p in plan], indexing="ij")
    combos = list(zip(*(g.ravel() for g in grids)))
    results: dict[str, np.ndarray] = {}
    for combo in combos:
        starts = tuple(p.starts[k] for p, k in zip(plan, combo))
        tile = _mirror_crop(image, starts, tuple(p.tile for p in plan))
        predicted = model(np.ascontiguousarray(tile, dtype=np.float32))
        for output in outputs:
            data = predicted[output.tensor_id]
            geometry = geometries[output.tensor_id]
            if len(combos) > 1 and any(
                g.ref_index is None and g.fixed is not None and g.letter not in ("b", "c") for g in geometry
            ):
                raise NotEmulated(
                    f"outputs[{output.tensor_id}] has a fixed spatial size and the image needs several tiles"
                )
            _paste(results, output.tensor_id, data, geometry, plan, starts)
    return results


def _paste(
    results: dict,
    key: str,
    data: np.ndarray,
    geometry: list[OutputGeometry],
    plan: list[AxisTiling],
    starts: tuple[int, ...],
) -> None:
    """Put the kept part of one output tile (its centre: the tile minus the halo, inside the image) in place."""
    if data.ndim != len(geometry):
        raise NotEmulated(f"outputs[{key}]: the model returned {data.ndim} axes, the rdf declares {len(geometry)}")
    full_shape, source, target = [], [], []
    for axis_index, g in enumerate(geometry):
        n_out = data.shape[axis_index]
        if g.ref_index is None:
            full_shape.append(n_out)
            source.append(slice(0, n_out))
            target.append(slice(0, n_out))
            continue
        p = plan[g.ref_index]
        if g.offset:
            raise NotEmulated(f"outputs[{key}]: an offset output axis ({g.offset}) shifts JDLL's tiles (DIJ21)")
        scale = n_out / p.tile
        image_out = round(p.image * scale)
        start_out = round(starts[g.ref_index] * scale)
        halo_out = round(p.halo * scale) if len(p.starts) > 1 else 0
        keep_from = max(0, start_out + halo_out)
        keep_to = min(image_out, start_out + n_out - halo_out)
        full_shape.append(image_out)
        source.append(slice(keep_from - start_out, keep_to - start_out))
        target.append(slice(keep_from, keep_to))
    if key not in results:
        results[key] = np.zeros(full_shape, dtype=data.dtype)
    results[key][tuple(target)] = data[tuple(source)]


# ---------------------------------------------------------------- comparison


def compare_fiji(actual: np.ndarray, expected: np.ndarray) -> dict:
    """Mismatched pixels under the nightly Fiji check's tolerance, and the worst one."""
    actual64, expected64 = actual.astype(np.float64), expected.astype(np.float64)
    excess = np.abs(actual64 - expected64) - (FIJI_ATOL + FIJI_RTOL * np.abs(expected64))
    excess = np.where(np.isnan(excess), np.inf, excess)
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.size else ()
    return {
        "mismatched": int((excess > 0).sum()),
        "size": int(expected.size),
        "max_abs": float(np.nanmax(np.abs(actual64 - expected64))) if expected.size else 0.0,
        "worst_index": [int(i) for i in worst],
        "worst_actual": float(actual64[worst]) if expected.size else 0.0,
        "worst_expected": float(expected64[worst]) if expected.size else 0.0,
    }
