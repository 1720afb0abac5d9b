"""Tensors and axes as the rdf describes them, formats 0.3, 0.4 and 0.5, read from the raw yaml dict
(`zoo.bioimage.rdf.read_rdf`). Tensors and axes keep their original meaning: string axes of 0.3/0.4 with JDLL's
one-letter names, shapes as lists (fixed) or min/step (parameterized) or a reference with scale and offset (nulls
included: a null scale is a new axis of size 2·offset), halos, raw data types. Never raises on odd values: what it
cannot read it reports as None or "unknown"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Size:
    """One axis's size: fixed, min + n·step, a reference to an input axis, data-dependent, free or unknown."""

    kind: str  # "fixed", "parameterized", "reference", "data_dependent", "free", "unknown"
    value: int | None = None  # fixed size
    min: int | None = None
    step: int | None = None
    ref_tensor: str | None = None
    ref_axis: str | None = None  # axis id (0.5) or letter (0.4) of the referenced input axis
    scale: float = 1.0  # 0.4: the reference's factor; 0.5: the axis's own `scale`
    offset: float = 0.0  # 0.4: per side (spec: reference·scale + 2·offset); 0.5: total

    @property
    def smallest(self) -> int | None:
        return self.value if self.kind == "fixed" else self.min if self.kind == "parameterized" else None


@dataclass(frozen=True)
class AxisView:
    index: int
    letter: str | None  # JDLL's name for the axis ("b", "c", "x", ...), None when JDLL cannot name it
    axis_type: str | None  # 0.5 "type"; for 0.4 derived from the letter
    axis_id: str | None  # 0.5 "id" as written; for 0.4 the letter
    size: Size
    halo: int = 0
    scale: float = 1.0  # 0.5 axis scale
    raw: Any = None


@dataclass(frozen=True)
class TensorView:
    kind: str  # "inputs" or "outputs"
    index: int
    tensor_id: str
    axes: list[AxisView]
    raw: dict = field(repr=False)

    @property
    def location(self) -> str:
        return f"{self.kind}.{self.index}"

    @property
    def letters(self) -> str:
        return "".join(a.letter or "?" for a in self.axes)

    def axis(self, letter: str) -> AxisView | None:
        return next((a for a in self.axes if a.letter == letter), None)

    def processing(self) -> list[tuple[int, str, dict]]:
        """(index, op name, kwargs) of the pre- (inputs) or post-processing (outputs) steps."""
        steps = self.raw.get("preprocessing" if self.kind == "inputs" else "postprocessing") or []
        out = []
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            if isinstance(step, dict):
                name = step.get("id", step.get("name"))
                kwargs = step.get("kwargs") or {}
                out.append((i, str(name), kwargs if isinstance(kwargs, dict) else {}))
        return out

    @property
    def processing_key(self) -> str:
        return "preprocessing" if self.kind == "inputs" else "postprocessing"

    def data_type(self) -> str | None:
        """The declared data type: 0.5 `data.type` (float32 when absent), 0.4 `data_type`."""
        if "data_type" in self.raw:
            return str(self.raw["data_type"])
        data = self.raw.get("data")
        if isinstance(data, list) and data:
            data = data[0]
        if isinstance(data, dict):
            return str(data.get("type", "float32"))
        return "float32" if isinstance(self.raw.get("axes"), list) else None

    def channel_count(self) -> int | None:
        axis = self.axis("c")
        if axis is None:
            return 1
        if isinstance(axis.raw, dict) and isinstance(axis.raw.get("channel_names"), list):
            return len(axis.raw["channel_names"])
        return axis.size.smallest


def tensors(rdf: dict, kind: str) -> list[TensorView]:
    entries = rdf.get(kind)
    if not isinstance(entries, list):
        return []
    reference_axes = {}
    for source in (rdf.get("inputs"), entries):
        for entry in source if isinstance(source, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("axes"), str):
                reference_axes.setdefault(str(entry.get("name", entry.get("id"))), entry["axes"])
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        tensor_id = str(entry.get("id", entry.get("name", i)))
        axes = entry.get("axes")
        if isinstance(axes, str):
            views = _axes_v04(entry, axes, kind, reference_axes)
        elif isinstance(axes, list):
            views = [_axis_v05(j, axis) for j, axis in enumerate(axes)]
        else:
            views = []
        out.append(TensorView(kind, i, tensor_id, views, entry))
    return out


V04_TYPES = {"b": "batch", "c": "channel", "x": "space", "y": "space", "z": "space", "t": "time", "i": "index"}


