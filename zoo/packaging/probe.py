"""Probe a model someone else made by running it: which axes its input has, which spatial sizes it accepts, how its
output's size follows the input's, whether images in a batch stay independent, and the halo tiles need.

Everything here works through one `predict` callable (a float32 array in the model's axis order, batch first, in;
one array out), so it knows no framework. The stages, in order: axes, sizes, batch, output, halo."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from zoo.bioimage.halo import TILING_ATOL, HaloMeasurement, measure_halo
from zoo.errors import InputError
from zoo.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)

LAYOUTS = ("bcyx", "byxc", "bczyx", "bzyxc")  # the model input layouts a probe can find or be told
FIRST_SIZES = {2: (64, 32, 128, 16, 48, 96), 3: (16, 32, 8, 24)}  # tried (as squares, cubes) to find one that runs
LARGE_SIZES = {2: (256, 224, 512), 3: (64,)}  # ...after the sample's own size
SWEEP = {2: 128, 3: 48}  # every size 1..SWEEP is tried along one axis; more while fewer than MIN_FOUND work
MIN_FOUND = 3
BATCH_ATOL = 1e-4  # outputs of one image alone and within a batch of two must agree this well
HALO_ATOL = TILING_ATOL / 10  # as for zoo's own models: runtimes' float noise must not push a tile over the limit
STAGES = ("axes", "sizes", "batch", "output", "halo")


class ProbeError(InputError):
    """The model cannot be probed on this sample: no reading of its axes runs, two readings run, or it is not
    deterministic."""


@dataclass(frozen=True)
class Probe:
    """What running a model showed. Sizes are per spatial axis and the same for every spatial axis: `min_size` +
    n·`step` (step 0: exactly `min_size`). `relation` says how an output axis follows the input axis: "same",
    "scaled" (out = in·`scale`), "offset" (out = in + `offset`) or "none" (no spatial output: a classifier).
    `halo` is in input pixels; None when it does not apply or could not be measured (`halo_reason` says why)."""

    layout: str  # the model's input axes, batch first: bcyx, byxc, bczyx, bzyxc
    sample_axes: str  # how the sample was read: yx, cyx, yxc, zyx, czyx, zyxc
    channels: int
    spatial: str  # "yx" or "zyx"
    min_size: int
    step: int
    output_layout: str  # the input's layout, or without c, or "bc"
    output_channels: int
    output_dtype: str
    relation: str
    scale: float
    offset: int
    output_range: tuple[float, float]
    probability_like: bool
    batch_independent: bool  # False: a batch of two does not run, the model takes one image at a time
    halo: int | None
    halo_measurement: HaloMeasurement | None
    halo_reason: str
    tile_min_size: int
    calls: int
    seconds: float
    notes: tuple[str, ...]

    @property
    def sizes_text(self) -> str:
        return f"exactly {self.min_size}" if self.step == 0 else f"{self.min_size} + n·{self.step}"

    def valid(self, size: int) -> bool:
        return self.largest_valid(size) == size

    def largest_valid(self, size: int) -> int | None:
        """The largest valid size ≤ `size`, or None when `size` is below the minimum."""
        return _largest_valid(size, self.min_size, self.step)

    def model_input(self, sample: np.ndarray) -> np.ndarray:
        """`sample` (axes `sample_axes`) as a float32 batch of one in the model's layout."""
        return _to_layout(sample, self.sample_axes, self.layout)

    def rows(self) -> list[tuple[str, str]]:
        """(what, found) pairs for a table."""
        low, high = self.output_range
        size = {
            "same": "the input's",
            "scaled": f"input × {self.scale:g}",
            "offset": f"input {self.offset:+d}",
            "none": "no spatial axes",
        }[self.relation]
        if self.halo is not None and self.halo_measurement is not None:
            halo = f"{self.halo} px (measured: tiled vs whole {self.halo_measurement.max_abs:.1g})"
        else:
            halo = f"none: {self.halo_reason}"
        return [
            ("input axes", self.layout),
            ("sample axes", self.sample_axes),
            ("input channels", str(self.channels)),
            ("valid sizes", self.sizes_text),
            ("output axes", self.output_layout),
            ("output channels", str(self.output_channels)),
            ("output size", size),
            ("output dtype", self.output_dtype),
            ("output range", f"{low:.3g} … {high:.3g}" + (" (probability-like)" if self.probability_like else "")),
            ("batch", "images independent" if self.batch_independent else "one image at a time"),
            ("halo", halo),
            ("smallest tile", str(self.tile_min_size)),
            ("model runs", f"{self.calls} in {self.seconds:.1f} s"),
        ]


