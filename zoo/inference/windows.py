"""One tile's data on its way through the tile pipeline (zoo.inference.engine): its input windows read, padded
where they leave the image and pre-processed; the model's outputs post-processed and cut to what the tile owns;
and the post-processing that needs whole outputs (apply_deferred)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from zoo.errors import PredictionError
from zoo.inference.axes import ArrayImage
from zoo.inference.model import PredictionModel
from zoo.inference.stats import compute_statistics
from zoo.inference.tiling import Tile, TilePlan, source_indices

STATISTICS_BUDGET = 2 * 1024**3  # for statistics of whole outputs, which are in memory already


# ---------------------------------------------------------------------------------------------- read side


def preprocess(
    model: PredictionModel,
    images: Mapping[str, object],
    plan: TilePlan,
    stats: dict,
    tile: Tile,
    nonfinite: dict[str, int],
) -> list[np.ndarray]:
    """One tile's pre-processed input windows, in the rdf's input order; the NaN and infinite pixels read are
    counted into `nonfinite`."""
    from bioimageio.core import Sample, Tensor
    from bioimageio.core.axis import AxisId
    from bioimageio.core.common import MemberId

    members, stat = {}, {}
    for spec in model.inputs:
        data, regions, index_maps = read_window(images[spec.id], spec, plan, tile, nonfinite)
        members[MemberId(spec.id)] = Tensor.from_numpy(data, dims=[AxisId(a) for a in spec.axis_ids])
        for measure, value in stats.items():
            if str(measure.member_id) == spec.id:
                stat[measure] = value.window(regions, index_maps)
    sample = Sample(members=members, stat=stat, id=None)
    for op in model.pre_ops:
        op(sample)
    return [
        sample.members[MemberId(spec.id)].transpose([AxisId(a) for a in spec.axis_ids]).data.to_numpy()
        for spec in model.inputs
    ]


def read_window(image, spec, plan: TilePlan, tile: Tile, nonfinite: dict[str, int]) -> tuple[np.ndarray, dict, dict]:
    """The raw input window of a tile, padded by the model's padding mode where it leaves the image."""
    regions: dict[str, tuple[int, int]] = {}
    index_maps: dict[str, np.ndarray] = {}
    batch = spec.of_kind("batch")
    if batch:
        regions[batch[0].id] = (tile.batch, tile.batch + 1)
    for tiling, k in zip(plan.axes, tile.grid):
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
    count_nonfinite(nonfinite, spec, plan, tile, data, regions)
    for axis, local in index_maps.items():
        position = spec.axis_ids.index(axis)
        data = np.take(data, np.clip(local, 0, None), axis=position)
        if spec.pad_mode == "constant" and (local < 0).any():
            data = np.array(data, copy=True)
            where = [slice(None)] * data.ndim
            where[position] = local < 0
            data[tuple(where)] = spec.pad_value
    return data, regions, index_maps


def count_nonfinite(
    nonfinite: dict[str, int], spec, plan: TilePlan, tile: Tile, data: np.ndarray, regions: dict
) -> None:
    """Count the NaN and infinite pixels of the range `tile` owns (the ranges of all tiles cover the image
    once)."""
    count = nonfinite.setdefault(spec.id, 0)
    if data.dtype.kind not in "fc":
        return
    index: list = [slice(None)] * data.ndim
    for tiling, k in zip(plan.axes, tile.grid):
        if tiling.axis not in regions or tiling.axis not in spec.axis_ids:
            continue
        lo, hi = tiling.inner(k)
        start = regions[tiling.axis][0]
        index[spec.axis_ids.index(tiling.axis)] = slice(max(lo - start, 0), max(hi - start, 0))
    owned = data[tuple(index)]
    nonfinite[spec.id] = count + int(owned.size - np.count_nonzero(np.isfinite(owned)))


def stack(model: PredictionModel, windows: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Per input, the tiles' windows stacked along its batch axis."""
    arrays = []
    for i, spec in enumerate(model.inputs):
        batch = spec.of_kind("batch")
        parts = [w[i] for w in windows]
        stacked = np.concatenate(parts, axis=spec.axis_ids.index(batch[0].id)) if batch else parts[0]
        arrays.append(np.ascontiguousarray(stacked))
    return arrays


# --------------------------------------------------------------------------------------------- write side


def postprocess(model: PredictionModel, outputs: list[np.ndarray]) -> list[np.ndarray]:
    """The post-processing that works tile by tile, on one model call's outputs."""
    if not model.tile_post_ops:
        return outputs
    from bioimageio.core import Sample, Tensor
    from bioimageio.core.axis import AxisId
    from bioimageio.core.common import MemberId

    sample = Sample(
        members={
            MemberId(s.id): Tensor.from_numpy(o, dims=[AxisId(a) for a in s.axis_ids])
            for s, o in zip(model.outputs, outputs)
        },
        stat={},
        id=None,
    )
    for op in model.tile_post_ops:
        op(sample)
    return [
        sample.members[MemberId(s.id)].transpose([AxisId(a) for a in s.axis_ids]).data.to_numpy() for s in model.outputs
    ]


def store_tile(
    model: PredictionModel, plan: TilePlan, sinks: Mapping[str, object], tile: Tile, j: int, outputs: list[np.ndarray]
) -> None:
    """Crop entry `j` of the outputs to what `tile` owns and write it into `sinks`."""
    by_axis = {a.axis: (i, a) for i, a in enumerate(plan.axes)}
    for spec, data in zip(model.outputs, outputs):
        sink = sinks[spec.id]
        if hasattr(sink, "write_window"):  # instance labels: the tile's whole window (zoo.inference.instances)
            batch = spec.axis_ids.index(spec.of_kind("batch")[0].id)
            sink.write_window(tile, np.take(data, [j], axis=batch))
            continue
        index: list = [slice(None)] * data.ndim
        region: dict[str, tuple[int, int]] = {}
        weights = []
        batch = spec.of_kind("batch")
        if batch:
            position = spec.axis_ids.index(batch[0].id)
            index[position] = slice(j, j + 1)
            region[batch[0].id] = (tile.batch, tile.batch + 1)
        empty = False
        for axis_map in model.geometry.output_maps[spec.id]:
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
        sinks[spec.id].write(region, piece, weight, full_shape(model, plan, spec, data))


def full_shape(model: PredictionModel, plan: TilePlan, spec, data: np.ndarray) -> tuple[int, ...]:
    """The whole output's shape, from the plan and one call's output `data`."""
    lengths = {a.axis: a.length for a in plan.axes}
    maps = {m.output_axis: m for m in model.geometry.output_maps[spec.id]}
    shape = []
    for i, axis in enumerate(spec.axes):
        if axis.kind == "batch":
            shape.append(plan.batch)
        elif axis.id in maps:
            shape.append(maps[axis.id].length(lengths[maps[axis.id].input_axis]))
        else:
            shape.append(data.shape[i])
    return tuple(shape)


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


__all__ = [
    "STATISTICS_BUDGET",
    "apply_deferred",
    "count_nonfinite",
    "full_shape",
    "postprocess",
    "preprocess",
    "read_window",
    "stack",
    "store_tile",
]
