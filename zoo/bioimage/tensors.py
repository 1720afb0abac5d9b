"""Tensors as every stage sees them: axes with their kind, the sizes they take, the input axis an output axis
follows (with scale and offset), halo and channel names. Built from the faithful reading of the rdf
(`zoo.bioimage.rdf_tensors`), so formats 0.3 and 0.4 keep what bioimageio.spec's upgrade would lose (a fixed batch,
a halo on a fixed-size output, a null scale)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.bioimage.rdf_tensors import AxisView, Size, TensorView, tensors

# 0.3/0.4 axis letters -> the axis ids format 0.5 (and bioimageio.core) use
V04_AXIS_IDS = {"b": "batch", "c": "channel", "i": "index"}
V05_DEFAULT_IDS = {"batch": "batch", "channel": "channel", "index": "index", "time": "time", "space": "x"}  # spec 0.5


@dataclass(frozen=True)
class ValidSizes:
    """The sizes a model accepts along one axis: min + n·step (step 0: exactly min)."""

    min: int
    step: int = 0

    def is_valid(self, n: int) -> bool:
        if self.step == 0:
            return n == self.min
        return n >= self.min and (n - self.min) % self.step == 0

    def at_least(self, n: int) -> int | None:
        """The smallest valid size ≥ n, None when there is none (a fixed size smaller than n)."""
        if n <= self.min:
            return self.min
        if self.step == 0:
            return None
        return self.min + -(-(n - self.min) // self.step) * self.step

    def at_most(self, n: int) -> int | None:
        """The largest valid size ≤ n, None when even the minimum is larger."""
        if n < self.min:
            return None
        if self.step == 0:
            return self.min
        return self.min + (n - self.min) // self.step * self.step

    def intersect(self, other: ValidSizes) -> ValidSizes | None:
        """Sizes valid for both (inputs tiled in lock-step), None when there are none."""
        if self.step == 0 or other.step == 0:
            fixed, rest = (self, other) if self.step == 0 else (other, self)
            return fixed if rest.is_valid(fixed.min) else None
        common = math.lcm(self.step, other.step)
        candidate = self.at_least(max(self.min, other.min))
        for _ in range(common // self.step + 1):
            if other.is_valid(candidate):
                return ValidSizes(candidate, common)
            candidate += self.step
        return None

    def __str__(self) -> str:
        return str(self.min) if self.step == 0 else f"{self.min} + n·{self.step}"


@dataclass(frozen=True)
class AxisSpec:
    id: str
    kind: str  # batch | channel | space | time | index
    sizes: ValidSizes | None = None  # None: free (batch), a reference, or data dependent
    reference: tuple[str, str] | None = None  # (tensor id, axis id) this axis' size follows
    offset: int = 0
    scale: float = 1.0
    halo: int = 0
    channel_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class TensorSpec:
    id: str
    axes: tuple[AxisSpec, ...]
    pad_mode: str = "symmetric"
    pad_value: float = 0.0
    data_type: str | None = None  # as declared (0.3/0.4 inputs may be raw integers; pre-processing makes floats)

    @property
    def axis_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.axes)

    def axis(self, axis_id: str) -> AxisSpec | None:
        return next((a for a in self.axes if a.id == axis_id), None)

    def of_kind(self, *kinds: str) -> list[AxisSpec]:
        return [a for a in self.axes if a.kind in kinds]

    @property
    def channels(self) -> int | None:
        channel = self.of_kind("channel")
        return len(channel[0].channel_names) if channel else None


def tensor_specs(rdf: dict) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) of a description in any format version, read from the raw rdf."""
    inputs = [_spec(view, None) for view in tensors(rdf, "inputs")]
    by_id = {t.id: t for t in inputs}
    outputs = [_spec(view, by_id) for view in tensors(rdf, "outputs")]
    return inputs, outputs


def _spec(view: TensorView, inputs: dict[str, TensorSpec] | None) -> TensorSpec:
    v04 = isinstance(view.raw.get("axes"), str)
    axes = [_axis(a, v04, inputs, view.tensor_id) for a in view.axes]
    pad = view.raw.get("pad") if isinstance(view.raw.get("pad"), dict) else {}
    return TensorSpec(
        view.tensor_id,
        tuple(axes),
        str(pad.get("mode", "symmetric")),
        float(pad.get("value", 0) or 0),
        data_type=view.data_type(),
    )


def _axis(view: AxisView, v04: bool, inputs: dict[str, TensorSpec] | None, tensor_id: str) -> AxisSpec:
    kind = view.axis_type or "space"
    if v04:
        axis_id = V04_AXIS_IDS.get(view.letter or "", view.letter or "?")
    else:
        axis_id = view.axis_id or V05_DEFAULT_IDS.get(kind, "?")
    size, halo = view.size, view.halo
    reference, offset, scale = None, 0, view.scale if not v04 else 1.0
    sizes = _valid_sizes(size)
    if size.kind == "reference" and size.ref_tensor is not None:
        ref_axis = V04_AXIS_IDS.get(size.ref_axis or "", size.ref_axis) if v04 else size.ref_axis
        reference = (size.ref_tensor, str(ref_axis))
        if v04:  # 0.4: out = ref · scale + 2 · offset; here: out = ref · (ref scale / scale) + offset
            scale = 1.0 / size.scale if size.scale else 1.0
            offset = int(round(2 * size.offset))
        else:
            offset = int(round(size.offset))
    if kind == "batch":
        return AxisSpec(axis_id, "batch", sizes if sizes is not None and sizes.step == 0 else None)
    if kind == "channel":
        names = _channel_names(view, v04)
        if names is None:
            count = sizes.min if sizes is not None and sizes.step == 0 else _referenced_count(reference, inputs, size)
            names = tuple(f"channel{i}" for i in range(count)) if count is not None else ()
        return AxisSpec(axis_id, "channel", ValidSizes(len(names), 0) if names else None, channel_names=names)
    return AxisSpec(axis_id, kind, sizes, reference, offset, float(scale or 1.0), int(halo or 0))


def _valid_sizes(size: Size) -> ValidSizes | None:
    if size.kind == "fixed" and size.value is not None:
        return ValidSizes(int(size.value), 0)
    if size.kind == "parameterized" and size.min is not None:
        return ValidSizes(int(size.min), int(size.step or 0))
    return None


def _channel_names(view: AxisView, v04: bool) -> tuple[str, ...] | None:
    raw = view.raw if isinstance(view.raw, dict) else {}
    names = raw.get("channel_names")
    if isinstance(names, list):
        return tuple(str(n) for n in names)
    return None


def _referenced_count(reference, inputs: dict[str, TensorSpec] | None, size: Size) -> int | None:
    if reference is None or not inputs or reference[0] not in inputs:
        return None
    axis = inputs[reference[0]].axis(reference[1])
    if axis is None or axis.sizes is None or axis.sizes.step:
        return None
    count = axis.sizes.min * size.scale + 2 * size.offset
    return int(count) if float(count).is_integer() and count > 0 else None