def sizes_that_work(probe: Probe, near: int) -> list[int]:
    """The valid sizes next to `near` (itself when valid): [96, 112] near 100 for 16 + n·16."""
    return _near(near, probe.min_size, probe.step)


def _largest_valid(size: int, min_size: int, step: int) -> int | None:
    if size < min_size:
        return None
    return min_size if step == 0 else size - (size - min_size) % step


def _smallest_valid(size: int, min_size: int, step: int) -> int:
    """The smallest valid size ≥ `size` (the only one, for a fixed size)."""
    if size <= min_size or step == 0:
        return min_size
    return min_size + step * math.ceil((size - min_size) / step)


def _near(size: int, min_size: int, step: int) -> list[int]:
    below = _largest_valid(size, min_size, step)
    return sorted({s for s in (below, _smallest_valid(size, min_size, step)) if s is not None})


# --- readings of the sample ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    sample_axes: str
    layout: str
    channels: int

    @property
    def spatial(self) -> str:
        return "".join(a for a in self.layout if a in "zyx")

    @property
    def meaning(self) -> str:
        dims = f"{len(self.spatial)}D"
        return f"{dims}, {self.channels} channels" if "c" in self.sample_axes else f"{dims}, one channel"

    def sample_sizes(self, sample: np.ndarray) -> tuple[int, ...]:
        return tuple(sample.shape[self.sample_axes.index(a)] for a in self.spatial)

    def model_input(self, sample: np.ndarray) -> np.ndarray:
        return _to_layout(sample, self.sample_axes, self.layout)

    def noise(self, rng: np.random.Generator, sizes: tuple[int, ...], batch: int = 1) -> np.ndarray:
        shape = {"b": batch, "c": self.channels, **dict(zip(self.spatial, sizes))}
        return rng.standard_normal(tuple(shape[a] for a in self.layout)).astype(np.float32)


def _to_layout(sample: np.ndarray, sample_axes: str, layout: str) -> np.ndarray:
    if "c" not in sample_axes:
        sample, sample_axes = sample[..., None], sample_axes + "c"
    order = [sample_axes.index(a) for a in layout[1:]]
    return np.ascontiguousarray(np.transpose(sample, order)[None], dtype=np.float32)


def _readings(shape: tuple[int, ...], layout: str | None, channels_last: bool | None) -> list[_Reading]:
    """The readings of a sample of `shape` to try, the likeliest first."""
    if layout is not None:
        if layout not in LAYOUTS:
            raise ProbeError(
                f"input axes {layout!r}: not an axis order zoo can probe; state one of {', '.join(LAYOUTS)}"
            )
        spatial = "".join(a for a in layout if a in "zyx")
        if len(shape) == len(spatial):
            return [_Reading(spatial, layout, 1)]
        if len(shape) != len(spatial) + 1:
            raise ProbeError(
                f"the sample has shape {shape}, the input axes {layout} take {len(spatial)} spatial axes with or "
                f"without channels: give a {len(spatial)}D image or state other axes"
            )
        first, last = _Reading("c" + spatial, layout, shape[0]), _Reading(spatial + "c", layout, shape[-1])
        return [first, last] if layout.index("c") == 1 else [last, first]
    meanings = {2: ["yx"], 3: ["cyx", "yxc", "zyx"], 4: ["czyx", "zyxc"]}.get(len(shape))
    if meanings is None:
        raise ProbeError(f"the sample has shape {shape}: give a 2D or 3D image, with or without a channel axis")
    positions = {False: ["first"], True: ["last"], None: ["first", "last"]}[channels_last]
    readings = []
    for axes in meanings:
        spatial = axes.replace("c", "")
        channels = shape[axes.index("c")] if "c" in axes else 1
        for position in positions:
            readings.append(_Reading(axes, f"bc{spatial}" if position == "first" else f"b{spatial}c", channels))
    return readings


