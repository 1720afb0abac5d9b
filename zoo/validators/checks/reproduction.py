"""REP: each weight format reproduces the package's test outputs from its test inputs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from copy import deepcopy

import numpy as np

from zoo.bioimage.formats import CODE_EXECUTING_FORMATS
from zoo.bioimage.instances import is_instance_output
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed, rule, skipped

logger = logging.getLogger(__name__)

DEFAULT_RTOL, DEFAULT_ATOL, DEFAULT_PPM = 1e-3, 1e-3, 100.0


def tolerance(descr, weight_format: str, output_id: str) -> tuple[float, float, float]:
    """(rtol, atol, mismatched elements per million): the model's own where it states them."""
    bioimageio = getattr(getattr(descr, "config", None), "bioimageio", None)
    for entry in getattr(bioimageio, "reproducibility_tolerance", None) or []:
        if (not entry.weights_formats or weight_format in entry.weights_formats) and (
            not entry.output_ids or output_id in entry.output_ids
        ):
            return entry.relative_tolerance, entry.absolute_tolerance, entry.mismatched_elements_per_million
    return DEFAULT_RTOL, DEFAULT_ATOL, DEFAULT_PPM


def compare_reproduction(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> dict:
    """Count, ppm and the worst element, where an element mismatches when |a − e| > atol + rtol·|e|."""
    actual = actual.astype(np.float64)
    expected = expected.astype(np.float64)
    excess = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    excess = np.where(np.isnan(excess), np.inf, excess)
    mismatched = int((excess > 0).sum())
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
    return {
        "mismatched": mismatched,
        "ppm": mismatched / max(expected.size, 1) * 1e6,
        "max_abs": float(np.nanmax(np.abs(actual - expected))) if expected.size else 0.0,
        "worst_index": [int(i) for i in worst],
        "worst_actual": float(actual[worst]),
        "worst_expected": float(expected[worst]),
    }


def run_on_test_input(pipeline, inputs):
    """Pre-process, run the model on the test input as it is (no padding, no cropping), post-process:
    the test tensors were made this way, and so does the reference validator."""
    sample = deepcopy(inputs)
    pipeline.apply_preprocessing(sample)
    outputs = pipeline.predict_sample_without_blocking(
        sample,
        skip_preprocessing=True,
        skip_postprocessing=True,
        skip_input_padding=True,
        skip_output_cropping=True,
    )
    pipeline.apply_postprocessing(outputs)
    return outputs


@rule(
    "REP001",
    "error",
    "each weight format reproduces the test outputs",
    "Re-create the test outputs with this weight format, or re-export the weights so that they match.",
    "reproduction",
)
def check_reproduces_test_outputs(pkg: PackageUnderTest) -> Iterator[Finding]:
    from bioimageio.core.digest_spec import get_test_output_sample

    rule_ = check_reproduces_test_outputs.rule
    if any(loc.startswith(("inputs", "outputs", "test_")) for loc in pkg.file_problems):
        yield skipped(rule_, "test tensors are unavailable (see FIL findings)")
        return
    try:
        pkg.test_input_sample()
        expected = get_test_output_sample(pkg.descr)
    except Exception as e:
        yield failed(rule_, f"test tensors could not be loaded ({type(e).__name__}: {e})")
        return
    instance_labels = {str(t.id) for t in getattr(pkg.descr_v05, "outputs", ()) if is_instance_output(t)}
    for weight_format in pkg.weight_formats:
        location = f"weights.{weight_format}"
        unavailable = [why for loc, why in pkg.file_problems.items() if loc.startswith(location)]
        if unavailable:
            yield skipped(rule_, f"{weight_format} not run: {'; '.join(unavailable)}", location)
            continue
        if weight_format in CODE_EXECUTING_FORMATS and not pkg.trust:
            yield skipped(
                rule_,
                f"{weight_format} not run: loading it executes code from the package; pass --trust to run it",
                location,
            )
            continue
        try:
            outputs = pkg.test_output(weight_format)  # loaded, run and measured once, reused by later checks
        except Exception as e:
            logger.debug("running %s failed", weight_format, exc_info=True)
            yield failed(
                rule_,
                f"{weight_format} failed to run on the test input ({type(e).__name__}: {str(e).strip()[:500]})",
                location,
            )
            continue
        for member_id, expected_tensor in expected.members.items():
            rtol, atol, ppm_budget = tolerance(pkg.descr, weight_format, str(member_id))
            actual_tensor = outputs.members.get(member_id)
            where = f"{location}/outputs[{member_id}]"
            if str(member_id) in instance_labels:  # numbers name objects: REP002 compares object by object
                yield skipped(rule_, f"outputs[{member_id}] is an instance label image: see REP002", where)
                continue
            if actual_tensor is None:
                yield failed(rule_, f"{weight_format} produced no output {member_id!r}", where)
                continue
            actual = actual_tensor.data.to_numpy()
            wanted = expected_tensor.data.to_numpy()
            if actual.shape != wanted.shape:
                yield failed(rule_, f"outputs[{member_id}] shape {actual.shape}, expected {wanted.shape}", where)
                continue
            result = compare_reproduction(actual, wanted, rtol, atol)
            if pkg.keep_artifacts is not None:
                pkg.keep_artifacts.mkdir(parents=True, exist_ok=True)
                np.save(pkg.keep_artifacts / f"{weight_format}_{member_id}.npy", actual)
            details = {**result, "rtol": rtol, "atol": atol, "ppm_budget": ppm_budget}
            if result["ppm"] > ppm_budget:
                yield failed(
                    rule_,
                    f"outputs[{member_id}]: {result['mismatched']} elements ({result['ppm']:.0f} ppm) differ by more "
                    f"than {atol:g} + {rtol:g}·|expected|, budget {ppm_budget:g} ppm; worst at "
                    f"{tuple(result['worst_index'])}: {result['worst_actual']:.6g}, expected "
                    f"{result['worst_expected']:.6g}",
                    where,
                    **details,
                )
            else:
                yield passed(
                    rule_,
                    f"outputs[{member_id}] reproduced: {result['mismatched']} mismatched elements, "
                    f"max |Δ| {result['max_abs']:.2e}",
                    where,
                    **details,
                )
