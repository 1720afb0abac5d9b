"""XFM: every weight format of a package computes the same thing, on the test input and on a noise input of the
smallest valid size (the probe OUT001/OUT002 run anyway, through the rdf's processing). The reference validator
compares each format with the test output only."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import combinations

from zoo.validators.checks.instances import compare_instances, instance_output_ids
from zoo.validators.checks.reproduction import compare_reproduction, tolerance
from zoo.validators.checks.runtime import error_text, probe_outputs
from zoo.validators.context import PackageUnderTest
from zoo.validators.probes import as_arrays, shape_text, tensor_axes
from zoo.validators.registry import Finding, failed, passed, rule, skipped

logger = logging.getLogger(__name__)

NOISE_CASE = "noise probe"


def instance_axes(pkg: PackageUnderTest, descr5, formats: list[str], cases: dict) -> dict[str, tuple[str, ...]]:
    """{output id: axis types} of the instance label outputs; their test-input arrays put in the described axis
    order (the post-processing may return its own)."""
    if descr5 is None:
        return {}
    axes = {t.tensor_id: t for t in tensor_axes(descr5, "outputs") if t.tensor_id in instance_output_ids(descr5)}
    for wf in formats:
        cases["test input"][wf].update(as_arrays(pkg.test_outputs[wf], list(axes.values())))
    return {output_id: t.types for output_id, t in axes.items()}


@rule(
    "XFM001",
    "error",
    "all weight formats agree with each other",
    "Re-export the formats that disagree from the same source weights.",
    "cross-format",
)
def check_formats_agree(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_formats_agree.rule
    formats = [wf for wf in pkg.runnable_formats() if wf in pkg.test_outputs]
    if len(formats) < 2:
        yield skipped(rule_, f"{len(formats)} runnable weight format(s): nothing to compare")
        return
    cases = {
        "test input": {
            wf: {str(k): v.data.to_numpy() for k, v in pkg.test_outputs[wf].members.items()} for wf in formats
        }
    }
    descr5 = pkg.descr_v05
    if descr5 is not None:
        try:
            cases[NOISE_CASE] = {wf: probe_outputs(pkg, descr5, wf, "noise") for wf in formats}
        except Exception as e:
            logger.debug("the noise probe failed", exc_info=True)
            yield failed(rule_, f"a weight format failed on a noise input of the smallest valid size ({error_text(e)})")
    labels = instance_axes(pkg, descr5, formats, cases)  # instance label images are compared object by object
    for first, second in combinations(formats, 2):
        worst, problems = 0.0, 0
        for case, outputs in cases.items():
            for member_id, a in outputs[first].items():
                rtol, atol, ppm_budget = tolerance(pkg.descr, second, str(member_id))
                b = outputs[second].get(member_id)
                where = f"{first} vs {second}/outputs[{member_id}]"
                if b is None or a.shape != b.shape:
                    problems += 1
                    yield failed(
                        rule_, f"{case}: shapes {a.shape} and {None if b is None else b.shape} differ", where, case=case
                    )
                    continue
                if member_id in labels:
                    result = compare_instances(b, a, labels[member_id])
                    if not result["reproduced"]:
                        problems += 1
                        yield failed(rule_, f"{case}: {result['first_problem']}", where, case=case, **result)
                    continue
                result = compare_reproduction(b, a, rtol, atol)
                worst = max(worst, result["max_abs"])
                if result["ppm"] > ppm_budget:
                    problems += 1
                    yield failed(
                        rule_,
                        f"{case} ({shape_text(a.shape)}): {result['mismatched']} elements "
                        f"({result['ppm']:.0f} ppm) differ, worst at {tuple(result['worst_index'])}: "
                        f"{result['worst_actual']:.6g} vs {result['worst_expected']:.6g}",
                        where,
                        case=case,
                        **result,
                    )
        if not problems:
            yield passed(
                rule_,
                f"{first} and {second} agree: max |Δ| {worst:.2e} over {', '.join(cases)}",
                f"{first} vs {second}",
                max_abs=worst,
                cases=list(cases),
            )
