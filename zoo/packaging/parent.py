"""An existing package's weights loaded live, the one place that does it: which of its formats to start from
(`choose_parent`, PARENT_ORDER; code-running formats only with trust, the same reasons as `zoo predict` gives), the
model loaded through zoo.packaging.sources (`open_parent`), its test input after the package's own pre-processing
(`preprocessed_test_input`, through the code `zoo predict` runs) and the inputs a copy is proven on (`proof_inputs`).
`zoo convert`, `zoo fix-deepimagej` and fine-tuning start from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bioimage.rdf import RdfError, read_rdf
from zoo.bioimage.rdf_weights import WeightsEntry, referenced_files, weight_entries
from zoo.bioimage.source import OpenedSource, path_in_package
from zoo.bioimage.tensors import TensorSpec, tensor_specs
from zoo.errors import ExportError, InputError, ZooError
from zoo.packaging.agreement import agreement_inputs
from zoo.packaging.exporters import EXPORTERS, ExportContext

# the weights a copy is made from, best first: the original training weights, then formats that hold the graph
PARENT_ORDER = ("pytorch_state_dict", "torchscript", "keras_v3", "keras_hdf5", "onnx")
AXIS_LETTERS = {"batch": "b", "channel": "c"}
SPACE_IDS = ("z", "y", "x")
STATISTICS_BUDGET = 512 * 1024**2


@dataclass
class ParentModel:
    """The package's weights a copy is made from, loaded live, with what exporters and the proof need.

    `model` is what the exporters start from (a module, or the path of an ONNX file); `reference` runs the parent
    as the package ships it (the proof compares every copy with it); `example` is the package's test input after
    its pre-processing, in the tensor's own axis order."""

    weight_format: str
    framework: str  # EXPORTERS' key: "pytorch", "torchscript", "keras", "onnx"
    model: Any
    reference: Any  # callable: array -> array
    example: np.ndarray
    inputs: dict[str, np.ndarray]  # the proof: the example and random inputs of other valid sizes
    context: ExportContext
    entry: WeightsEntry

    def can_make(self, weight_format: str) -> bool:
        return weight_format in EXPORTERS[self.framework]


@dataclass(frozen=True)
class Parent:
    """Which format the copies are made from, and why that one."""

    weight_format: str
    why: str
    passed_over: dict[str, str] = field(default_factory=dict)  # better formats the package has, and why not them


def choose_parent(opened: OpenedSource, rdf: dict, trust: bool) -> Parent:
    """The first format of PARENT_ORDER that the package has and that can be loaded here (the same reasons as `zoo
    predict` gives: code needs trust, a missing runtime, a changed file, operations that act outside the model), or
    one InputError line naming what each format lacks (e.g. `pass --trust`)."""
    from zoo.inference.model import weights_problem

    present = weight_entries(rdf)
    passed_over: dict[str, str] = {}
    for weight_format in PARENT_ORDER:
        if weight_format not in present:
            continue
        problem = weights_problem(weight_format, present[weight_format], opened, "cpu", trust)
        if problem is None and weight_format == "pytorch_state_dict":
            problem = _architecture_problem(present[weight_format])
        if problem is None:
            why = f"the package's best weights to convert from ({' > '.join(PARENT_ORDER)})"
            why += "".join(f"; not {f}: {reason}" for f, reason in passed_over.items())
            return Parent(weight_format, why, passed_over)
        passed_over[weight_format] = problem
    others = [f for f in present if f not in PARENT_ORDER]
    reasons = [f"{f}: {why}" for f, why in passed_over.items()]
    reasons += [f"{f}: zoo converts from {', '.join(PARENT_ORDER)} only" for f in others]
    raise InputError(
        f"{opened.source}: no weights to convert from ({'; '.join(reasons) or 'the package lists no weights'})"
    )


def _architecture_problem(entry: WeightsEntry) -> str | None:
    import importlib.util

    architecture = entry.architecture
    if architecture is None or architecture.problem:
        return f"its architecture {architecture.problem if architecture else 'is missing'}"
    if (
        architecture.import_from is not None
        and importlib.util.find_spec(architecture.import_from.split(".")[0]) is None
    ):
        return f"its architecture comes from the Python package {architecture.import_from!r}: install it"
    return None


