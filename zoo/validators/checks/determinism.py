"""DET: the same input gives the same output on every run. The reference validator only seeds its random
generators; a model that samples at inference (dropout left on, random noise) passes it and gives users different
answers each time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from zoo.validators.checks.reproduction import compare_reproduction, tolerance
from zoo.validators.checks.runtime import error_text, formats_to_run
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed, rule

logger = logging.getLogger(__name__)


@rule(
    "DET001",
    "error",
    "the same input gives the same output twice",
    "Remove randomness from inference (dropout or noise left active, e.g. F.dropout(..., training=True)); "
    "set deterministic algorithms for the runtime.",
    "determinism",
)
def check_deterministic(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_deterministic.rule
    formats, skip = formats_to_run(pkg, rule_)
    if skip:
        yield skip
        return
    for weight_format in formats:
        location = f"weights.{weight_format}"
        first = pkg.test_output(weight_format)
        try:
            second = pkg.repeated_test_output(weight_format)
        except Exception as e:
            logger.debug("second run of %s failed", weight_format, exc_info=True)
            yield failed(
                rule_,
                f"{weight_format} ran once on the test input but failed the second time ({error_text(e)})",
                location,
            )
            continue
        for member_id, tensor in first.members.items():
            where = f"{location}/outputs[{member_id}]"
            a = tensor.data.to_numpy()
            other = second.members.get(member_id)
            b = other.data.to_numpy() if other is not None else None
            if b is None or a.shape != b.shape:
                yield failed(
                    rule_,
                    f"outputs[{member_id}]: the second run gave "
                    f"{'no output' if b is None else f'shape {b.shape}'}, the first {a.shape}",
                    where,
                )
                continue
            if np.array_equal(a, b, equal_nan=np.issubdtype(a.dtype, np.floating)):
                yield passed(
                    rule_,
                    f"outputs[{member_id}]: bitwise identical on two runs of the test input",
                    where,
                    bitwise=True,
                    max_abs=0.0,
                )
                continue
            rtol, atol, ppm_budget = tolerance(pkg.descr, weight_format, str(member_id))
            result = compare_reproduction(b, a, rtol, atol)
            details = {**result, "bitwise": False, "rtol": rtol, "atol": atol, "ppm_budget": ppm_budget}
            if result["ppm"] > ppm_budget:
                yield failed(
                    rule_,
                    f"outputs[{member_id}]: two runs of the test input differ, max |Δ| "
                    f"{result['max_abs']:.3g}; {result['mismatched']} elements ({result['ppm']:.0f} "
                    f"ppm) over {atol:g} + {rtol:g}·|first|, worst at {tuple(result['worst_index'])}: "
                    f"{result['worst_expected']:.6g} then {result['worst_actual']:.6g}",
                    where,
                    **details,
                )
            else:
                yield passed(
                    rule_,
                    f"outputs[{member_id}]: not bitwise identical on two runs, max |Δ| "
                    f"{result['max_abs']:.2e}, within the reproduction tolerance ({atol:g} + "
                    f"{rtol:g}·|first|)",
                    where,
                    **details,
                )
