"""Measure the halo a model needs: the smallest overlap for which tiled prediction equals whole-image
prediction. Packages declare the measured halo, so tiling in Fiji or in `zoo predict` is exact."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

TILING_ATOL = 1e-5


@dataclass(frozen=True)
class HaloMeasurement:
    halo: int
    max_abs: float  # tiled vs whole at `halo`
    max_abs_below: float | None  # at halo - step: proof that less is not enough
    checked: list[int]


PerAxis = int | Mapping[str, int]  # one value for every spatial axis, or one per axis letter (z, y, x)


def _spatial_axes(layout: str) -> list[int]:
    return [layout.index(a) for a in "zyx" if a in layout]


def _on(value: PerAxis, letter: str) -> int:
    return value if isinstance(value, int) else value[letter]


def centre_tile_difference(
    predict: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    whole: np.ndarray,
    layout: str,
    halo: PerAxis,
    core: PerAxis,
    step: PerAxis,
    *,
    output_layout: str | None = None,
) -> float:
    """Max |tile − whole| over a `core`-sized output tile in the middle of `image` (aligned to `step`),
    predicted from a window that reads only `halo` more pixels on every side, along every spatial axis of
    `layout` (y, x and z when present). An interior tile is the hardest case: a border tile sees the image
    edge exactly as the whole image does. `halo`, `core` and `step` may differ per axis letter; the
    prediction's axes are `output_layout` when they are not in the order of `layout` (same spatial letters)."""
    output_layout = output_layout or layout
    window = [slice(None)] * image.ndim
    inner = [slice(None)] * len(output_layout)
    target = [slice(None)] * len(output_layout)
    for axis in _spatial_axes(layout):
        letter = layout[axis]
        axis_halo, axis_core, axis_step = _on(halo, letter), _on(core, letter), _on(step, letter)
        origin = (image.shape[axis] - axis_core) // 2
        origin -= origin % axis_step
        window[axis] = slice(origin - axis_halo, origin + axis_core + axis_halo)
        inner[output_layout.index(letter)] = slice(axis_halo, axis_halo + axis_core)
        target[output_layout.index(letter)] = slice(origin, origin + axis_core)
    tile = predict(np.ascontiguousarray(image[tuple(window)]))
    return float(np.abs(tile[tuple(inner)] - whole[tuple(target)]).max())


def measure_halo(
    predict: Callable[[np.ndarray], np.ndarray],
    layout: str,
    step: int,
    max_halo: int,
    atol: float = TILING_ATOL,
    seed: int = 0,
    core: PerAxis | None = None,
    channels: int = 1,
    *,
    image: np.ndarray | None = None,
    whole: np.ndarray | None = None,
    output_layout: str | None = None,
    first_halo: int | None = None,
) -> HaloMeasurement:
    """The smallest multiple of `step` up to `max_halo` for which a tile matches the whole-image prediction
    within `atol` on a random input; `max_halo` if none does. `core` (default 8·step; smaller keeps 3D
    models fast) is the side of the compared output tile.

    The validator (TIL001) passes its own `image` (a package's pre-processed input, large enough for
    `max_halo`) with its prediction `whole`, a `core` per axis letter, the prediction's `output_layout`,
    and `first_halo` to start the search above a halo already known to be too small."""
    core = core or 8 * step  # a large tile samples many output pixels per forward pass
    if image is None:
        size = core + 2 * (max_halo + 2 * step)
        shape = {"b": 1, "c": channels, "z": size, "y": size, "x": size}
        image = np.random.default_rng(seed).standard_normal(tuple(shape[a] for a in layout)).astype(np.float32)
    whole = predict(image) if whole is None else whole
    checked, previous = [], None
    for halo in range(first_halo or step, max_halo + 1, step):
        difference = centre_tile_difference(
            predict, image, whole, layout, halo, core, step, output_layout=output_layout
        )
        checked.append(halo)
        if difference <= atol:
            return HaloMeasurement(halo, difference, previous, checked)
        previous = difference
    return HaloMeasurement(max_halo, previous if previous is not None else float("nan"), None, checked)