# --- running the model --------------------------------------------------------------------------------------------


class _Runs:
    """`predict`, counted; `attempt` returns the failure instead of raising it."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray]) -> None:
        self._predict = predict
        self.calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.asarray(self._predict(x))

    def attempt(self, x: np.ndarray) -> np.ndarray | Exception:
        try:
            return self(x)
        except InputError:  # about the model itself (several outputs), whatever the size or reading
            raise
        except Exception as e:  # whatever the model raises, the size or reading does not work
            return e


def _first_line(failure: np.ndarray | Exception) -> str:
    if isinstance(failure, np.ndarray):
        return f"an output of shape {failure.shape}, not an image or a vector of classes"
    lines = str(failure).strip().splitlines() or [""]
    # TorchScript's interpreter puts its traceback first and the error the model raised last
    line = (lines[-1] if "TorchScript interpreter" in lines[0] else lines[0])[:200]
    return f"{type(failure).__name__}: {line}" if line else type(failure).__name__


def _output_layout(ndim: int, layout: str) -> str | None:
    if ndim == len(layout):
        return layout
    if ndim == len(layout) - 1:
        return layout.replace("c", "")
    return "bc" if ndim == 2 else None


def _runs_as(out: np.ndarray | Exception, layout: str, batch: int) -> bool:
    return (
        isinstance(out, np.ndarray)
        and _output_layout(out.ndim, layout) is not None
        and out.shape[0] == batch
        and np.issubdtype(out.dtype, np.number)
    )


def _cube(size: int, dims: int) -> tuple[int, ...]:
    return (size,) * dims


@dataclass(frozen=True)
class _Found:
    reading: _Reading
    sizes: tuple[int, ...]  # spatial sizes it ran at
    output: np.ndarray
    at_chosen_size: bool  # ran at a size of zoo's choice (a square, a cube), not only at the sample's own size


def _find_axes(
    runs: _Runs, sample: np.ndarray, readings: list[_Reading], stated: bool, rng, max_size: int, notes: list[str]
) -> _Found:
    """The reading the model runs on, a size it runs at (small ones first) and its output there. Where readings
    of different meaning run, those that run at sizes of zoo's choice and then those that run a batch of two are
    preferred; a tie left is the user's to settle (unless the axes were stated: then the first reading wins)."""
    found, failures = [], {}
    for large in (False, True):  # large sizes only when no reading runs at small ones or the sample's own
        for reading in readings:
            dims = len(reading.spatial)
            own = reading.sample_sizes(sample)
            cubes = [_cube(s, dims) for s in (LARGE_SIZES if large else FIRST_SIZES)[dims]]
            tries = [t for t in (cubes if large else [*cubes, own]) if max(t) <= max_size and (t != own or not large)]
            for sizes in list(dict.fromkeys(tries)):
                noise = sizes != own
                out = runs.attempt(reading.noise(rng, sizes) if noise else reading.model_input(sample))
                if _runs_as(out, reading.layout, 1):
                    found.append(_Found(reading, sizes, out, sizes in cubes))
                    break
                if not noise or reading not in failures:
                    failures[reading] = out
        if found:
            break
    if not found:
        tried = ", ".join(f"{r.sample_axes} as {r.layout}" for r in readings)
        raise ProbeError(
            f"the model runs on no reading of the sample of shape {sample.shape} (tried {tried}); on "
            f"{readings[0].sample_axes} it gave {_first_line(failures[readings[0]])}: check the model's input "
            "channels and state its input axes (e.g. --axes cyx)"
        )

    def meanings(candidates: list[_Found]) -> list[str]:
        return list(dict.fromkeys(f.reading.sample_axes for f in candidates))

    preferences = [
        ("ran only at the sample's own size", lambda f: f.at_chosen_size),
        (
            "ran only a batch of one",
            lambda f: _runs_as(runs.attempt(f.reading.noise(rng, f.sizes, 2)), f.reading.layout, 2),
        ),
    ]
    for why, prefer in preferences:
        if stated or len(meanings(found)) == 1:
            break
        kept = [f for f in found if prefer(f)]
        if kept and len(meanings(kept)) < len(meanings(found)):
            dropped = [m for m in meanings(found) if m not in meanings(kept)]
            notes.append(f"read the sample as {kept[0].reading.sample_axes}, not {', '.join(dropped)}: the model {why}")
            found = kept
    if len(meanings(found)) > 1 and not stated:
        readings_text = " or ".join(
            f"{axes} ({next(f.reading.meaning for f in found if f.reading.sample_axes == axes)})"
            for axes in meanings(found)
        )
        raise ProbeError(
            f"the sample of shape {sample.shape} can be read as {readings_text} and the model runs on each: pass "
            f"--axes (e.g. {' or '.join(f'--axes {axes}' for axes in meanings(found))})"
        )
    chosen = found[0]
    if len(found) > 1:
        others = ", ".join(f"{f.reading.sample_axes} as {f.reading.layout}" for f in found[1:])
        notes.append(f"the model also runs on {others}; took {chosen.reading.sample_axes} as {chosen.reading.layout}")
    return chosen


