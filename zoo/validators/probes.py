"""What the runtime checks feed a model besides its test input (other valid sizes, a batch of two, crops, a
constant image, noise) and how they run it, with or without the rdf's pre/post-processing.

Sizes come from a format 0.5 description (a 0.4 one is converted by bioimageio.spec, see
PackageUnderTest.descr_v05). Inputs of other sizes are made from the test input itself (centre-cropped, or
mirrored outwards where it is too small), so that the model sees the kind of image it was made for."""

from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.bioimage.star_convex import channels_before_postprocessing

MAX_PROBE_ELEMENTS = 1 << 20  # inputs of other sizes stay below this many elements (fewer sizes are run)
SIZE_PARAMETERS = (0, 1, 2)  # n in min + n·step, as the reference validator runs them


@dataclass(frozen=True)
class TensorAxes:
    """A tensor's id and its axes (ids and types) in array order."""

    tensor_id: str
    ids: tuple[str, ...]
    types: tuple[str, ...]

    def index(self, axis_type: str) -> int | None:
        return self.types.index(axis_type) if axis_type in self.types else None


def tensor_axes(descr5, kind: str) -> list[TensorAxes]:
    return [
        TensorAxes(str(t.id), tuple(str(a.id) for a in t.axes), tuple(a.type for a in t.axes))
        for t in getattr(descr5, kind)
    ]


def parameterized_axes(descr5) -> dict[tuple[str, str], Any]:
    """{(input id, axis id): ParameterizedSize} of every input axis sized min + n·step."""
    from bioimageio.spec.model.v0_5 import ParameterizedSize

    return {
        (str(t.id), str(a.id)): a.size
        for t in descr5.inputs
        for a in t.axes
        if isinstance(getattr(a, "size", None), ParameterizedSize)
    }


def batch_is_free(descr5) -> bool:
    """Whether a batch of two may be fed: some input has a batch axis and none fixes it to 1."""
    batch_axes = [a for t in descr5.inputs for a in t.axes if a.type == "batch"]
    return bool(batch_axes) and all(a.size is None for a in batch_axes)


