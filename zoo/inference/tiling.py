"""Exact tiling: windows of a size the model accepts, overlapping by the declared halo, cropped and stitched.

Along one axis of length L, tile k owns the output range [k·stride, (k+1)·stride) and reads the input window
[k·stride − halo − overlap, … + tile), with at least `halo_after` pixels of context after its range (more than
`halo` for a model that crops its output, fewer never). Windows that stick out of the image are filled by the
model's padding mode through an index map, so every window sees exactly what a whole-image run sees. Strides are
multiples of the model's size step, so a U-Net's pooling grid lines up in every tile; with a sufficient halo the
stitched output equals the whole-image output.

An axis whose length the model takes as it is, and that fits one window, is not cut and not padded: the model sees
the image exactly as bioimageio.core's test run gives it (no halo padding), so a package's test input reproduces
its test output. Only an axis that must be cut, or padded up to a size the model takes, is padded at the image's
borders by the model's padding mode (as bioimageio.core pads the blocks of a tiled run).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from zoo.bioimage.tensors import ValidSizes
from zoo.errors import InputError


@dataclass(frozen=True)
class AxisTiling:
    """How one axis is cut: `count` windows of `tile` pixels, `stride` apart."""

    axis: str
    length: int
    tile: int
    stride: int
    halo: int  # input context before each tile's range
    overlap: int = 0  # extra context blended with the neighbours (0: exact crop)
    halo_after: int | None = None  # input context after each tile's range; None: the same as `halo`
    inside: bool = False  # windows are moved inside the image: its borders are seen unpadded, as in one call

    @property
    def after(self) -> int:
        return self.halo if self.halo_after is None else self.halo_after

    @property
    def count(self) -> int:
        return max(1, _ceil_div(self.length, self.stride))

    def window(self, k: int) -> tuple[int, int]:
        """Input window of tile k in image coordinates (may stick out of the image, unless `inside`)."""
        start = -self.halo if self.count == 1 else k * self.stride - self.halo - self.overlap
        if self.inside:
            start = min(max(start, 0), self.length - self.tile)
        return start, start + self.tile

    def inner(self, k: int) -> tuple[int, int]:
        """The output range tile k owns."""
        lo = k * self.stride
        return lo, min(lo + self.stride, self.length)

    def kept(self, k: int) -> tuple[int, int]:
        """The output range tile k contributes to (its inner range, widened by the blending overlap)."""
        lo, hi = self.inner(k)
        if self.overlap == 0:
            return lo, hi
        return max(0, lo - self.overlap), min(self.length, hi + self.overlap)

    def blend_weights(self, k: int) -> np.ndarray:
        """Weights over kept(k): linear ramps across each shared boundary, summing to 1 with the neighbour's."""
        lo, hi = self.kept(k)
        positions = np.arange(lo, hi) + 0.5
        weights = np.ones(hi - lo, dtype=np.float32)
        if self.overlap == 0:
            return weights
        width = 2 * self.overlap
        if k > 0:
            zone = k * self.stride - self.overlap
            weights = np.minimum(weights, np.clip((positions - zone) / width, 0, 1))
        if k < self.count - 1:
            zone = (k + 1) * self.stride - self.overlap
            weights = np.minimum(weights, np.clip(1 - (positions - zone) / width, 0, 1))
        return weights.astype(np.float32)


@dataclass(frozen=True)
class Tile:
    index: int
    batch: int  # index along the image's batch axis
    grid: tuple[int, ...]  # tile number along each tiled axis


@dataclass(frozen=True)
class TilePlan:
    axes: tuple[AxisTiling, ...]
    batch: int  # batch size of the image: every batch entry is tiled separately

    @property
    def count(self) -> int:
        return self.batch * math.prod(a.count for a in self.axes)

    @property
    def window_shape(self) -> dict[str, int]:
        return {a.axis: a.tile for a in self.axes}

    @property
    def blended(self) -> bool:
        return any(a.overlap and a.count > 1 for a in self.axes)

    def tiles(self) -> list[Tile]:
        grids = itertools.product(range(self.batch), *(range(a.count) for a in self.axes))
        return [Tile(i, g[0], tuple(g[1:])) for i, g in enumerate(grids)]

    def index(self, batch: int, grid: tuple[int, ...]) -> int:
        """The index of the tile at (batch, grid), as tiles() numbers them."""
        index = batch
        for axis, k in zip(self.axes, grid):
            index = index * axis.count + k
        return index

    def neighbours(self, tile: Tile) -> list[int]:
        """Indices of the tiles whose blended ranges reach into this tile's own range (itself included): one
        step along every axis that is blended, none along the others."""
        ranges = [
            range(max(0, k - 1), min(a.count, k + 2)) if a.overlap else (k,) for a, k in zip(self.axes, tile.grid)
        ]
        return [self.index(tile.batch, grid) for grid in itertools.product(*ranges)]

    def describe(self) -> str:
        parts = []
        for a in self.axes:
            halo = f"{a.halo}" if a.after == a.halo else f"{a.halo} before, {a.after} after"
            parts.append(
                f"{a.axis}: {a.count}×{a.tile} (stride {a.stride}, halo {halo}"
                + (f", blend {a.overlap}" if a.overlap else "")
                + ")"
            )
        return f"{self.count} tiles; " + ", ".join(parts)

    def signature(self) -> dict:
        """What must be equal for a restarted run to reuse finished tiles."""
        return {
            "batch": self.batch,
            "axes": [[a.axis, a.length, a.tile, a.stride, a.halo, a.after, a.overlap] for a in self.axes],
        }