# --- valid sizes and the output relation --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Relation:
    kind: str
    scale: Fraction = Fraction(1)
    offset: int = 0

    def out(self, size: int) -> int | None:
        value = size * self.scale + self.offset
        return int(value) if value.denominator == 1 else None


_PREFERENCE = ("same", "scaled", "offset", "none")


def _relation_of(results: dict[int, np.ndarray | Exception], axis: str, layout: str) -> _Relation | None:
    """The relation most of the sizes that ran follow along `axis` (ties: same, then scaled, then offset)."""
    votes: Counter[_Relation] = Counter()
    for size, out in results.items():
        if not _runs_as(out, layout, 1):
            continue
        output_layout = _output_layout(out.ndim, layout)
        if axis not in output_layout:
            votes[_Relation("none")] += 1
            continue
        got = out.shape[output_layout.index(axis)]
        if got == size:
            votes[_Relation("same")] += 1
        elif got > 0:
            votes[_Relation("scaled", Fraction(got, size))] += 1
            votes[_Relation("offset", offset=got - size)] += 1
    return max(votes, key=lambda r: (votes[r], -_PREFERENCE.index(r.kind))) if votes else None


def _fits(
    out: np.ndarray | Exception, sizes: dict[str, int], relation: _Relation, reference: np.ndarray, layout: str
) -> bool:
    """The model ran and its output has the reference's axes and channels, and follows `relation` on every axis."""
    if not isinstance(out, np.ndarray) or out.ndim != reference.ndim or out.shape[0] != sizes.get("b", 1):
        return False
    output_layout = _output_layout(out.ndim, layout)
    for position, letter in enumerate(output_layout):
        if letter == "b":
            continue
        expected = reference.shape[position] if letter == "c" else relation.out(sizes[letter])
        if out.shape[position] != expected:
            return False
    return True


