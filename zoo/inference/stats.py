"""Statistics the pre/post-processing needs (mean, std, var, quantiles), computed once over the whole image,
block by block, so that every tile is normalised with the same numbers and memory stays bounded.

Means and variances are merged exactly across blocks (Chan et al.). Quantiles are exact: in memory when the
data fits the budget, otherwise by narrowing histograms over repeated passes until the wanted order
statistics can be picked out."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from zoo.errors import InputError

HISTOGRAM_BINS = 4096
COLLECT_AT_MOST = 4_000_000  # values gathered in the last pass of a streamed quantile


class Readable(Protocol):
    """An image seen in the model's axis order: `axes`, `shape` per axis, `read` of a box."""

    axes: tuple[str, ...]
    shape: dict[str, int]

    def read(self, region: dict[str, tuple[int, int]]) -> np.ndarray: ...


@dataclass
class StatValue:
    """A measure's value over the remaining (not reduced) axes."""

    data: np.ndarray
    dims: tuple[str, ...]

    def window(self, regions: dict[str, tuple[int, int]], index_maps: dict[str, np.ndarray]):
        """The part of the value that belongs to a window, as a bioimageio.core Tensor."""
        from bioimageio.core import Tensor
        from bioimageio.core.axis import AxisId

        data = self.data
        for i, dim in enumerate(self.dims):
            if dim in regions:
                lo, hi = regions[dim]
                data = data[(slice(None),) * i + (slice(lo, hi),)]
                if dim in index_maps:
                    data = np.take(data, np.clip(index_maps[dim], 0, None), axis=i)
        return Tensor.from_numpy(np.ascontiguousarray(data), dims=[AxisId(d) for d in self.dims])


def iter_blocks(image: Readable, block_elements: int) -> Iterator[dict[str, tuple[int, int]]]:
    """Boxes of about `block_elements` covering the image: batch entries one by one, channels whole, the other
    axes cut into slabs."""
    axes = list(image.axes)
    sizes = [image.shape[a] for a in axes]
    ranges: list[list[tuple[int, int]]] = []
    for i, (axis, size) in enumerate(zip(axes, sizes)):
        if axis == "batch":
            step = 1
        elif axis == "channel":
            step = size
        else:
            step = block_elements // max(math.prod(sizes[i + 1 :]), 1)
        step = max(1, min(step, size))
        ranges.append([(lo, min(lo + step, size)) for lo in range(0, size, step)])
    for combo in itertools.product(*ranges):
        yield dict(zip(axes, combo))


