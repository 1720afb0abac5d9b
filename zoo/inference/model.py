"""A package made ready to predict: its tensors and weights read faithfully from the rdf (formats 0.3-0.5,
zoo.bioimage), the weight format chosen for the device, the runtime that executes it, and the rdf's pre/post-processing
from bioimageio.core, which reads the description in its own format version (0.4 or 0.5), never upgraded."""

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

from zoo.bioimage.devices import resolve_device
from zoo.bioimage.files import is_url, sha256_of
from zoo.bioimage.formats import CODE_EXECUTING_FORMATS, RUNTIMES
from zoo.bioimage.formats import PREFERENCE as WEIGHT_PRIORITY
from zoo.bioimage.rdf import RdfError, read_rdf
from zoo.bioimage.rdf_weights import WeightsEntry, weight_entries
from zoo.bioimage.source import OpenedSource, open_source, path_in_package
from zoo.bioimage.tensors import AxisSpec, TensorSpec, ValidSizes, tensor_specs
from zoo.errors import PredictionError, SourceError, WeightsError

logger = logging.getLogger(__name__)

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


@dataclass
class PredictionModel:
    opened: OpenedSource
    descr: Any  # bioimageio.spec ModelDescr in the package's own format version (v0_4 or v0_5)
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    geometry: Geometry
    weight_format: str
    device: str
    backend: Any  # zoo.bioimage.runtimes.Backend
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
        rdf = _read_rdf(opened)
        descr = _load_description(opened)
        _refuse_custom_code(descr, trust)
        inputs, outputs = tensor_specs(rdf)
        geometry = derive_geometry(inputs, outputs)
        requested, device = device, resolve_device(device)
        try:
            weight_format, backend, not_used, workers = _load_weights(descr, rdf, opened, weights, device, trust)
        except WeightsError as e:
            if requested != "auto" or device == "cpu":
                raise
            # --device auto on a GPU machine: weights that cannot run on CUDA here still run on the CPU
            logger.warning("no weights usable on CUDA (%s); predicting on the CPU", e)
            device = "cpu"
            weight_format, backend, not_used, workers = _load_weights(descr, rdf, opened, weights, device, trust)
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


def _read_rdf(opened: OpenedSource) -> dict:
    try:
        return read_rdf(opened.rdf_path)
    except (RdfError, OSError) as e:
        raise SourceError(f"{opened.source}: {e}: run `zoo validate` on it") from e


def _load_description(opened: OpenedSource):
    """The description bioimageio.core runs (processing, its model adapters), in the package's own format version:
    an upgrade to 0.5 rejects valid 0.4 packages (a halo on a fixed-size output, an invalid `cite` URL)."""
    from bioimageio.spec import InvalidDescr, load_description

    try:
        descr = load_description(opened.rdf_path, perform_io_checks=False, format_version="discover")
    except Exception as e:
        raise SourceError(
            f"bioimageio.spec cannot read {opened.source} ({type(e).__name__}: {e}): run `zoo validate` on it"
        ) from e
    if isinstance(descr, InvalidDescr):
        from zoo.bioimage.spec import spec_errors

        errors = spec_errors(descr)
        first = f": {errors[0][0] or 'rdf'}: {errors[0][1]}" if errors else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SourceError(
            f"{opened.source} is not a valid bioimage.io description{first}{more}: run `zoo validate` on it"
        )
    if descr.type != "model":
        raise SourceError(f"{opened.source} describes a {descr.type}, not a model: give a model package")
    from zoo.bioimage.spec import choose_keras_backend

    choose_keras_backend(descr)  # before bioimageio.core is imported: it sets a Keras backend of its own
    return descr


def _refuse_custom_code(descr, trust: bool) -> None:
    """Format 0.5 processing may name a Python class shipped in the package; 0.4 has no such step."""
    from bioimageio.spec.model import v0_5

    if trust or not isinstance(descr, v0_5.ModelDescr):
        return
    for kind, tensors in (("inputs", descr.inputs), ("outputs", descr.outputs)):
        for tensor in tensors:
            steps = tensor.preprocessing if kind == "inputs" else tensor.postprocessing
            for i, step in enumerate(steps):
                if isinstance(step, v0_5.CustomProcessingDescr):
                    where = f"{kind}[{tensor.id}].{'pre' if kind == 'inputs' else 'post'}processing[{i}]"
                    raise WeightsError(
                        f"{where} runs Python code shipped in the package ({step.source}): "
                        "pass --trust if you trust its authors"
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


def _weight_path(entry: WeightsEntry, opened: OpenedSource) -> Path | None:
    """The weight file inside the package; None for a URL or a path that leads outside it (never opened)."""
    if entry.source is None or is_url(entry.source):
        return None
    return path_in_package(opened.root, entry.source)[0]


def _load_weights(
    descr, rdf: dict, opened: OpenedSource, requested: str | None, device: str, trust: bool
) -> tuple[str, Any, dict[str, str], int]:
    """The first usable weights in the device's order of preference. The files come from the raw reading (0.3's
    `pytorch_script` is torchscript); bioimageio.core's adapters get the description in its own format."""
    present = weight_entries(rdf)
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


def _unusable(weight_format: str, entry: WeightsEntry, opened: OpenedSource, device: str, trust: bool) -> str | None:
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
    if entry.source is None:
        return "the rdf names no weight file"
    if is_url(entry.source):
        return f"{entry.source} is only at a URL; predict works offline"
    path, refused = path_in_package(opened.root, entry.source)
    if refused is not None:
        return f"{refused}: not opened"
    if not path.exists():
        return f"{path.name} is missing from the package"
    expected = entry.sha256
    if expected is not None and path.is_file() and sha256_of(path) != str(expected):
        return f"{path.name} does not match its sha256 in the rdf (the file was changed): run `zoo validate`"
    if not trust:
        from zoo.bioimage.weight_scan import UnreadableWeights, acting_ops

        try:
            acting = acting_ops(weight_format, path, opened.root)
        except UnreadableWeights as e:
            return f"{path.name} cannot be read as {weight_format} ({e})"
        if acting:
            return f"its graph calls {', '.join(sorted({a.op for a in acting}))}: pass --trust to run it anyway"
    return None


# zoo's own backends where they are tuned for speed; every other format through bioimageio.core's adapters,
# which know third-party layouts (library architectures, TF signatures, Keras)
ZOO_BACKENDS = ("onnx", "torchscript")


def _workers(weight_format: str, device: str) -> int:
    cores = os.cpu_count() or 1
    return min(ONNX_CPU_WORKERS, cores) if weight_format == "onnx" and device == "cpu" else 1


def _backend(weight_format: str, entry: WeightsEntry, opened: OpenedSource, descr, device: str, workers: int = 1):
    from zoo.bioimage.runtimes import load_backend

    if weight_format == "onnx" and workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        return load_backend(weight_format, _weight_path(entry, opened), device=device, threads=threads)
    if weight_format in ZOO_BACKENDS:
        return load_backend(weight_format, _weight_path(entry, opened), device=device)
    from zoo.bioimage.runtimes.core_backend import BioimageioCoreBackend

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