def _pattern(works: list[int], upper: int, notes: list[str], axis: str) -> tuple[int, int]:
    """(min, step) of the sizes in 1..upper that work: min + n·step, all of them within the range (a first size
    after which some fail is not a minimum: the minimum moves up to where the pattern holds)."""
    if len(works) == 1:
        return works[0], 0
    step = math.gcd(*(s - works[0] for s in works[1:]))
    working = set(works)
    start = next(m for m in works if all(s in working for s in range(m, upper + 1, step)))
    if start != works[0]:
        skipped = [s for s in works if s < start]
        failing = [s for s in range(works[0], start, step) if s not in working][:5]
        notes.append(
            f"along {axis} sizes {', '.join(map(str, skipped[:5]))} run but {', '.join(map(str, failing))} do not: "
            f"taking {start} + n·{step}"
        )
    if start == works[-1]:
        return start, 0
    return start, step


def _sweep(runs: _Runs, reading: _Reading, base: tuple[int, ...], axis: str, sizes: range, rng) -> dict:
    results = {}
    for size in sizes:
        shape = dict(zip(reading.spatial, base)) | {axis: size}
        results[size] = runs.attempt(reading.noise(rng, tuple(shape[a] for a in reading.spatial)))
    return results


def _axis_sizes(
    runs: _Runs, reading: _Reading, base: tuple[int, ...], reference: np.ndarray, axis: str, upper: int, top: int, rng
) -> tuple[list[int], _Relation, int, dict]:
    """Sizes along `axis` that work (1..upper, widened up to `top` while fewer than MIN_FOUND do), the relation."""
    results = _sweep(runs, reading, base, axis, range(1, upper + 1), rng)
    while True:
        relation = _relation_of(results, axis, reading.layout)
        fixed = dict(zip(reading.spatial, base))
        works = [
            s
            for s, out in results.items()
            if relation is not None and _fits(out, fixed | {axis: s}, relation, reference, reading.layout)
        ]
        if len(works) >= MIN_FOUND or upper >= top:
            return works, relation, upper, results
        results |= _sweep(runs, reading, base, axis, range(upper + 1, min(2 * upper, top) + 1), rng)
        upper = min(2 * upper, top)