def compute_statistics(measures, images: dict[str, list[Readable]], budget_bytes: int) -> dict:
    """Values of bioimageio.core measures (Sample*/Dataset*) over `images` (member id -> one image, or all
    images of a run for dataset measures)."""
    groups: dict[tuple, list] = {}
    for measure in measures:
        groups.setdefault((str(measure.member_id), measure.axes), []).append(measure)
    values = {}
    # a block is read, copied to float64 and squared: about 24 bytes per element at once, an eighth of the budget
    block_elements = max(1 << 16, budget_bytes // 192)
    for (member, axes), group in groups.items():
        sources = images.get(member)
        if not sources:
            raise InputError(f"statistics of {member!r} are needed but there is no such tensor")
        reduce = tuple(str(a) for a in axes) if axes is not None else tuple(sources[0].axes)
        kept = tuple(a for a in sources[0].axes if a not in reduce)
        if any(m.name in ("mean", "std", "var") for m in group):
            mean, var = _moments(sources, reduce, kept, block_elements)
            for m in group:
                if m.name in ("mean", "std", "var"):
                    value = {"mean": mean, "var": var, "std": np.sqrt(var)}[m.name]
                    values[m] = StatValue(value.astype(np.float32), kept)
        quantiles = [m for m in group if m.name == "quantile"]
        if quantiles:
            for m, value in zip(quantiles, _quantiles(sources, reduce, kept, quantiles, budget_bytes, block_elements)):
                values[m] = StatValue(value.astype(np.float32), kept)
    return values


def _kept_shape(source: Readable, kept: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(source.shape[a] for a in kept)


def _moments(sources: list[Readable], reduce, kept, block_elements) -> tuple[np.ndarray, np.ndarray]:
    shape = _kept_shape(sources[0], kept)
    count = np.zeros(shape)
    mean = np.zeros(shape)
    m2 = np.zeros(shape)
    for source in sources:
        if _kept_shape(source, kept) != shape:
            raise InputError(f"images differ along {', '.join(kept)}: dataset statistics need equal shapes")
        reduce_idx = tuple(source.axes.index(a) for a in reduce)
        for region in iter_blocks(source, block_elements):
            block = source.read(region).astype(np.float64)
            n = math.prod(block.shape[i] for i in reduce_idx)
            if n == 0:
                continue
            block_mean = block.mean(axis=reduce_idx, keepdims=True)
            block_m2 = ((block - block_mean) ** 2).sum(axis=reduce_idx)
            block_mean = block_mean.squeeze(axis=reduce_idx)
            where = tuple(slice(*region[a]) for a in kept)
            n_a = count[where]
            total = n_a + n
            delta = block_mean - mean[where]
            mean[where] += delta * n / total
            m2[where] += block_m2 + delta**2 * n_a * n / total
            count[where] = total
    with np.errstate(invalid="ignore", divide="ignore"):
        return mean, m2 / count


def _quantiles(sources, reduce, kept, measures, budget_bytes, block_elements) -> list[np.ndarray]:
    total_bytes = sum(math.prod(s.shape.values()) for s in sources) * 8
    if total_bytes * 2 <= budget_bytes:
        data = _gather(sources, reduce, kept)
        return [np.quantile(data, m.q, axis=-1, method=getattr(m, "method", "linear")) for m in measures]
    methods = {getattr(m, "method", "linear") for m in measures}
    if methods - {"linear"}:
        raise InputError(
            f"quantile method(s) {', '.join(sorted(methods))} over an image larger than the memory "
            "budget: raise --memory-limit"
        )
    return _streamed_quantiles(sources, reduce, kept, [m.q for m in measures], block_elements)


def _gather(sources, reduce, kept) -> np.ndarray:
    """All values, kept axes first, reduced axes flattened last."""
    parts = []
    for source in sources:
        data = source.read({a: (0, n) for a, n in source.shape.items()})
        order = [source.axes.index(a) for a in kept] + [source.axes.index(a) for a in reduce]
        data = np.transpose(data, order)
        parts.append(data.reshape(data.shape[: len(kept)] + (-1,)))
    return np.concatenate(parts, axis=-1).astype(np.float64)


def _blocks_flat(sources, reduce, kept, block_elements):
    """(index into the kept shape, flat float64 values) for every kept position of every block."""
    for source in sources:
        order = [source.axes.index(a) for a in kept] + [source.axes.index(a) for a in reduce]
        for region in iter_blocks(source, block_elements):
            block = np.transpose(source.read(region), order)
            flat = block.reshape(block.shape[: len(kept)] + (-1,)).astype(np.float64)
            offsets = [region[a][0] for a in kept]
            for local in np.ndindex(*flat.shape[: len(kept)]):
                yield tuple(o + i for o, i in zip(offsets, local)), flat[local]


def _streamed_quantiles(sources, reduce, kept, qs: list[float], block_elements) -> list[np.ndarray]:
    shape = _kept_shape(sources[0], kept)
    lo = np.full(shape, np.inf)
    hi = np.full(shape, -np.inf)
    count = np.zeros(shape, dtype=np.int64)
    for where, values in _blocks_flat(sources, reduce, kept, block_elements):
        lo[where] = min(lo[where], values.min())
        hi[where] = max(hi[where], values.max())
        count[where] += values.size
    results = [np.zeros(shape) for _ in qs]
    for where in np.ndindex(*shape):
        ranks: dict[int, float] = {}
        for q in qs:
            position = q * (count[where] - 1)
            ranks[int(math.floor(position))] = 0.0
            ranks[int(math.ceil(position))] = 0.0
        for rank in ranks:
            ranks[rank] = _order_statistic(sources, reduce, kept, block_elements, where, rank, lo[where], hi[where])
        for i, q in enumerate(qs):
            position = q * (count[where] - 1)
            below, above = ranks[int(math.floor(position))], ranks[int(math.ceil(position))]
            results[i][where] = below + (position - math.floor(position)) * (above - below)
    return results


def _order_statistic(sources, reduce, kept, block_elements, where, rank: int, lo: float, hi: float) -> float:
    """The rank-th smallest value at one kept position: narrow [lo, hi] by histograms, then pick exactly."""
    below = 0
    while True:
        if lo == hi:
            return lo
        counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        for position, values in _blocks_flat(sources, reduce, kept, block_elements):
            if position == where:
                inside = values[(values >= lo) & (values <= hi)]
                counts += np.histogram(inside, bins=HISTOGRAM_BINS, range=(lo, hi))[0]
        cumulative = np.cumsum(counts)
        b = int(np.searchsorted(cumulative, rank - below, side="right"))
        edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
        below += int(cumulative[b - 1]) if b > 0 else 0
        new_lo, new_hi = edges[b], edges[b + 1]
        last = b == HISTOGRAM_BINS - 1
        if counts[b] <= COLLECT_AT_MOST or new_lo >= new_hi or (new_lo, new_hi) == (lo, hi):
            picked = []
            for position, values in _blocks_flat(sources, reduce, kept, block_elements):
                if position == where:
                    upper = values <= new_hi if last else values < new_hi
                    picked.append(values[(values >= new_lo) & upper])
            picked = np.sort(np.concatenate(picked))
            return float(picked[rank - below])
        lo, hi = new_lo, new_hi
        if not last:
            hi = np.nextafter(hi, -np.inf)


__all__ = ["StatValue", "compute_statistics", "iter_blocks"]
