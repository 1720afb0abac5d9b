"""OUT: what the model gives stays within what the rdf promises (OUT001: the declared data range or values) and
is a number (OUT002: no NaN or Inf), on the test input and on two simple probes of the smallest valid size, a
constant image (the test input's mean everywhere) and uniform noise over the test input's range, all through the
rdf's pre- and post-processing. A constant image is where a normalisation by a zero spread divides by zero: it
probes the processing more than the weights, so it runs with one weight format (the fastest), noise with all."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from zoo.validators.checks.runtime import (
    PROBES,
    descr_v05_or_skip,
    error_text,
    fastest,
    formats_to_run,
    probe_outputs,
)
from zoo.validators.context import PackageUnderTest
from zoo.validators.probes import as_arrays, tensor_axes
from zoo.validators.registry import Finding, failed, passed, rule, skipped

logger = logging.getLogger(__name__)

RANGE_SLACK = 1e-6  # relative to max(1, |bound|): float rounding at the bound is not a violation


ONE_FORMAT_PROBES = ("constant image",)


def output_cases(pkg: PackageUnderTest, descr5, weight_format: str, formats: list[str]) -> dict[str, object]:
    """{case: outputs as arrays, or the exception the run raised} for the test input and the probes."""
    cases: dict[str, object] = {"test input": as_arrays(pkg.test_output(weight_format), tensor_axes(descr5, "outputs"))}
    for name in PROBES:
        if name in ONE_FORMAT_PROBES and weight_format != fastest(formats):
            continue
        try:
            cases[name] = probe_outputs(pkg, descr5, weight_format, name)
        except Exception as e:
            logger.debug("%s probe failed with %s", name, weight_format, exc_info=True)
            cases[name] = e
    return cases


def _prepare(pkg: PackageUnderTest, rule_):
    formats, skip = formats_to_run(pkg, rule_)
    if skip:
        return [], None, skip
    descr5, skip = descr_v05_or_skip(pkg, rule_)
    return formats, descr5, skip


@rule(
    "OUT002",
    "error",
    "outputs hold no NaN or Inf, on the test input and on a constant and a noise image",
    "Guard divisions and logarithms (e.g. add eps to a normalisation's spread), or fix the pre-processing that "
    "fails on a blank image.",
    "outputs",
)
def check_outputs_finite(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_outputs_finite.rule
    formats, descr5, skip = _prepare(pkg, rule_)
    if skip:
        yield skip
        return
    for weight_format in formats:
        location = f"weights.{weight_format}"
        cases = output_cases(pkg, descr5, weight_format, formats)
        problems = 0
        for case, outputs in cases.items():
            if isinstance(outputs, Exception):
                problems += 1
                yield failed(
                    rule_, f"{weight_format} failed on the {case} probe ({error_text(outputs)})", location, case=case
                )
                continue
            for output_id, array in outputs.items():
                if not np.issubdtype(array.dtype, np.floating):
                    continue
                n_nan, n_inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
                if n_nan or n_inf:
                    problems += 1
                    yield failed(
                        rule_,
                        f"{case}: outputs[{output_id}] holds {n_nan} NaN and {n_inf} Inf of {array.size} values",
                        f"{location}/outputs[{output_id}]",
                        case=case,
                        nan=n_nan,
                        inf=n_inf,
                        size=int(array.size),
                    )
        if not problems:
            yield passed(
                rule_, f"{weight_format}: every output finite on {', '.join(cases)}", location, cases=list(cases)
            )


def declared_values(tensor) -> list[tuple] | None:
    """Per channel (or one for all): ("range", low, high) with None for open ends, or ("values", allowed); None
    when the rdf declares nothing to check."""
    data = getattr(tensor, "data", None)
    if data is None:  # format 0.4
        low, high = getattr(tensor, "data_range", None) or (None, None)
        entries = [("range", _bound(low), _bound(high))]
    else:
        entries = []
        for item in data if isinstance(data, (list, tuple)) else [data]:
            if getattr(item, "values", None) is not None:
                entries.append(("values", tuple(item.values)))
            else:
                low, high = getattr(item, "range", None) or (None, None)
                entries.append(("range", _bound(low), _bound(high)))
    if all(entry == ("range", None, None) for entry in entries):
        return None
    return entries


def _bound(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _violations(array: np.ndarray, declared: tuple) -> tuple[int, str]:
    """(number of values outside the declaration, what it is)."""
    values = array[~np.isnan(array)] if np.issubdtype(array.dtype, np.floating) else array.ravel()
    if declared[0] == "values":
        outside = int((~np.isin(values, np.asarray(declared[1]))).sum())
        return outside, f"one of {list(declared[1])}"
    _, low, high = declared
    outside = 0
    if low is not None:
        outside += int((values < low - RANGE_SLACK * max(1.0, abs(low))).sum())
    if high is not None:
        outside += int((values > high + RANGE_SLACK * max(1.0, abs(high))).sum())
    return outside, f"[{'-∞' if low is None else f'{low:g}'}, {'∞' if high is None else f'{high:g}'}]"


@rule(
    "OUT001",
    "error",
    "outputs stay within the declared data range (or values)",
    "Declare the range the model really produces in outputs[].data.range, or add post-processing (e.g. sigmoid, "
    "clip) that keeps the outputs within it.",
    "outputs",
)
def check_outputs_in_range(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_outputs_in_range.rule
    formats, descr5, skip = _prepare(pkg, rule_)
    if skip:
        yield skip
        return
    declared = {str(getattr(t, "id", None) or t.name): declared_values(t) for t in pkg.descr.outputs}
    if not any(declared.values()):
        yield skipped(rule_, "not run: no output declares a data range or values")
        return
    axes = {t.tensor_id: t for t in tensor_axes(descr5, "outputs")}
    for weight_format in formats:
        location = f"weights.{weight_format}"
        cases = output_cases(pkg, descr5, weight_format, formats)
        problems, observed = 0, {}
        for case, outputs in cases.items():
            if isinstance(outputs, Exception):
                continue  # OUT002 reports it
            for output_id, array in outputs.items():
                entries = declared.get(output_id)
                if not entries:
                    continue
                channel = axes[output_id].index("channel")
                parts = (
                    [(None, array, entries[0])]
                    if len(entries) == 1 or channel is None
                    else [(c, np.take(array, c, axis=channel), entry) for c, entry in enumerate(entries)]
                )
                finite = array[np.isfinite(array)] if np.issubdtype(array.dtype, np.floating) else array
                if finite.size:
                    low, high = observed.get(output_id, (np.inf, -np.inf))
                    observed[output_id] = (min(low, float(finite.min())), max(high, float(finite.max())))
                for channel_index, values, entry in parts:
                    outside, wanted = _violations(values, entry)
                    if outside:
                        problems += 1
                        which = f" channel {channel_index}" if channel_index is not None else ""
                        found = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
                        yield failed(
                            rule_,
                            f"{case}: outputs[{output_id}]{which} has {outside} of {values.size} "
                            f"values outside {wanted} (found {float(found.min()):.6g} … "
                            f"{float(found.max()):.6g})",
                            f"{location}/outputs[{output_id}]",
                            case=case,
                            outside=outside,
                            declared=wanted,
                            min=float(found.min()),
                            max=float(found.max()),
                        )
        if not problems:
            ranges = "; ".join(f"outputs[{k}] {v[0]:.4g} … {v[1]:.4g}" for k, v in observed.items())
            yield passed(
                rule_,
                f"{weight_format}: within the declared range on {', '.join(cases)} ({ranges})",
                location,
                observed={k: list(v) for k, v in observed.items()},
            )