def _find_sizes(
    runs: _Runs, reading: _Reading, base: tuple[int, ...], reference: np.ndarray, max_size: int, rng, notes
) -> tuple[int, int, _Relation]:
    dims = len(reading.spatial)
    top = max_size if dims == 2 else max_size // 4
    axis = reading.spatial[-1]
    works, relation, upper, results = _axis_sizes(runs, reading, base, reference, axis, SWEEP[dims], top, rng)
    if not works:
        raise ProbeError(f"the model ran at {'x'.join(map(str, base))} but on no size 1..{upper} along {axis}")
    misfits = [s for s, out in results.items() if isinstance(out, np.ndarray) and s not in works]
    if misfits:
        example = results[misfits[0]]
        notes.append(
            f"along {axis} sizes {', '.join(map(str, misfits[:5]))}{' …' if len(misfits) > 5 else ''} run but give an "
            f"output of another size (e.g. {misfits[0]} → {example.shape}): not valid"
        )
    min_size, step = _pattern(works, upper, notes, axis)

    def cube_fits(size: int) -> bool:
        sizes = dict.fromkeys(reading.spatial, size)
        return _fits(runs.attempt(reading.noise(rng, _cube(size, dims))), sizes, relation, reference, reading.layout)

    def failing_cubes() -> list[int]:
        checks = [min_size] if step == 0 else [min_size + k * step for k in (0, 1, 2, 5)]
        return [s for s in checks if s <= top and not cube_fits(s)]

    failing = failing_cubes()
    if failing:  # another axis follows another rule: intersect every axis' sizes
        every = set(works)
        for other in reading.spatial[:-1]:
            found, _, _, _ = _axis_sizes(runs, reading, base, reference, other, upper, upper, rng)
            every &= set(found)
        if not every:
            raise ProbeError(f"no size in 1..{upper} works along every axis ({reading.spatial}) of the model's input")
        min_size, step = _pattern(sorted(every), upper, notes, "every axis")
        failing = failing_cubes()
        notes.append(f"sizes differ between axes; {min_size} + n·{step} works along each")
    if failing:
        notes.append(f"the model fails on {', '.join(map(str, failing))} along every axis together")
    if step > 1 and cube_fits(min_size + step // 2):
        notes.append(f"size {min_size + step // 2} works along every axis together, though not along {axis} alone")
    return min_size, step, relation


# --- batch, output and halo ----------------------------------------------------------------------------------------

_EVAL = "call model.eval() before saving it (dropout or batch statistics are still on)"


def _check_batch(runs: _Runs, reading: _Reading, sizes: tuple[int, ...], rng, notes: list[str]) -> bool:
    pair = reading.noise(rng, sizes, batch=2)
    together = runs.attempt(pair)
    first, second, again = runs.attempt(pair[:1]), runs.attempt(pair[1:]), runs.attempt(pair[:1])
    for out in (first, second, again):
        if not _runs_as(out, reading.layout, 1):
            raise ProbeError(f"the model fails on noise of shape {pair[:1].shape}: {_first_line(out)}")
    repeat = float(np.abs(first - again).max())
    if repeat > BATCH_ATOL:
        raise ProbeError(f"the model gives different outputs for the same input (max |Δ| {repeat:.3g}): {_EVAL}")
    if not _runs_as(together, reading.layout, 2):
        notes.append(f"a batch of two does not run ({_first_line(together)}): the model takes one image at a time")
        return False
    apart = float(max(np.abs(together[:1] - first).max(), np.abs(together[1:] - second).max()))
    if apart > BATCH_ATOL:
        raise ProbeError(
            f"the model's output for one image depends on the others in its batch (max |Δ| {apart:.3g}): {_EVAL}"
        )
    return True


def _fit_to(image: np.ndarray, layout: str, sizes: dict[str, int]) -> np.ndarray:
    """`image` (a batch in `layout`) cropped at its centre or mirrored outwards to `sizes` along its spatial axes."""
    pads = [(0, 0)] * image.ndim
    for letter, size in sizes.items():
        missing = max(0, size - image.shape[layout.index(letter)])
        pads[layout.index(letter)] = (missing // 2, missing - missing // 2)
    padded = np.pad(image, pads, mode="symmetric")
    window = [slice(None)] * image.ndim
    for letter, size in sizes.items():
        start = (padded.shape[layout.index(letter)] - size) // 2
        window[layout.index(letter)] = slice(start, start + size)
    return np.ascontiguousarray(padded[tuple(window)], dtype=np.float32)


def _mapped_tile_difference(
    predict,
    image: np.ndarray,
    whole: np.ndarray,
    layout: str,
    output_layout: str,
    relation: _Relation,
    halo: int,
    core: int,
    align: int,
) -> float | None:
    """Max |tile − whole| over a `core`-sized tile in the middle of `image`, predicted from a window with `halo` more
    input pixels on every side, the output windows mapped by `relation` (scaled or offset); None where a window
    does not map to whole output pixels."""
    window = [slice(None)] * image.ndim
    inner = [slice(None)] * whole.ndim
    target = [slice(None)] * whole.ndim
    for letter in "zyx":
        if letter not in layout:
            continue
        axis = layout.index(letter)
        origin = (image.shape[axis] - core) // 2
        origin -= origin % align
        window[axis] = slice(origin - halo, origin + core + halo - relation.offset)
        if relation.kind == "offset":
            inner_from, inner_to, target_from, target_to = halo, halo + core, origin, origin + core
        else:
            values = [v * relation.scale for v in (halo, halo + core, origin, origin + core)]
            if any(v.denominator != 1 for v in values):
                return None
            inner_from, inner_to, target_from, target_to = (int(v) for v in values)
        out_axis = output_layout.index(letter)
        inner[out_axis] = slice(inner_from, inner_to)
        target[out_axis] = slice(target_from, target_to)
    tile = predict(np.ascontiguousarray(image[tuple(window)]))
    return float(np.abs(tile[tuple(inner)] - whole[tuple(target)]).max())


def _measure_mapped_halo(
    predict, image, layout, output_layout, relation, step, bound, core, atol: float = HALO_ATOL
) -> HaloMeasurement | None:
    """Like measure_halo for outputs whose size is scaled or offset from the input's, searching from halo 0."""
    whole = predict(image)
    checked, previous = [], None
    for halo in range(0, bound + 1, step):
        difference = _mapped_tile_difference(predict, image, whole, layout, output_layout, relation, halo, core, step)
        if difference is None:
            return None
        checked.append(halo)
        if difference <= atol:
            return HaloMeasurement(halo, difference, previous, checked)
        previous = difference
    return HaloMeasurement(bound, previous if previous is not None else float("nan"), None, checked)


def _measure(
    runs: _Runs,
    reading: _Reading,
    sample_input: np.ndarray,
    min_size: int,
    step: int,
    relation: _Relation,
    output_layout: str,
) -> tuple[HaloMeasurement | None, str]:
    """The halo measured on noise and on the sample mirrored to size (the larger), or None and why."""
    if relation.kind == "none":
        return None, "no spatial output: tiling does not apply"
    if step == 0:
        return None, f"the model takes exactly {min_size} px: tiles cannot overlap"
    dims = len(reading.spatial)
    align = step if relation.kind != "scaled" else math.lcm(step, relation.scale.denominator)
    bound = align * math.ceil(max(8 * align, 32) / align)
    # the compared tile: a valid size itself (offset: its input window is), and wide enough for the minimum
    core = (8 if dims == 2 else 4) * align
    core += (min_size - core + relation.offset) % step
    while core - relation.offset < min_size:
        core += align
    size = core + 2 * (bound + 2 * align) - relation.offset
    noise = reading.noise(np.random.default_rng(0), _cube(size, dims))
    content = _fit_to(sample_input, reading.layout, dict.fromkeys(reading.spatial, size))
    measurements, over = [], []
    for image in (noise, content):
        try:
            # float32 noise grows with the output's magnitude (an unnormalised input gives outputs in the 1000s)
            atol = HALO_ATOL * max(1.0, float(np.abs(runs(image)).max()))
            if relation.kind == "same":
                found = measure_halo(
                    runs, reading.layout, step, bound, atol, core=core, image=image, output_layout=output_layout
                )
            else:
                found = _measure_mapped_halo(
                    runs, image, reading.layout, output_layout, relation, align, bound, core, atol
                )
        except Exception as e:  # e.g. out of memory at the largest window
            return None, f"measuring it failed at {size} px: {_first_line(e)}"
        if found is None:
            return None, f"output windows of a model scaling by {relation.scale} do not fall on whole pixels"
        measurements.append(found)
        over.append(not found.max_abs <= atol)
    measurement = max(measurements, key=lambda m: m.halo)
    worst = max(m.max_abs for m in measurements)
    if any(over):
        return measurement, (
            f"tiles differ from the whole image by {worst:.2g} even with a halo of {bound} px: the model is not "
            "local (it may normalise over the whole image); predict whole images"
        )
    return measurement, ""


# --- the probe ----------------------------------------------------------------------------------------------------


def probe_model(
    predict: Callable[[np.ndarray], np.ndarray],
    sample: np.ndarray,
    *,
    layout: str | None = None,
    channels_last: bool | None = False,
    max_size: int = 512,
    progress: Progress | None = None,
) -> Probe:
    """Run `predict` on readings of `sample` and on random inputs of many sizes, and report what it accepts and
    gives (see Probe). `layout`: the model's input axes when the user states them; else the readings of the
    sample's shape are tried, with the model's channels first, last (`channels_last`) or both (None). `max_size`
    bounds the sizes tried (a quarter of it for 3D). A sample whose own size is not valid is recorded in `notes`,
    not refused: crop it with `Probe.largest_valid`."""
    progress = progress or SilentProgress()
    started = time.perf_counter()
    runs, rng, notes = _Runs(predict), np.random.default_rng(0), []
    sample = np.asarray(sample, dtype=np.float32)
    progress.start("probing the model", len(STAGES))
    try:
        readings = _readings(sample.shape, layout.lower() if layout else None, channels_last)
        found = _find_axes(runs, sample, readings, layout is not None, rng, max_size, notes)
        reading, base, reference = found.reading, found.sizes, found.output
        progress.advance(1, stage="axes")

        min_size, step, relation = _find_sizes(runs, reading, base, reference, max_size, rng, notes)
        progress.advance(1, stage="sizes")

        dims = len(reading.spatial)
        batch_independent = _check_batch(
            runs, reading, _cube(_smallest_valid(32 if dims == 2 else 16, min_size, step), dims), rng, notes
        )
        progress.advance(1, stage="batch")

        own = dict(zip(reading.spatial, reading.sample_sizes(sample)))
        fitted = {a: _largest_valid(s, min_size, step) or min_size for a, s in own.items()}
        _note_sample_size(own, fitted, min_size, step, notes)
        sample_input = _fit_to(_to_layout(sample, reading.sample_axes, reading.layout), reading.layout, fitted)
        output = runs.attempt(sample_input)
        if not _runs_as(output, reading.layout, 1):
            raise ProbeError(f"the model fails on the sample fitted to {sample_input.shape}: {_first_line(output)}")
        output_layout = _output_layout(output.ndim, reading.layout)
        finite = output[np.isfinite(output)]
        if finite.size < output.size:
            raise ProbeError(
                f"the model gives NaN or Inf on the sample ({output.size - finite.size} of {output.size} output "
                "values): no package can reproduce such an output; check the sample's values and --preprocessing "
                "(a model trained on normalised images may need zero_mean_unit_variance)"
            )
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
        progress.advance(1, stage="output")

        measurement, reason = _measure(runs, reading, sample_input, min_size, step, relation, output_layout)
        halo = measurement.halo if measurement is not None and not reason else None
        progress.advance(1, stage="halo")
    finally:
        progress.finish()
    tile_min = min_size
    if halo is not None:
        tile_min = _smallest_valid(2 * halo + step, min_size, step)
    probe = Probe(
        layout=reading.layout,
        sample_axes=reading.sample_axes,
        channels=reading.channels,
        spatial=reading.spatial,
        min_size=min_size,
        step=step,
        output_layout=output_layout,
        output_channels=output.shape[output_layout.index("c")] if "c" in output_layout else 1,
        output_dtype=str(output.dtype),
        relation=relation.kind,
        scale=float(relation.scale),
        offset=relation.offset,
        output_range=(low, high),
        probability_like=bool(finite.size) and low >= 0.0 and high <= 1.0,
        batch_independent=batch_independent,
        halo=halo,
        halo_measurement=measurement,
        halo_reason=reason,
        tile_min_size=tile_min,
        calls=runs.calls,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )
    logger.info("probed the model: %s", "; ".join(f"{what} {value}" for what, value in probe.rows()))
    return probe


def _note_sample_size(own: dict[str, int], fitted: dict[str, int], min_size: int, step: int, notes: list[str]) -> None:
    if own == fitted:
        return
    pattern = f"exactly {min_size}" if step == 0 else f"{min_size} + n·{step}"
    invalid = dict.fromkeys(size for axis, size in own.items() if size != fitted[axis])
    near = "; ".join(", ".join(map(str, _near(size, min_size, step))) for size in invalid)
    notes.append(
        f"the model fails on the sample's size {'x'.join(map(str, own.values()))}; sizes that work near it: {near} "
        f"({pattern}); probed on the sample fitted to {'x'.join(map(str, fitted.values()))}"
    )