def _axes_v04(entry: dict, axes: str, kind: str, reference_axes: dict[str, str] | None = None) -> list[AxisView]:
    """0.3/0.4 axes. A reference (`reference_tensor`, 0.3's `reference_input`) follows the referenced tensor's
    axis of the same letter (`reference_axes`: tensor name -> its axes string; a letter it lacks is a free batch
    or an unknown size). A null scale is a new axis whose size is 2·offset (spec 0.4); a null offset is 0.
    A parameterized axis with step 0 is fixed at its min, except the batch: a list shape fixes it, min/step
    leaves it free."""
    shape = entry.get("shape")
    halo = entry.get("halo") if isinstance(entry.get("halo"), list) else []
    reference = None
    if isinstance(shape, dict):
        reference = shape.get("reference_tensor", shape.get("reference_input"))
    views = []
    for j, letter in enumerate(axes):
        if isinstance(shape, list):
            value = _int(shape[j]) if j < len(shape) else None
            if value is not None and value > 0:
                size = Size("fixed", value=value)
            else:  # 0.3 wrote -1 (or null) for "any size", mostly for the batch
                size = Size("free") if letter == "b" else Size("unknown")
        elif isinstance(shape, dict) and reference is not None:
            scale = _float(_pick(shape.get("scale"), j, 1.0), None)
            offset = _float(_pick(shape.get("offset"), j, 0.0), 0.0)
            if scale is None:  # a new axis: its size is 2·offset
                value = 2 * offset
                size = Size("fixed", value=int(value)) if value.is_integer() else Size("unknown")
            else:
                ref_axes = (reference_axes or {}).get(str(reference))
                if ref_axes is not None and letter not in ref_axes:  # 0.3 axes may differ (input yxc, output byxc)
                    size = Size("free") if letter == "b" else Size("unknown")
                else:
                    size = Size("reference", ref_tensor=str(reference), ref_axis=letter, scale=scale, offset=offset)
        elif isinstance(shape, dict) and "min" in shape:
            minimum, step = _int(_pick(shape.get("min"), j, None)), _int(_pick(shape.get("step"), j, 0))
            if letter == "b":  # 0.4: "the batch dimension can always be increased" (its step must be 0)
                size = Size("free")
            elif step == 0 and minimum is not None:
                size = Size("fixed", value=minimum)
            else:
                size = Size("parameterized", min=minimum, step=step)
        else:
            size = Size("unknown")
        views.append(
            AxisView(j, letter, V04_TYPES.get(letter), letter, size, halo=_int(_pick(halo, j, 0)) or 0, raw=letter)
        )
    return views


def _axis_v05(j: int, axis: Any) -> AxisView:
    if not isinstance(axis, dict):
        return AxisView(j, None, None, None, Size("unknown"), raw=axis)
    axis_type, axis_id = axis.get("type"), axis.get("id")
    if axis_type is None:
        letter = None  # JDLL dereferences the missing type (AxisV05)
    elif axis_type == "batch":
        letter = "b"
    elif axis_id == "channel" or axis_type == "channel":
        letter = "c"
    else:
        letter = str(axis_id) if axis_id is not None else None
    raw_size = axis.get("size")
    if axis_type == "channel":
        names = axis.get("channel_names")
        size = Size("fixed", value=len(names)) if isinstance(names, list) else Size("unknown")
    elif raw_size is None:
        size = Size("free") if axis_type == "batch" else Size("unknown")
    elif isinstance(raw_size, int) and not isinstance(raw_size, bool):
        size = Size("fixed", value=raw_size)
    elif isinstance(raw_size, dict) and "tensor_id" in raw_size:
        size = Size(
            "reference",
            ref_tensor=str(raw_size["tensor_id"]),
            ref_axis=_str(raw_size.get("axis_id")),
            scale=_float(axis.get("scale"), 1.0),
            offset=_float(raw_size.get("offset"), 0.0),
        )
    elif isinstance(raw_size, dict) and "step" in raw_size:
        size = Size("parameterized", min=_int(raw_size.get("min")), step=_int(raw_size.get("step")))
    elif isinstance(raw_size, dict):
        size = Size("data_dependent", min=_int(raw_size.get("min")))
    else:
        size = Size("unknown")
    return AxisView(
        j,
        letter,
        _str(axis_type),
        _str(axis_id),
        size,
        halo=_int(axis.get("halo")) or 0,
        scale=_float(axis.get("scale"), 1.0),
        raw=axis,
    )


def _pick(values, j: int, default):
    if isinstance(values, list):
        return values[j] if j < len(values) else default
    return values if values is not None else default


def _int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value, default):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


def _str(value) -> str | None:
    return None if value is None else str(value)