def plan_axis(
    axis: str,
    length: int,
    sizes: ValidSizes,
    halo: int,
    align: int,
    *,
    requested: int | None = None,
    whole: bool = False,
    target: int | None = None,
    overlap: int = 0,
    halo_after: int | None = None,
) -> AxisTiling:
    """Cut one axis. `whole`: one window over everything; `requested`: this window size (rounded up to a
    valid one); otherwise windows of at most `target` pixels, as few as possible, balanced. `halo` pixels of
    context before each tile's range, `halo_after` (default: `halo`) after it. A length the model takes that fits
    one window (the requested one, or `target`) is one window of exactly the image, without padding."""
    after = halo if halo_after is None else halo_after
    after_field = None if after == halo else after
    context_in = halo + after
    single = sizes.at_least(length + context_in)
    as_is = AxisTiling(axis, length, length, length, 0) if sizes.is_valid(length) else None  # one call, no padding
    if whole:
        return _whole_axis(axis, length, sizes, halo, context_in, after_field, single, as_is)
    tile = _window_size(axis, sizes, requested, target)
    if as_is is not None and (length <= tile or (requested is None and length <= (target or 0) + sizes.step)):
        return as_is
    overlap = min(overlap, max(0, (tile - context_in - max(align, 1)) // 4))  # blending may not eat the tile
    context = context_in + 2 * overlap
    stride = tile - context
    if stride < 1:
        least = sizes.at_least(context + max(align, 1))
        raise InputError(
            f"axis {axis}: a tile of {tile} leaves nothing once the halo of {context_in} in all"
            + (f" and blending overlap {overlap} per side" if overlap else "")
            + f" is cut off: give a tile of at least {least}"
        )
    # one window over the whole axis when it fits the target (give or take the rounding to a valid size), or
    # when one stride covers it
    fits_target = requested is None and single is not None and single <= max(tile, (target or 0) + sizes.step)
    if fits_target or (stride >= length and single is not None):
        return AxisTiling(axis, length, single, length, halo, 0, after_field)
    if stride >= align:
        stride = stride // align * align
    count = _ceil_div(length, stride)
    # balance: the same number of tiles, each as small as it can be
    balanced = _ceil_div(_ceil_div(length, count), align) * align if stride >= align else stride
    overlap = min(overlap, balanced // 2) if count > 1 else 0
    if as_is is not None:
        inside = _inside_image(as_is, sizes, balanced, halo, after, overlap, align)
        if inside is not None:
            return inside
    tile = sizes.at_least(balanced + context_in + 2 * overlap) or tile
    return AxisTiling(axis, length, tile, balanced, halo, overlap, after_field)


def _whole_axis(
    axis: str,
    length: int,
    sizes: ValidSizes,
    halo: int,
    context_in: int,
    after_field: int | None,
    single: int | None,
    as_is: AxisTiling | None,
) -> AxisTiling:
    """One window over the whole axis: the image as it is when the model takes its length, else padded."""
    if as_is is not None:
        return as_is
    if single is None:
        raise InputError(
            f"axis {axis}: the model takes exactly {sizes.min} pixels, the image needs "
            f"{length} + {context_in} (halo): tile the image (--tile auto) instead of --tile none"
        )
    return AxisTiling(axis, length, single, length, halo, 0, after_field)


def _window_size(axis: str, sizes: ValidSizes, requested: int | None, target: int | None) -> int:
    """The requested window size rounded up to a valid one, or the largest valid one up to `target`."""
    if requested is None:
        return sizes.at_most(max(target or 0, sizes.min))
    tile = sizes.at_least(requested)
    if tile is None:
        raise InputError(
            f"axis {axis}: tile {requested} is larger than the only size the model takes "
            f"({sizes.min}): give --tile {sizes.min} or auto"
        )
    return tile


def _inside_image(
    as_is: AxisTiling, sizes: ValidSizes, balanced: int, halo: int, after: int, overlap: int, align: int
) -> AxisTiling | None:
    """For an image whose length the model takes: windows that stay inside the image, so its borders are seen as a
    single call sees them; the context before a tile is rounded up so that every window starts on the pooling grid
    of that call. `as_is` when one such window covers the image; None when the windows cannot stay on that grid."""
    length = as_is.length
    before = _round_up(halo + overlap, max(align, 1)) - overlap
    inside_tile = sizes.at_least(balanced + before + after + 2 * overlap)
    if inside_tile is not None and inside_tile >= length:
        return as_is
    if inside_tile is not None and (length - inside_tile) % max(align, 1) == 0:
        return AxisTiling(
            as_is.axis,
            length,
            inside_tile,
            balanced,
            before,
            overlap,
            None if after == before else after,
            inside=True,
        )
    return None


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(value: int, multiple: int) -> int:
    return _ceil_div(value, multiple) * multiple


def source_indices(start: int, stop: int, length: int, mode: str) -> np.ndarray:
    """Image index for every position of [start, stop), padded by `mode` (numpy's meaning, repeated as often as
    needed); -1 where `constant` padding applies."""
    index = np.arange(start, stop)
    if mode == "constant":
        return np.where((index < 0) | (index >= length), -1, index)
    if mode == "edge" or length == 1:
        return np.clip(index, 0, length - 1)
    if mode == "reflect":
        period = 2 * (length - 1)
        folded = np.mod(index, period)
        return np.where(folded >= length, period - folded, folded)
    if mode == "symmetric":
        period = 2 * length
        folded = np.mod(index, period)
        return np.where(folded >= length, period - 1 - folded, folded)
    raise InputError(f"padding mode {mode!r} is not one of constant, edge, reflect, symmetric")


__all__ = ["AxisTiling", "Tile", "TilePlan", "ValidSizes", "plan_axis", "source_indices"]
