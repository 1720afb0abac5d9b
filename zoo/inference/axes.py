"""Mapping an image's axes onto a model input's axes: a 2D image becomes (batch 1, channel 1, y, x), a stack
becomes the batch or z as the model says, RGB samples become channels, and whatever cannot match is named."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zoo.bioimage.tensors import AxisSpec, TensorSpec
from zoo.errors import ImageError
from zoo.inference.image_io import ImageSource

KNOWN_LETTERS = "BTZCSYXQ"
STACK_LETTERS = "QTZ"  # image axes that may become the model's batch


@dataclass
class AxisMapping:
    """Where each model axis of one input comes from: an image dimension, or None for an inserted size 1."""

    image_axes: str
    model_axes: tuple[str, ...]
    source: dict[str, int | None]
    letters: dict[str, str]  # model axis -> image letter, for writing outputs in the image's terms

    def describe(self) -> str:
        return f"{self.image_axes} -> ({', '.join(self.model_axes)})"


def infer_axes(shape: tuple[int, ...], spec: TensorSpec) -> str | None:
    """Axes of an array whose file does not say (.npy, plain Zarr), when the guess is safe."""
    ndim = len(shape)
    if ndim == len(spec.axes):
        return "".join(_model_letter(a.id, a.kind) for a in spec.axes)
    has_z = spec.axis("z") is not None
    channels = spec.channels or 1
    if ndim == 2:
        return "YX"
    if ndim == 3:
        if has_z:
            return "ZYX"
        if shape[-1] in (3, 4) and shape[0] > 4:
            return "YXS"
        if channels > 1 and shape[0] == channels:
            return "CYX"
        return "QYX"
    if ndim == 4 and has_z and channels > 1 and shape[0] == channels:
        return "CZYX"
    return None


def _model_letter(axis_id: str, kind: str) -> str:
    if kind == "batch":
        return "B"
    if kind == "channel":
        return "C"
    if kind == "time":
        return "T"
    return axis_id[0].upper() if axis_id and axis_id[0].upper() in "ZYX" else "Q"


def map_axes(image: ImageSource, spec: TensorSpec, axes: str | None = None) -> AxisMapping:
    shape = image.shape
    letters = _checked_letters(image.path.name, shape, spec, axes or image.axes or infer_axes(shape, spec) or "")
    picking = _Picking(image.path.name, letters, shape)
    for axis in spec.axes:
        if axis.kind in ("space", "time"):
            _take_spatial(picking, spec, axis)
    _take_channel(picking, spec)
    leftovers = _take_batch(picking, spec)
    if leftovers:
        raise ImageError(
            f"{picking.name}: axes {letters} {shape}: {', '.join(f'{c} ({picking.size[c]})' for c in leftovers)} "
            f"cannot be mapped onto model input {spec.id!r} ({', '.join(spec.axis_ids)})"
        )
    source = picking.source
    letters_by_axis = {a: letters[i] for a, i in source.items() if i is not None}
    return AxisMapping(letters, spec.axis_ids, source, letters_by_axis)


def _checked_letters(name: str, shape: tuple[int, ...], spec: TensorSpec, given: str) -> str:
    """The image's axis letters, upper case: one known letter per dimension, none repeated."""
    letters = given.upper()
    if not letters:
        raise ImageError(
            f"{name}: cannot tell the axes of a {len(shape)}D array of shape {shape}: give them "
            f"with --axes (letters b t z c y x, e.g. {_example(spec)})"
        )
    if len(letters) != len(shape) or set(letters) - set(KNOWN_LETTERS):
        raise ImageError(
            f"{name}: axes {letters!r} do not fit the image's {len(shape)} dimensions {shape}: "
            f"give one letter per dimension from b t z c y x s q"
        )
    if len(set(letters)) != len(letters):
        raise ImageError(f"{name}: axes {letters!r} repeat a letter: give each dimension its own letter")
    return letters


@dataclass
class _Picking:
    """Image dimensions picked so far for the model axes of one input."""

    name: str
    letters: str
    shape: tuple[int, ...]
    source: dict[str, int | None] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.size = dict(zip(self.letters, self.shape))
        self.position = {letter: i for i, letter in enumerate(self.letters)}

    def take(self, letter: str, model_axis: str) -> None:
        self.source[model_axis] = self.position[letter]
        self.used.add(letter)


