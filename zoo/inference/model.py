"""A package made ready to predict: its description (any format version, read as 0.5), the weight format
chosen for the device, the runtime that executes it, and the rdf's pre/post-processing from bioimageio.core."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bioimage.files import sha256_of
from zoo.bioimage.source import OpenedSource, open_source
from zoo.bioimage.tensors import AxisSpec, TensorSpec, ValidSizes
from zoo.errors import InputError, PredictionError, SourceError, WeightsError
from zoo.validators.context import CODE_EXECUTING_FORMATS

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
# fastest first: onnxruntime is the quickest CPU runtime here, TorchScript the natural one on a GPU
WEIGHT_PRIORITY: dict[str, tuple[str, ...]] = {
    "cpu": ("onnx", "torchscript", "tensorflow_saved_model_bundle", "pytorch_state_dict", "keras_v3", "keras_hdf5"),
    "cuda": ("torchscript", "onnx", "pytorch_state_dict", "tensorflow_saved_model_bundle", "keras_v3", "keras_hdf5"),
}
RUNTIMES: dict[str, str] = {
    "onnx": "onnxruntime",
    "torchscript": "torch",
    "pytorch_state_dict": "torch",
    "tensorflow_saved_model_bundle": "tensorflow",
    "keras_hdf5": "tensorflow",
    "keras_v3": "keras",
}
TILED_KINDS = ("space", "time")
# onnxruntime on CPU: tiles run side by side, each call on a share of the cores; this beats one call on all
# cores when other work competes for them (pre-processing, writing, other processes) and is no slower otherwise
ONNX_CPU_WORKERS = 2


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


def resolve_device(device: str) -> str:
    if device not in DEVICES:
        raise InputError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    cuda = _cuda_available()
    if device == "cuda" and not cuda:
        raise InputError("--device cuda, but no CUDA device is visible to PyTorch: use --device cpu or auto")
    return ("cuda" if cuda else "cpu") if device == "auto" else device


def _cuda_available() -> bool:
    """Asks PyTorch, but only where an NVIDIA driver is present: importing torch costs seconds."""
    import ctypes.util

    if not Path("/proc/driver/nvidia").exists() and ctypes.util.find_library("cuda") is None:
        return False
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


@dataclass
class PredictionModel:
    opened: OpenedSource
    descr: Any  # bioimageio.spec v0_5.ModelDescr
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    geometry: Geometry
    weight_format: str
    device: str
    backend: Any  # zoo.inference.backends.Backend
    pre_ops: list  # bioimageio.core operators run on each input window
    tile_post_ops: list  # post-processing that is exact on each output tile
    deferred_post_ops: list  # post-processing that needs the whole output (statistics, samplewise ops)
    input_measures: set = field(default_factory=set)  # statistics of the inputs the pre-processing needs
    not_used: dict[str, str] = field(default_factory=dict)  # weight format (or "cuda") -> why not used
    sha256: str = ""  # of the rdf: identifies the model in resume records
    workers: int = 1  # model calls that may run at the same time (the runtime is thread-safe)

    @property
    def name(self) -> str:
        return str(self.descr.name)

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The bare model on pre-processed windows (model axis order); outputs in the rdf's order."""
        outputs = self.backend.predict(*arrays)
        if len(outputs) < len(self.outputs):
            raise PredictionError(
                f"{self.weight_format} weights returned {len(outputs)} tensors, the rdf describes "
                f"{len(self.outputs)} outputs ({', '.join(o.id for o in self.outputs)})"
            )
        return [np.asarray(o) for o in outputs[: len(self.outputs)]]

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        self.opened.close()


def load_model(
    source: Path, *, weights: str | None = None, device: str = "auto", trust: bool = False
) -> PredictionModel:
    """Open a package (folder, rdf or zip), read its description and load the best usable weights."""
    opened = open_source(Path(source))
    try:
        descr = _load_description(opened)
        _refuse_custom_code(descr, trust)
        inputs = [_tensor_spec(t, is_input=True) for t in descr.inputs]
        outputs = [_tensor_spec(t, is_input=False) for t in descr.outputs]
        geometry = derive_geometry(inputs, outputs)
        requested, device = device, resolve_device(device)
        try:
            weight_format, backend, not_used, workers = _load_weights(descr, opened, weights, device, trust)
        except WeightsError as e:
            if requested != "auto" or device == "cpu":
                raise
            # --device auto on a GPU machine: weights that cannot run on CUDA here still run on the CPU
            logger.warning("no weights usable on CUDA (%s); predicting on the CPU", e)
            device = "cpu"
            weight_format, backend, not_used, workers = _load_weights(descr, opened, weights, device, trust)
            not_used["cuda"] = str(e)
        pre_ops, post_ops, measures = _processing(descr)
        tile_post, deferred = _split_post(post_ops)
        return PredictionModel(
            opened=opened,
            descr=descr,
            inputs=inputs,
            outputs=outputs,
            geometry=geometry,
            weight_format=weight_format,
            device=device,
            backend=backend,
            pre_ops=pre_ops,
            tile_post_ops=tile_post,
            deferred_post_ops=deferred,
            input_measures={m for m in measures if str(m.member_id) in {t.id for t in inputs}},
            not_used=not_used,
            sha256=hashlib.sha256(opened.rdf_path.read_bytes()).hexdigest(),
            workers=workers,
        )
    except BaseException:
        opened.close()
        raise


