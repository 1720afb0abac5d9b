"""A package made ready to predict: its tensors and weights read faithfully from the rdf (formats 0.3-0.5,
zoo.bioimage), the weight format chosen for the device, the runtime that executes it, and the rdf's pre/post-processing
from bioimageio.core, which reads the description in its own format version (0.4 or 0.5), never upgraded. The
geometry that tiling needs is derived by zoo.inference.geometry."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass, field
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
from zoo.bioimage.tensors import TensorSpec, tensor_specs
from zoo.errors import PredictionError, SourceError, WeightsError
from zoo.inference.geometry import Geometry, derive_geometry
from zoo.inference.instances import context_margin, split_instance_ops, widen_for_instances

logger = logging.getLogger(__name__)

# onnxruntime on CPU: tiles run side by side, each call on a share of the cores; this beats one call on all
# cores when other work competes for them (pre-processing, writing, other processes) and is no slower otherwise
ONNX_CPU_WORKERS = 2


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
    # outputs whose star-convex post-processing runs tile by tile (zoo.inference.instances), and the context margin
    # their tiles' halo was widened by
    instance_outputs: dict = field(default_factory=dict)
    instance_margin: int = 0

    @property
    def streams_zarr(self) -> bool:
        """Whether a Zarr image's outputs can stream tile by tile into Zarr: no post-processing that needs the whole
        output, no output without spatial axes, no instance labels (rendered once every tile's objects are in)."""
        return not self.deferred_post_ops and not self.geometry.non_spatial_outputs and not self.instance_outputs

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
        descr = load_description(opened)
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
        pre_ops, post_ops, measures = processing_ops(descr)
        tile_post, deferred = _split_post(post_ops)
        deferred, instance_outputs = split_instance_ops(outputs, deferred)  # found tile by tile, kept whole
        margin = context_margin(geometry) if instance_outputs else 0
        geometry = widen_for_instances(geometry, instance_outputs)
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
            instance_outputs=instance_outputs,
            instance_margin=margin,
        )
    except BaseException:
        opened.close()
        raise


def _read_rdf(opened: OpenedSource) -> dict:
    try:
        return read_rdf(opened.rdf_path)
    except (RdfError, OSError) as e:
        raise SourceError(f"{opened.source}: {e}: run `zoo validate` on it") from e


def load_description(opened: OpenedSource):
    """The description bioimageio.core runs (processing, its model adapters), in the package's own format version:
    an upgrade to 0.5 rejects valid 0.4 packages (a halo on a fixed-size output, an invalid `cite` URL)."""
    from bioimageio.spec import InvalidDescr
    from bioimageio.spec import load_description as load_spec_description

    try:
        descr = load_spec_description(opened.rdf_path, perform_io_checks=False, format_version="discover")
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
        reason = weights_problem(weight_format, entry, opened, device, trust)
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


def weights_problem(
    weight_format: str, entry: WeightsEntry, opened: OpenedSource, device: str, trust: bool
) -> str | None:
    """Why these weights are not loaded here, or None: the runtime first, then the file."""
    return _runtime_problem(weight_format, device, trust) or _file_problem(weight_format, entry, opened, trust)


def _runtime_problem(weight_format: str, device: str, trust: bool) -> str | None:
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
    return None


def _file_problem(weight_format: str, entry: WeightsEntry, opened: OpenedSource, trust: bool) -> str | None:
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
        return _acting_ops_problem(weight_format, path, opened)
    return None


def _acting_ops_problem(weight_format: str, path: Path, opened: OpenedSource) -> str | None:
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


def processing_ops(descr) -> tuple[list, list, set]:
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


__all__ = ["PredictionModel", "load_description", "load_model", "processing_ops", "weights_problem"]