def open_parent(opened: OpenedSource, weight_format: str, *, trust: bool = False) -> ParentModel:
    """Load the package's `weight_format` weights live (zoo.packaging.sources: weights-only formats are scanned and
    refused when they act outside the model, unless `trust`) with the example and proof inputs. InputError when the
    package cannot be converted (more than one input or output, axes other than batch/channel/z/y/x, no test
    input); ExportError when the weights fail to load."""
    from zoo.inference.model import weights_problem

    rdf = read_package_rdf(opened)
    entry = weight_entries(rdf).get(weight_format)
    if entry is None:
        raise InputError(f"{opened.source} has no {weight_format} weights")
    problem = weights_problem(weight_format, entry, opened, "cpu", trust) or (
        _architecture_problem(entry) if weight_format == "pytorch_state_dict" else None
    )
    if problem is not None:
        raise InputError(f"{opened.source}: {weight_format}: {problem}")
    inputs, outputs, layout, output_layout = convertible_tensors(opened, rdf)
    live = _load_live(opened, entry, trust)
    example = preprocessed_test_input(opened, rdf, inputs[0])
    expected = tuple(1 if a == "b" else None for a in layout)
    if example.ndim != len(layout) or any(e is not None and s != e for s, e in zip(example.shape, expected)):
        raise InputError(f"the test input of {inputs[0].id} has shape {example.shape}, expected axes {layout}")
    from zoo.trainers.task import Task

    task = Task(
        kind="restoration" if any(a in output_layout for a in SPACE_IDS) else "classification",
        spatial="zyx" if "z" in layout else "yx",
        input_id=inputs[0].id,
        output_id=outputs[0].id,
    )
    source_model = live.source_model(layout, task, output_layout)
    context = ExportContext(
        architecture_file=live.architecture[0] if live.architecture else Path(),
        architecture_callable=live.architecture[1] if live.architecture else "",
        architecture_kwargs=live.architecture[2] if live.architecture else {},
        input_id=inputs[0].id,
        output_id=outputs[0].id,
        layout=layout,
        output_layout=output_layout if output_layout != layout else None,
    )
    return ParentModel(
        weight_format,
        live.framework,
        live.model,
        source_model.predict,
        example,
        proof_inputs(example, inputs[0], layout),
        context,
        entry,
    )


def convertible_tensors(opened: OpenedSource, rdf: dict) -> tuple[list[TensorSpec], list[TensorSpec], str, str]:
    """(inputs, outputs, input layout, output layout) of a package zoo converts: one input with channel, y and x
    axes, one output, every axis among batch, channel, z, y, x; else one InputError line."""
    inputs, outputs = tensor_specs(rdf)
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(
            f"{opened.source} has {len(inputs)} inputs and {len(outputs)} outputs: zoo converts models with one input "
            "and one output"
        )
    layout, output_layout = _layout(inputs[0], "input"), _layout(outputs[0], "output")
    if "c" not in layout or not {"y", "x"} <= set(layout):
        raise InputError(f"input {inputs[0].id} has axes {layout}: zoo converts images with channel, y and x axes")
    return inputs, outputs, layout, output_layout


def _load_live(opened: OpenedSource, entry: WeightsEntry, trust: bool):
    """A zoo.packaging.sources.ModelSource for the entry's file (and architecture, for a state dict)."""
    from zoo.packaging.sources import open_model_source

    path, _ = path_in_package(opened.root, entry.source or "")
    architecture = entry.architecture
    if entry.format == "pytorch_state_dict" and architecture is not None and architecture.import_from is not None:
        return _open_library_architecture(path, architecture, entry, trust)
    try:
        if entry.format == "pytorch_state_dict":
            file, _ = path_in_package(opened.root, architecture.source)
            if file is None:
                raise InputError(f"the architecture {architecture.source} of {entry.format} is not in the package")
            kwargs = _architecture_kwargs(entry)
            return open_model_source(f"{file}:{architecture.callable}", weights=path, kwargs=dict(kwargs), trust=trust)
        return open_model_source(path, trust=trust)
    except InputError:
        raise
    except Exception as e:  # a runtime that cannot load the file
        raise ExportError(f"{entry.format}: {path.name} could not be loaded ({type(e).__name__}: {e})") from e


def _architecture_kwargs(entry: WeightsEntry) -> dict[str, Any]:
    """The keywords the architecture is built with: 0.5 `architecture.kwargs`, 0.3/0.4 `kwargs` beside it."""
    architecture = entry.raw.get("architecture")
    kwargs = architecture.get("kwargs") if isinstance(architecture, dict) else entry.raw.get("kwargs")
    return dict(kwargs) if isinstance(kwargs, dict) else {}


def _open_library_architecture(path: Path, architecture, entry: WeightsEntry, trust: bool):
    """A state dict whose architecture is imported from an installed Python package (e.g. CAREamics)."""
    import importlib

    import torch

    from zoo.bioimage.files import sha256_of
    from zoo.packaging.sources import ModelSource

    if not trust:
        raise InputError(f"{entry.format} runs code from {architecture.import_from}: pass --trust only if you trust it")
    kwargs = _architecture_kwargs(entry)
    try:
        module = importlib.import_module(architecture.import_from)
        model = getattr(module, architecture.callable)(**kwargs)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:
        raise InputError(
            f"{entry.format}: {architecture.import_from}.{architecture.callable} could not be built with these weights "
            f"({type(e).__name__}: {e})"
        ) from e
    model.eval()
    return ModelSource(
        "python",
        path,
        sha256_of(path),
        "pytorch",
        "pytorch_state_dict",
        model,
        architecture=(Path(module.__file__ or ""), architecture.callable, kwargs),
    )