def shapes(descr5, n: int = 0, batch: int = 1) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Input and output shapes (array axis order) with size parameter `n` on every parameterized input axis, as
    the rdf describes them (size references, scale and offset resolved by bioimageio.spec). An output axis of
    data-dependent size appears as an object with `min` and `max`."""
    from bioimageio.spec.model.v0_5 import AxisId, TensorId

    ns = {(TensorId(t), AxisId(a)): n for t, a in parameterized_axes(descr5)}
    sizes = descr5.get_axis_sizes(ns, batch_size=batch)
    inputs = {str(t.id): tuple(sizes.inputs[(t.id, a.id)] for a in t.axes) for t in descr5.inputs}
    outputs = {str(t.id): _model_output_shape(t, sizes.outputs) for t in descr5.outputs}
    return inputs, outputs


def _model_output_shape(tensor, sizes) -> tuple:
    """An output's shape as the model gives it, before a post-processing step that changes the number of channels
    (stardist_postprocessing: 1 + n_rays channels become one label channel)."""
    channels = channels_before_postprocessing(getattr(tensor, "postprocessing", ()))
    return tuple(
        channels if channels is not None and a.type == "channel" else sizes[(tensor.id, a.id)] for a in tensor.axes
    )


def size_parameters(descr5) -> list[int]:
    """The n of SIZE_PARAMETERS to run: 0 always, larger ones while the inputs stay below MAX_PROBE_ELEMENTS.
    [0] when no input size is parameterized."""
    if not parameterized_axes(descr5):
        return [0]
    chosen = []
    for n in SIZE_PARAMETERS:
        inputs, _ = shapes(descr5, n)
        if n and sum(math.prod(shape) for shape in inputs.values()) > MAX_PROBE_ELEMENTS:
            break
        chosen.append(n)
    return chosen


def shape_text(shape) -> str:
    return "×".join(str(s) for s in shape)


# ---------------------------------------------------------------------------------------------------- inputs


def fit_to(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`array` brought to `shape`: centre-cropped where it is larger, mirrored outwards where it is smaller."""
    index = tuple(
        slice((have - want) // 2, (have - want) // 2 + want) if have > want else slice(None)
        for have, want in zip(array.shape, shape)
    )
    array = array[index]
    pad = [
        ((want - have) // 2, want - have - (want - have) // 2) if want > have else (0, 0)
        for have, want in zip(array.shape, shape)
    ]
    if any(before or after for before, after in pad):
        array = np.pad(array, pad, mode="symmetric")
    return np.ascontiguousarray(array)


def content_inputs(test_inputs: dict[str, np.ndarray], input_shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """The test inputs brought to other shapes (see fit_to: a larger batch repeats the test sample)."""
    return {tensor_id: fit_to(test_inputs[tensor_id], shape) for tensor_id, shape in input_shapes.items()}


def constant_inputs(test_inputs: dict[str, np.ndarray], input_shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Every pixel at the mean of the test input (a blank field: statistics with zero spread)."""
    out = {}
    for tensor_id, shape in input_shapes.items():
        source = test_inputs[tensor_id]
        out[tensor_id] = np.full(shape, _cast_value(float(np.mean(source)), source.dtype), dtype=source.dtype)
    return out


def noise_inputs(
    test_inputs: dict[str, np.ndarray], input_shapes: dict[str, tuple], seed: int = 0
) -> dict[str, np.ndarray]:
    """Uniform noise over the test input's value range, in its dtype."""
    rng = np.random.default_rng(seed)
    out = {}
    for tensor_id, shape in input_shapes.items():
        source = test_inputs[tensor_id]
        low, high = float(np.min(source)), float(np.max(source))
        values = rng.uniform(low, high if high > low else low + 1.0, size=shape)
        if np.issubdtype(source.dtype, np.integer):
            values = np.clip(np.round(values), low, high)
        out[tensor_id] = values.astype(source.dtype)
    return out


def _cast_value(value: float, dtype: np.dtype):
    return round(value) if np.issubdtype(dtype, np.integer) else value


def crop(
    arrays: dict[str, np.ndarray], starts: dict[str, tuple[int, ...]], shapes_: dict[str, tuple]
) -> dict[str, np.ndarray]:
    return {
        tensor_id: np.ascontiguousarray(
            array[tuple(slice(s, s + n) for s, n in zip(starts[tensor_id], shapes_[tensor_id]))]
        )
        for tensor_id, array in arrays.items()
    }


def stack_batch(arrays: dict[str, np.ndarray], inputs: list[TensorAxes], copies: int) -> dict[str, np.ndarray]:
    """`copies` copies of each input along its batch axis."""
    return {t.tensor_id: np.concatenate([arrays[t.tensor_id]] * copies, axis=t.index("batch")) for t in inputs}


# ---------------------------------------------------------------------------------------------------- running


def make_sample(arrays: dict[str, np.ndarray], inputs: list[TensorAxes], sample_id: str):
    from bioimageio.core import Sample, Tensor
    from bioimageio.spec.model.v0_5 import AxisId, TensorId

    return Sample(
        members={TensorId(t.tensor_id): Tensor(arrays[t.tensor_id], dims=[AxisId(a) for a in t.ids]) for t in inputs},
        stat={},
        id=sample_id,
    )


def as_arrays(sample, tensors: list[TensorAxes]) -> dict[str, np.ndarray]:
    """The sample's tensors as numpy arrays in the described axis order (missing tensors left out)."""
    from bioimageio.spec.model.v0_5 import AxisId

    out = {}
    for t in tensors:
        tensor = sample.members.get(t.tensor_id)
        if tensor is not None:
            out[t.tensor_id] = tensor.transpose([AxisId(a) for a in t.ids]).data.to_numpy()
    return out


def run_model(pipeline, arrays: dict[str, np.ndarray], descr5, sample_id: str = "probe") -> dict[str, np.ndarray]:
    """The model alone (inputs already pre-processed, no post-processing, no padding or cropping)."""
    sample = make_sample(arrays, tensor_axes(descr5, "inputs"), sample_id)
    result = pipeline.predict_sample_without_blocking(
        sample, skip_preprocessing=True, skip_postprocessing=True, skip_input_padding=True, skip_output_cropping=True
    )
    return as_arrays(result, tensor_axes(descr5, "outputs"))


def preprocess(pipeline, arrays: dict[str, np.ndarray], descr5) -> dict[str, np.ndarray]:
    """The rdf's pre-processing applied to the inputs (statistics computed on these inputs)."""
    inputs = tensor_axes(descr5, "inputs")
    sample = make_sample(arrays, inputs, "preprocess")
    pipeline.apply_preprocessing(sample)
    return as_arrays(sample, inputs)


def run_processed(pipeline, arrays: dict[str, np.ndarray], descr5, sample_id: str = "probe") -> dict[str, np.ndarray]:
    """Pre-processing, model and post-processing, as a user of the package runs it on a whole image."""
    sample = make_sample(arrays, tensor_axes(descr5, "inputs"), sample_id)
    processed = deepcopy(sample)
    pipeline.apply_preprocessing(processed)
    result = pipeline.predict_sample_without_blocking(
        processed, skip_preprocessing=True, skip_postprocessing=True, skip_input_padding=True, skip_output_cropping=True
    )
    pipeline.apply_postprocessing(result)
    return as_arrays(result, tensor_axes(descr5, "outputs"))


__all__ = [
    "MAX_PROBE_ELEMENTS",
    "TensorAxes",
    "as_arrays",
    "batch_is_free",
    "constant_inputs",
    "content_inputs",
    "crop",
    "fit_to",
    "make_sample",
    "noise_inputs",
    "parameterized_axes",
    "preprocess",
    "run_model",
    "run_processed",
    "shape_text",
    "shapes",
    "size_parameters",
    "stack_batch",
    "tensor_axes",
]
