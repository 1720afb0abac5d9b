"""Helpers shared by the checks that run a model beyond its test input (SIZ, DET, TIL, OUT, GPU, PRF)."""

from __future__ import annotations

import numpy as np

from zoo.bioimage.formats import CODE_EXECUTING_FORMATS, PREFERENCE
from zoo.validators.context import PackageUnderTest
from zoo.validators.probes import as_arrays, constant_inputs, noise_inputs, run_processed, shapes, tensor_axes
from zoo.validators.registry import Finding, Rule, skipped

# cheapest first on a CPU: the format a check that needs only one runs with
SPEED_ORDER = PREFERENCE["cpu"]


def formats_to_run(pkg: PackageUnderTest, rule_: Rule) -> tuple[list[str], Finding | None]:
    """The weight formats that ran on the test input, or a finding saying why there are none."""
    if any(loc.startswith(("inputs", "outputs", "test_")) for loc in pkg.file_problems):
        return [], skipped(rule_, "not run: test tensors are unavailable (see FIL findings)")
    runnable = pkg.runnable_formats()
    if not runnable:
        code = [wf for wf in pkg.weight_formats if wf in CODE_EXECUTING_FORMATS]
        reason = f" ({', '.join(code)} needs --trust)" if code else ""
        return [], skipped(rule_, f"not run: no weight format can be run here{reason}")
    working = pkg.working_formats()
    if not working:
        return [], skipped(
            rule_, f"not run: no weight format ran on the test input ({', '.join(runnable)}; see REP001)"
        )
    return working, None


def fastest(formats: list[str]) -> str:
    return sorted(formats, key=lambda wf: SPEED_ORDER.index(wf) if wf in SPEED_ORDER else len(SPEED_ORDER))[0]


def descr_v05_or_skip(pkg: PackageUnderTest, rule_: Rule) -> tuple[object | None, Finding | None]:
    descr5 = pkg.descr_v05
    if descr5 is None:
        return None, skipped(
            rule_,
            f"not run: the format {pkg.descr.format_version} description could not be "
            "converted to format 0.5 to resolve its sizes",
        )
    return descr5, None


# simple inputs of the smallest valid size: a blank field (the test input's mean) and uniform noise over its range
PROBES = {"constant image": constant_inputs, "noise": noise_inputs}


def probe_outputs(pkg: PackageUnderTest, descr5, weight_format: str, name: str) -> dict[str, np.ndarray]:
    """Outputs of `weight_format` on probe `name` through the rdf's pre/post-processing, run once (OUT001,
    OUT002 and XFM001 share them); a failure is raised again on every call."""

    def run():
        test_inputs = as_arrays(pkg.test_input_sample(), tensor_axes(descr5, "inputs"))
        arrays = PROBES[name](test_inputs, shapes(descr5, 0)[0])
        return run_processed(pkg.pipeline(weight_format), arrays, descr5, sample_id=name)

    return pkg.memo(("probe", name, weight_format), run)


def error_text(error: BaseException, limit: int = 300) -> str:
    return f"{type(error).__name__}: {str(error).strip()[:limit]}"


__all__ = ["PROBES", "SPEED_ORDER", "descr_v05_or_skip", "error_text", "fastest", "formats_to_run", "probe_outputs"]