def _load_description(opened: OpenedSource):
    from bioimageio.spec import InvalidDescr, load_description

    try:
        descr = load_description(opened.rdf_path, perform_io_checks=False, format_version="latest")
    except Exception as e:
        raise SourceError(
            f"bioimageio.spec cannot read {opened.source} ({type(e).__name__}: {e}): run `zoo validate` on it"
        ) from e
    if isinstance(descr, InvalidDescr):
        raise SourceError(
            f"{opened.source} is not a valid bioimage.io description: run `zoo validate` on it for the failing fields"
        )
    if descr.type != "model":
        raise SourceError(f"{opened.source} describes a {descr.type}, not a model: give a model package")
    return descr


def _refuse_custom_code(descr, trust: bool) -> None:
    from bioimageio.spec.model import v0_5

    for kind, tensors in (("inputs", descr.inputs), ("outputs", descr.outputs)):
        for tensor in tensors:
            steps = tensor.preprocessing if kind == "inputs" else tensor.postprocessing
            for i, step in enumerate(steps):
                if isinstance(step, v0_5.CustomProcessingDescr) and not trust:
                    where = f"{kind}[{tensor.id}].{'pre' if kind == 'inputs' else 'post'}processing[{i}]"
                    raise WeightsError(
                        f"{where} runs Python code shipped in the package ({step.source}): "
                        "pass --trust if you trust its authors"
                    )


def _size(size) -> tuple[ValidSizes | None, tuple[str, str] | None, int]:
    from bioimageio.spec.model import v0_5

    if isinstance(size, int):
        return ValidSizes(int(size), 0), None, 0
    if isinstance(size, v0_5.ParameterizedSize):
        return ValidSizes(int(size.min), int(size.step)), None, 0
    if isinstance(size, v0_5.SizeReference):
        return None, (str(size.tensor_id), str(size.axis_id)), int(size.offset)
    return None, None, 0  # DataDependentSize


def _tensor_spec(tensor, *, is_input: bool) -> TensorSpec:
    axes = []
    for axis in tensor.axes:
        kind = str(axis.type)
        if kind == "batch":
            axes.append(AxisSpec(str(axis.id), "batch", ValidSizes(1, 0) if axis.size == 1 else None))
            continue
        if kind == "channel":
            names = tuple(str(n) for n in axis.channel_names)
            axes.append(AxisSpec(str(axis.id), "channel", ValidSizes(len(names), 0), channel_names=names))
            continue
        sizes, reference, offset = _size(axis.size)
        axes.append(
            AxisSpec(
                str(axis.id),
                kind,
                sizes,
                reference,
                offset,
                float(getattr(axis, "scale", 1.0) or 1.0),
                int(getattr(axis, "halo", 0) or 0),
            )
        )
    pad = getattr(tensor, "pad", None) if is_input else None
    return TensorSpec(
        str(tensor.id), tuple(axes), pad.mode if pad is not None else "symmetric", float(getattr(pad, "value", 0) or 0)
    )