def _layout(spec: TensorSpec, what: str) -> str:
    """The tensor's axes as letters ("bcyx"), or InputError for axes other than batch, channel, z, y, x."""
    letters = []
    for axis in spec.axes:
        letter = AXIS_LETTERS.get(axis.kind) or (axis.id if axis.kind == "space" and axis.id in SPACE_IDS else None)
        if letter is None or letter in letters:
            raise InputError(
                f"{what} {spec.id} has axes {', '.join(spec.axis_ids)}: zoo converts tensors whose axes are among "
                "batch, channel, z, y and x"
            )
        letters.append(letter)
    return "".join(letters)


def preprocessed_test_input(opened: OpenedSource, rdf: dict, spec: TensorSpec) -> np.ndarray:
    """The package's test input after the rdf's pre-processing, through the code `zoo predict` runs: bioimageio.core's
    operators (zoo.inference.model.processing_ops) with the statistics computed over the whole test input
    (zoo.inference.stats), as float32 in the tensor's own axis order."""
    from bioimageio.core import Sample, Tensor
    from bioimageio.core.axis import AxisId
    from bioimageio.core.common import MemberId

    from zoo.inference.axes import ArrayImage
    from zoo.inference.model import load_description, processing_ops
    from zoo.inference.stats import compute_statistics

    raw = np.load(_test_input_path(opened, rdf), allow_pickle=False)
    try:
        descr = load_description(opened)
        pre_ops, _, measures = processing_ops(descr)
    except ZooError:
        raise
    except Exception as e:  # bioimageio.core cannot set up this package's processing
        raise InputError(f"the pre-processing of {opened.source} cannot be set up ({type(e).__name__}: {e})") from e
    wanted = {m for m in measures if str(m.member_id) == spec.id}
    stats = compute_statistics(wanted, {spec.id: [ArrayImage(raw, spec.axis_ids)]}, STATISTICS_BUDGET)
    dims = [AxisId(a) for a in spec.axis_ids]
    sample = Sample(
        members={MemberId(spec.id): Tensor.from_numpy(raw, dims=dims)},
        stat={m: value.window({}, {}) for m, value in stats.items()},
        id=None,
    )
    for op in pre_ops:
        op(sample)
    processed = sample.members[MemberId(spec.id)].transpose(dims).data.to_numpy()
    return np.ascontiguousarray(processed, dtype=np.float32)


def _test_input_path(opened: OpenedSource, rdf: dict) -> Path:
    for ref in referenced_files(rdf):
        if ref.role == "test_tensor" and ref.location in ("inputs.0.test_tensor", "test_inputs.0"):
            path, refused = path_in_package(opened.root, ref.source)
            if refused is not None or path is None or not path.is_file():
                raise InputError(f"{opened.source}: the test input {ref.source} {refused or 'is missing'}")
            return path
    raise InputError(f"{opened.source} has no test input to prove the converted weights on")


def proof_inputs(example: np.ndarray, spec: TensorSpec, layout: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The example and random inputs of other sizes the rdf allows (agreement_inputs, when every spatial axis takes
    the same sizes; else the example's size with batch 1 and 2); a batch fixed at 1 keeps batch 1."""
    sizes = {axis.sizes for axis in spec.of_kind("space")}
    if len(sizes) == 1 and None not in sizes:
        valid = sizes.pop()
        inputs = agreement_inputs(example, valid.min, valid.step, layout, seed=seed)
    else:
        rng = np.random.default_rng(seed)
        inputs = {"test input": example, "random": rng.standard_normal(example.shape).astype(np.float32)}
        if "b" in layout:
            shape = list(example.shape)
            shape[layout.index("b")] = 2
            inputs["random, batch 2"] = rng.standard_normal(shape).astype(np.float32)
    batch = spec.of_kind("batch")
    if "b" in layout and batch and batch[0].sizes is not None and batch[0].sizes.step == 0:
        inputs = {k: x for k, x in inputs.items() if x.shape[layout.index("b")] == batch[0].sizes.min}
    return inputs


def read_package_rdf(opened: OpenedSource) -> dict:
    """The package's rdf as a dict, or one InputError line."""
    try:
        return read_rdf(opened.rdf_path)
    except (RdfError, OSError) as e:
        raise InputError(f"{opened.source}: {e}: run `zoo validate` on it") from e
