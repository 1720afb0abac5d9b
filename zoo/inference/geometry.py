"""The geometry that tiling needs, derived once from a model's tensor descriptions: the input axes cut into tiles,
the window sizes every input takes, the halo of context before and after each window, the alignment of tile
strides (the pooling grid), and how each output axis follows a tiled input axis; or why the model cannot be tiled."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from zoo.bioimage.tensors import AxisSpec, TensorSpec, ValidSizes

TILED_KINDS = ("space", "time")


@dataclass(frozen=True)
class OutputAxisMap:
    """How an output axis follows a tiled input axis: output index = input index · ratio, and the output is
    `offset` pixels longer (negative: shorter) than the input · ratio (bioimageio.spec's SizeReference). A window
    starting at input index s yields output from index s · ratio on: a translation-equivariant model crops (or
    pads) the same border from every window as from the whole image."""

    output_axis: str
    input_axis: str
    ratio: Fraction
    offset: int = 0

    def length(self, input_length: int) -> int:
        """The output's length for an input of `input_length` (the spec's int(size · scale ratio + offset))."""
        return int(input_length * self.ratio + self.offset)


@dataclass
class Geometry:
    """What tiling needs to know about the model, derived once from the description."""

    tiled_axes: tuple[str, ...]  # input axes cut into tiles, in the first input's order
    sizes: dict[str, ValidSizes]  # valid window sizes per tiled axis, common to all inputs
    halo: dict[str, int]  # input pixels of context before each tile, per tiled axis
    align: dict[str, int]  # tile strides are multiples of this (the pooling grid)
    output_maps: dict[str, list[OutputAxisMap]]  # output id -> its axes that follow tiled axes
    batch_fixed: bool  # the model takes exactly one batch entry
    tileable: str | None = None  # None, or why the model cannot be tiled
    halo_after: dict[str, int] = field(default_factory=dict)  # context after each tile (default: `halo`)
    non_spatial_outputs: tuple[str, ...] = ()  # outputs without spatial axes (classifiers)

    def after(self, axis: str) -> int:
        return self.halo_after.get(axis, self.halo[axis])

    @property
    def resized_outputs(self) -> bool:
        """Some output is scaled or offset relative to its input (blending needs outputs the input's size)."""
        return any(m.ratio != 1 or m.offset for maps in self.output_maps.values() for m in maps)


def derive_geometry(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> Geometry:
    """Tiled axes, valid window sizes, halo and alignment; `tileable` says why tiling is impossible, if it is."""
    first = inputs[0]
    tiled = tuple(a.id for a in first.of_kind(*TILED_KINDS))
    by_id = {t.id: t for t in inputs}
    reasons = _input_reasons(inputs, tiled)
    sizes = {axis_id: _common_sizes(inputs, axis_id, by_id, reasons) for axis_id in tiled}
    margins = _Margins.of(tiled)
    output_maps: dict[str, list[OutputAxisMap]] = {}
    non_spatial = []
    for tensor in outputs:
        maps = _output_axis_maps(tensor, tiled, by_id, margins, reasons)
        output_maps[tensor.id] = maps
        missing = [a for a in tiled if maps and a not in {m.input_axis for m in maps}]
        if missing:
            reasons.append(f"output {tensor.id} has no axis that follows input axis {', '.join(missing)}")
        if tiled and not tensor.of_kind(*TILED_KINDS, "index"):
            non_spatial.append(tensor.id)
            reasons.append(
                f"output {tensor.id} has no axis that follows the image (e.g. a classifier's classes): "
                "each image goes through the model whole"
            )
    halo = {a: _round_up(margins.before[a], margins.quantum[a]) for a in tiled}
    halo_after = {a: _round_up(margins.after[a], margins.quantum[a]) for a in tiled}
    align = {a: math.lcm(_alignment(sizes[a], halo[a] + halo_after[a]), margins.quantum[a]) for a in tiled}
    batch = first.of_kind("batch")
    return Geometry(
        tiled,
        sizes,
        halo,
        align,
        output_maps,
        batch_fixed=bool(batch and batch[0].sizes is not None),
        tileable="; ".join(dict.fromkeys(reasons)) or None,
        halo_after={a: n for a, n in halo_after.items() if n != halo[a]},
        non_spatial_outputs=tuple(non_spatial),
    )


def _input_reasons(inputs: list[TensorSpec], tiled: tuple[str, ...]) -> list[str]:
    """Why the inputs cannot be tiled together: different spatial axes, an index axis."""
    first = inputs[0]
    reasons = []
    for tensor in inputs[1:]:
        if tuple(a.id for a in tensor.of_kind(*TILED_KINDS)) != tiled:
            reasons.append(f"inputs {first.id} and {tensor.id} have different spatial axes")
    if any(t.of_kind("index") for t in inputs):
        reasons.append("an input has an index axis")
    return reasons


def _common_sizes(
    inputs: list[TensorSpec], axis_id: str, by_id: dict[str, TensorSpec], reasons: list[str]
) -> ValidSizes:
    """The window sizes every input takes along `axis_id` (a reason is added when there are none)."""
    common: ValidSizes | None = None
    for tensor in inputs:
        axis = tensor.axis(axis_id)
        if axis is None:
            continue
        own = _resolve_sizes(axis, by_id)
        if own is None:
            continue
        common = own if common is None else common.intersect(own)
        if common is None:
            reasons.append(f"the inputs take no common size along {axis_id}")
            break
    return common or ValidSizes(1, 1)


@dataclass
class _Margins:
    """Per tiled input axis: context needed before and after a window, and the input pixels that make whole output
    pixels on every output (`quantum`)."""

    before: dict[str, int]
    after: dict[str, int]
    quantum: dict[str, int]

    @classmethod
    def of(cls, tiled: tuple[str, ...]) -> _Margins:
        return cls(dict.fromkeys(tiled, 0), dict.fromkeys(tiled, 0), dict.fromkeys(tiled, 1))

    def widen(self, input_axis: str, axis: AxisSpec, ratio: Fraction) -> None:
        """A window [s, s + w) yields output [s·r, (s + w)·r + offset), of which `halo` is unreliable at each end."""
        self.before[input_axis] = max(self.before[input_axis], math_ceil(Fraction(axis.halo) / ratio))
        after = math_ceil(Fraction(axis.halo - min(axis.offset, 0)) / ratio)
        self.after[input_axis] = max(self.after[input_axis], after)
        self.quantum[input_axis] = math.lcm(self.quantum[input_axis], ratio.denominator)


def _output_axis_maps(
    tensor: TensorSpec,
    tiled: tuple[str, ...],
    by_id: dict[str, TensorSpec],
    margins: _Margins,
    reasons: list[str],
) -> list[OutputAxisMap]:
    """How the output's spatial axes follow the tiled input axes; widens `margins` by their halos and offsets, and
    adds a reason for each axis that follows none."""
    maps = []
    for axis in tensor.axes:
        if axis.kind in ("batch", "channel"):
            continue
        if axis.kind == "index":
            reasons.append(f"output {tensor.id} has an index axis ({axis.id}) whose size the data decides")
            continue
        if axis.reference is None or axis.reference[0] not in by_id or axis.reference[1] not in tiled:
            reasons.append(f"output {tensor.id} axis {axis.id} does not follow an input's spatial axis")
            continue
        reference = by_id[axis.reference[0]].axis(axis.reference[1])
        ratio = Fraction(reference.scale).limit_denominator(1000) / Fraction(axis.scale).limit_denominator(1000)
        input_axis = axis.reference[1]
        maps.append(OutputAxisMap(axis.id, input_axis, ratio, axis.offset))
        margins.widen(input_axis, axis, ratio)
    return maps


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def math_ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


def _resolve_sizes(axis: AxisSpec, inputs: dict[str, TensorSpec], depth: int = 0) -> ValidSizes | None:
    if axis.sizes is not None or axis.reference is None or depth > 8:
        return axis.sizes
    tensor = inputs.get(axis.reference[0])
    target = tensor.axis(axis.reference[1]) if tensor else None
    return _resolve_sizes(target, inputs, depth + 1) if target is not None else None


def _alignment(sizes: ValidSizes, context: int) -> int:
    """Tile strides are multiples of this: the size step (a U-Net's pooling factor), or for fixed sizes the
    largest power of two up to 64 that leaves room for the halo (`context`: before and after together)."""
    if sizes.step:
        return sizes.step
    room = sizes.min - context
    power = 64
    while power > 1 and room < power:
        power //= 2
    return power