def derive_geometry(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> Geometry:
    """Tiled axes, valid window sizes, halo and alignment; `tileable` says why tiling is impossible, if it is."""
    first = inputs[0]
    tiled = tuple(a.id for a in first.of_kind(*TILED_KINDS))
    by_id = {t.id: t for t in inputs}
    reasons = []
    for tensor in inputs[1:]:
        if tuple(a.id for a in tensor.of_kind(*TILED_KINDS)) != tiled:
            reasons.append(f"inputs {first.id} and {tensor.id} have different spatial axes")
    if any(t.of_kind("index") for t in inputs):
        reasons.append("an input has an index axis")
    sizes: dict[str, ValidSizes] = {}
    for axis_id in tiled:
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
        sizes[axis_id] = common or ValidSizes(1, 1)
    before = dict.fromkeys(tiled, 0)
    after = dict.fromkeys(tiled, 0)
    quantum = dict.fromkeys(tiled, 1)  # input pixels that make whole output pixels on every output
    output_maps: dict[str, list[OutputAxisMap]] = {}
    non_spatial = []
    for tensor in outputs:
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
            # a window [s, s + w) yields output [s·r, (s + w)·r + offset), of which `halo` is unreliable at each end
            before[input_axis] = max(before[input_axis], math_ceil(Fraction(axis.halo) / ratio))
            after[input_axis] = max(after[input_axis], math_ceil(Fraction(axis.halo - min(axis.offset, 0)) / ratio))
            quantum[input_axis] = math.lcm(quantum[input_axis], ratio.denominator)
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
    halo = {a: _round_up(before[a], quantum[a]) for a in tiled}
    halo_after = {a: _round_up(after[a], quantum[a]) for a in tiled}
    align = {a: math.lcm(_alignment(sizes[a], halo[a] + halo_after[a]), quantum[a]) for a in tiled}
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


def _weight_path(entry, opened: OpenedSource) -> Path | None:
    source = str(entry.source)
    if source.startswith(("http://", "https://")):
        return None
    path = Path(source)
    return path if path.is_absolute() else opened.root / path


def _load_weights(
    descr, opened: OpenedSource, requested: str | None, device: str, trust: bool
) -> tuple[str, Any, dict[str, str], int]:
    present = {name: entry for name, entry in descr.weights if entry is not None}
    if requested is not None and requested not in present:
        raise WeightsError(f"--weights {requested}: the package has {', '.join(present) or 'no weights'}")
    order = [requested] if requested else [f for f in WEIGHT_PRIORITY[device] if f in present]
    order += [f for f in present if f not in order and not requested]
    not_used: dict[str, str] = {}
    for weight_format in order:
        entry = present[weight_format]
        reason = _unusable(weight_format, entry, opened, device, trust)
        if reason is None:
            workers = _workers(weight_format, device)
            try:
                backend = _backend(weight_format, entry, opened, descr, device, workers)
            except Exception as e:  # a runtime that cannot load the file: try the next format
                logger.debug("loading %s failed", weight_format, exc_info=True)
                reason = f"failed to load ({type(e).__name__}: {str(e).strip()[:300]})"
            else:
                return weight_format, backend, not_used, workers
        not_used[weight_format] = reason
    details = "; ".join(f"{f}: {why}" for f, why in not_used.items()) or "the package lists no weights"
    raise WeightsError(f"no usable weights in {opened.source} for {device} ({details})")


def _unusable(weight_format: str, entry, opened: OpenedSource, device: str, trust: bool) -> str | None:
    if weight_format in CODE_EXECUTING_FORMATS and not trust:
        return "loading it runs code shipped in the package: pass --trust to allow it"
    runtime = RUNTIMES.get(weight_format)
    if runtime is None:
        return "no runtime for this format"
    if importlib.util.find_spec(runtime) is None:
        return f"{runtime} is not installed"
    if weight_format == "onnx" and device == "cuda":
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "onnxruntime has no CUDA provider here (install onnxruntime-gpu)"
    path = _weight_path(entry, opened)
    if path is None:
        return f"{entry.source} is only at a URL; predict works offline"
    if not path.exists():
        return f"{path.name} is missing from the package"
    expected = getattr(entry, "sha256", None)
    if expected is not None and path.is_file() and sha256_of(path) != str(expected):
        return f"{path.name} does not match its sha256 in the rdf (the file was changed): run `zoo validate`"
    return None


# zoo's own backends where they are tuned for speed; every other format through bioimageio.core's adapters,
# which know third-party layouts (library architectures, TF signatures, Keras)
ZOO_BACKENDS = ("onnx", "torchscript")


def _workers(weight_format: str, device: str) -> int:
    cores = os.cpu_count() or 1
    return min(ONNX_CPU_WORKERS, cores) if weight_format == "onnx" and device == "cpu" else 1


def _backend(weight_format: str, entry, opened: OpenedSource, descr, device: str, workers: int = 1):
    from zoo.inference.backends import load_backend

    if weight_format == "onnx" and workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        return load_backend(weight_format, _weight_path(entry, opened), device=device, threads=threads)
    if weight_format in ZOO_BACKENDS:
        return load_backend(weight_format, _weight_path(entry, opened), device=device)
    from zoo.inference.backends.core_backend import BioimageioCoreBackend

    return BioimageioCoreBackend(_weight_path(entry, opened), device, descr=descr, weight_format=weight_format)


def _processing(descr) -> tuple[list, list, set]:
    """bioimageio.core's operators for the rdf's pre/post-processing, without its statistics steps: zoo computes
    the statistics once over the whole image and hands them to every tile."""
    from bioimageio.core.proc_ops import AddKnownDatasetStats, UpdateStats
    from bioimageio.core.proc_setup import get_requried_measures, setup_pre_and_postprocessing

    required = get_requried_measures(descr)
    placeholders = {m: 0.0 for m in required.pre | required.post if m.scope == "dataset"}
    setup = setup_pre_and_postprocessing(descr, [], fixed_dataset_stats=placeholders or None)
    pre = [op for op in setup.pre if not isinstance(op, (UpdateStats, AddKnownDatasetStats))]
    return pre, list(setup.post), set(required.pre) | set(required.post)


def _split_post(post_ops: list) -> tuple[list, list]:
    from bioimageio.core._op_base import BlockwiseOperator

    for i, op in enumerate(post_ops):
        if not isinstance(op, BlockwiseOperator) or op.required_measures:
            return post_ops[:i], post_ops[i:]
    return post_ops, []


__all__ = ["AxisSpec", "Geometry", "PredictionModel", "TensorSpec", "derive_geometry", "load_model", "resolve_device"]