def _take_spatial(picking: _Picking, spec: TensorSpec, axis: AxisSpec) -> None:
    size = picking.size
    letter = "T" if axis.kind == "time" else _model_letter(axis.id, axis.kind)
    if letter in size and letter not in picking.used:
        picking.take(letter, axis.id)
    elif letter == "Z" and "Q" in size and size["Q"] > 1:
        picking.take("Q", axis.id)  # pages of unknown meaning, and the model wants z: read them as z
    else:
        raise ImageError(
            f"{picking.name}: image axes {picking.letters} {picking.shape} have no {letter} axis, model input "
            f"{spec.id!r} needs ({', '.join(spec.axis_ids)}): give a "
            f"{'3D stack' if letter == 'Z' else 'matching image'} or --axes"
        )


def _take_channel(picking: _Picking, spec: TensorSpec) -> None:
    name, size = picking.name, picking.size
    channel = spec.of_kind("channel")
    image_channels = [c for c in ("C", "S") if c in size and size[c] > 1]
    if len(image_channels) > 1:
        raise ImageError(
            f"{name}: the image has channels on both C ({size['C']}) and S ({size['S']}): give an "
            "image with one channel axis"
        )
    if channel:
        wanted = len(channel[0].channel_names)
        names = ", ".join(channel[0].channel_names)
        letter = image_channels[0] if image_channels else next((c for c in ("C", "S") if c in size), None)
        found = size[letter] if letter else 1
        if found != wanted:
            kind = " (RGB)" if found in (3, 4) and letter == "S" else ""
            raise ImageError(
                f"{name}: {found} channel{'s' if found != 1 else ''}{kind} on axis "
                f"{letter or '(none)'}, model input {spec.id!r} takes {wanted} ({names}): "
                f"convert the image to {wanted} channel{'s' if wanted != 1 else ''} first"
            )
        if letter:
            picking.take(letter, channel[0].id)
        else:
            picking.source[channel[0].id] = None
    elif image_channels:
        raise ImageError(
            f"{name}: {size[image_channels[0]]} channels, model input {spec.id!r} has no channel "
            "axis: give a single-channel image"
        )


def _take_batch(picking: _Picking, spec: TensorSpec) -> list[str]:
    """Take the stack axis as the model's batch, if it has one; the image letters left over (size > 1)."""
    size = picking.size
    batch = spec.of_kind("batch")
    leftovers = [c for c in picking.letters if c not in picking.used and size[c] > 1]
    if batch:
        stack = ["B"] if "B" in size else [c for c in leftovers if c in STACK_LETTERS]
        if len(stack) > 1:
            raise ImageError(
                f"{picking.name}: axes {picking.letters} {picking.shape}: both {' and '.join(stack)} would become "
                f"the model's batch; give a stack along one axis only"
            )
        if stack:
            picking.take(stack[0], batch[0].id)
            if stack[0] in leftovers:
                leftovers.remove(stack[0])
        else:
            picking.source[batch[0].id] = None
    return leftovers


def _example(spec: TensorSpec) -> str:
    return "".join(_model_letter(a.id, a.kind) for a in spec.axes).lower()


class MappedImage:
    """An image seen in the model input's axis order; reads boxes lazily."""

    def __init__(self, image: ImageSource, mapping: AxisMapping):
        self.image = image
        self.mapping = mapping
        self.axes = mapping.model_axes
        self.shape = {a: (image.shape[i] if i is not None else 1) for a, i in mapping.source.items()}
        self._order = [i for i in (mapping.source[a] for a in self.axes) if i is not None]
        self._dropped = [i for i in range(len(image.shape)) if i not in self._order]

    def read(self, region: dict[str, tuple[int, int]]) -> np.ndarray:
        index: list = [0] * len(self.image.shape)
        for axis in self.axes:
            i = self.mapping.source[axis]
            if i is not None:
                index[i] = slice(*region[axis]) if axis in region else slice(None)
        data = np.asarray(self.image.data[tuple(index)])
        kept = [i for i in range(len(self.image.shape)) if i not in self._dropped]
        data = np.transpose(data, [kept.index(i) for i in self._order])
        for position, axis in enumerate(self.axes):
            if self.mapping.source[axis] is None:
                data = np.expand_dims(data, position)
        return data


class ArrayImage:
    """An array already in the model input's axis order (the API's in-memory path and the tests)."""

    def __init__(self, array: np.ndarray, axes: tuple[str, ...]):
        self.array = array
        self.axes = axes
        self.shape = dict(zip(axes, array.shape))

    def read(self, region: dict[str, tuple[int, int]]) -> np.ndarray:
        return self.array[tuple(slice(*region[a]) if a in region else slice(None) for a in self.axes)]


__all__ = ["ArrayImage", "AxisMapping", "MappedImage", "infer_axes", "map_axes"]
