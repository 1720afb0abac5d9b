"""DJE: what Fiji's deepImageJ computes on the test input, emulated around the package's own model
(zoo.validators.deepimagej.emulation), compared with the test output as the nightly Fiji check compares them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import PurePosixPath

import numpy as np

from zoo.bioimage.formats import CODE_EXECUTING_FORMATS
from zoo.bioimage.rdf_tensors import TensorView, tensors
from zoo.bioimage.rdf_weights import RUNNABLE_FORMATS_V05
from zoo.validators.context import PackageUnderTest
from zoo.validators.deepimagej.emulation import (
    FIJI_ATOL,
    FIJI_RTOL,
    NotEmulated,
    apply_processing,
    cast_output,
    compare_fiji,
    run_tiled,
)
from zoo.validators.registry import Finding, failed, passed, rule, skipped

logger = logging.getLogger(__name__)


def tensor_file(pkg: PackageUnderTest, tensor: TensorView):
    """The tensor's test file (format 0.5 `test_tensor`, 0.4 `test_inputs`/`test_outputs`), None when absent."""
    entry = tensor.raw.get("test_tensor")
    source = entry.get("source") if isinstance(entry, dict) else None
    if source is None:
        listed = (pkg.rdf or {}).get("test_inputs" if tensor.kind == "inputs" else "test_outputs")
        if isinstance(listed, list) and tensor.index < len(listed):
            source = listed[tensor.index]
    if not isinstance(source, str) or source.startswith(("http://", "https://")):
        return None
    path = pkg.root / PurePosixPath(source)
    return path if path.is_file() else None


def emulation_formats(pkg: PackageUnderTest) -> list[str]:
    """The formats deepImageJ could pick, that may be run here; pytorch_state_dict only when it is the only one."""
    jdll = [wf for wf in pkg.runnable_formats() if wf in RUNNABLE_FORMATS_V05]
    others = [wf for wf in jdll if wf != "pytorch_state_dict"]
    return others or jdll


def _model_runner(pkg: PackageUnderTest, weight_format: str, input_tensor: TensorView):
    """Run the pipeline's model on one pre-processed tile: no bioimageio pre/post-processing, padding or cropping."""
    from bioimageio.core import Sample, Tensor

    pipeline = pkg.pipeline(weight_format)
    descr = pkg.descr_v05 or pkg.descr  # format 0.4 axes are a string; bioimageio.core names them as 0.5 does
    dims = tuple(str(a.id) for a in descr.inputs[0].axes)
    output_dims = {str(o.id): tuple(str(a.id) for a in o.axes) for o in descr.outputs}

    def run(tile: np.ndarray) -> dict[str, np.ndarray]:
        sample = Sample(members={input_tensor.tensor_id: Tensor.from_numpy(tile, dims=dims)}, stat={}, id=None)
        result = pipeline.predict_sample_without_blocking(
            sample,
            skip_preprocessing=True,
            skip_postprocessing=True,
            skip_input_padding=True,
            skip_output_cropping=True,
        )
        return {
            str(key): value.transpose(output_dims[str(key)]).data.to_numpy() for key, value in result.members.items()
        }

    return run


@rule(
    "DJE001",
    "wrong",
    "deepImageJ's computation reproduces the test outputs",
    "Use processing deepImageJ computes alike (see DIJ29/DIJ30) and re-create the test outputs, or accept that "
    "Fiji gives different numbers.",
    "deepimagej-emulation",
    target="deepimagej",
)
def check_deepimagej_emulation_reproduces(pkg: PackageUnderTest) -> Iterator[Finding]:
    """A failure of zoo's own emulation (a bug, an array it cannot read) is reported as skipped with the reason: it
    proves nothing about the package, so it must not become deepImageJ's verdict."""
    rule_ = check_deepimagej_emulation_reproduces.rule
    try:
        yield from _emulate(pkg, rule_)
    except Exception as e:
        logger.debug("the deepImageJ emulation failed", exc_info=True)
        yield skipped(
            rule_,
            f"not emulated: zoo's emulation failed ({type(e).__name__}: {str(e).strip()[:300]}); "
            "this says nothing about the package, please report it",
            "",
            internal_error=f"{type(e).__name__}: {str(e).strip()[:300]}",
        )


def _emulated_input(pkg: PackageUnderTest) -> np.ndarray:
    """The single test input as deepImageJ pre-processes it (NotEmulated when it cannot be), computed once."""

    def compute() -> np.ndarray:
        [tensor] = tensors(pkg.rdf, "inputs")
        return apply_processing(tensor, np.load(tensor_file(pkg, tensor)).astype(np.float32))

    return pkg.memo("deepimagej emulated input", compute)


def emulated_outputs(pkg: PackageUnderTest, weight_format: str) -> dict[str, np.ndarray]:
    """What deepImageJ computes from the test input with `weight_format`: its pre-processing, tiling, model and
    post-processing; run once per format (the isolated validation starts it early, beside the other runs)."""

    def compute() -> dict[str, np.ndarray]:
        inputs, outputs = tensors(pkg.rdf, "inputs"), tensors(pkg.rdf, "outputs")
        raw = run_tiled(inputs[0], outputs, _emulated_input(pkg), _model_runner(pkg, weight_format, inputs[0]))
        return {o.tensor_id: cast_output(o, apply_processing(o, raw[o.tensor_id])) for o in outputs}

    return pkg.memo(("deepimagej emulation", weight_format), compute)


def start_emulation(pkg: PackageUnderTest, weight_format: str) -> None:
    """Run the emulation of `weight_format` now when DJE001 will ask for it (one input, test tensors present, a
    format deepImageJ runs); whatever it raises stays memoised for DJE001 to report."""
    inputs = tensors(pkg.rdf, "inputs")
    if len(inputs) != 1 or weight_format not in emulation_formats(pkg) or tensor_file(pkg, inputs[0]) is None:
        return
    if any(loc.startswith(("inputs", "outputs", "test_")) for loc in pkg.file_problems):
        return
    try:
        emulated_outputs(pkg, weight_format)
    except Exception:  # memoised: DJE001 reports it
        logger.debug("emulating %s failed", weight_format, exc_info=True)


def _emulate(pkg: PackageUnderTest, rule_) -> Iterator[Finding]:
    inputs, outputs = tensors(pkg.rdf, "inputs"), tensors(pkg.rdf, "outputs")
    if len(inputs) != 1:
        yield skipped(rule_, f"not emulated: {len(inputs)} inputs, deepImageJ runs models with one (DIJ18)")
        return
    if any(loc.startswith(("inputs", "outputs", "test_")) for loc in pkg.file_problems):
        yield skipped(rule_, "not emulated: test tensors are unavailable (see FIL findings)")
        return
    input_path = tensor_file(pkg, inputs[0])
    expected_paths = {o.tensor_id: tensor_file(pkg, o) for o in outputs}
    missing = [tid for tid, path in expected_paths.items() if path is None]
    if input_path is None or missing:
        yield skipped(rule_, f"not emulated: test tensor files missing ({'input' if input_path is None else missing})")
        return
    formats = emulation_formats(pkg)
    if not formats:
        code = [wf for wf in pkg.weight_formats if wf in CODE_EXECUTING_FORMATS]
        reason = f" ({', '.join(code)} needs --trust)" if code else ""
        yield skipped(rule_, f"not emulated: no weight format deepImageJ runs can be run here{reason}")
        return
    try:
        _emulated_input(pkg)
    except NotEmulated as e:
        yield skipped(rule_, f"not emulated: {e}", inputs[0].location)
        return
    for weight_format in formats:
        location = f"weights.{weight_format}"
        try:
            results = emulated_outputs(pkg, weight_format)
        except NotEmulated as e:
            yield skipped(rule_, f"{weight_format} not emulated: {e}", location)
            continue
        except Exception as e:  # the model or zoo's emulation around it: neither is a verdict on deepImageJ's numbers
            logger.debug("emulating %s failed", weight_format, exc_info=True)
            why = f"{type(e).__name__}: {str(e).strip()[:300]}"
            yield skipped(
                rule_,
                f"{weight_format} not emulated: running it as deepImageJ runs it failed here ({why}); REP001 says "
                "whether the model itself runs, this says nothing about Fiji's numbers",
                location,
                weight_format=weight_format,
                internal_error=why,
            )
            continue
        for output in outputs:
            expected = np.load(expected_paths[output.tensor_id])
            actual = results[output.tensor_id]
            where = f"{location}/outputs[{output.tensor_id}]"
            if actual.shape != expected.shape:
                yield failed(
                    rule_,
                    f"outputs[{output.tensor_id}]: deepImageJ gives shape {actual.shape}, the test "
                    f"output is {expected.shape}: Fiji gives different numbers",
                    where,
                    weight_format=weight_format,
                    actual_shape=list(actual.shape),
                    expected_shape=list(expected.shape),
                )
                continue
            result = compare_fiji(actual, expected)
            details = {**result, "weight_format": weight_format, "atol": FIJI_ATOL, "rtol": FIJI_RTOL}
            if result["mismatched"]:
                yield failed(
                    rule_,
                    f"outputs[{output.tensor_id}]: {result['mismatched']} of {result['size']} pixels "
                    f"differ by more than {FIJI_ATOL:g} + {FIJI_RTOL:g}·|expected| as deepImageJ "
                    f"computes them; worst at {tuple(result['worst_index'])}: "
                    f"{result['worst_actual']:.6g}, expected {result['worst_expected']:.6g}: Fiji "
                    "gives different numbers",
                    where,
                    **details,
                )
            else:
                yield passed(
                    rule_,
                    f"outputs[{output.tensor_id}]: deepImageJ's computation matches the test output, "
                    f"max |Δ| {result['max_abs']:.2e}",
                    where,
                    **details,
                )
