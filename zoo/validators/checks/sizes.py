"""Over 400 lines on purpose: three rules (SIZ001-003) that share one size plan and its runs, read together.

SIZ: the model runs on every valid input size it declares, not only the test input's, and behaves as the rdf
says: output shapes follow the size references (SIZ001), a smaller input's output equals the centre of a larger
one's beyond the declared halo (SIZ002), and a batch of two equals two batches of one (SIZ003).

The reference validator runs n = 0, 1, 2 and batch 1, 2 too, but compares only the shapes. Here every size is cut
from one pre-processed image (the test input mirrored or cropped to the largest size), and the model runs without
pre/post-processing, so that the values of different sizes are comparable: per-sample statistics would differ
between a crop and the whole."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from zoo.validators.checks.reproduction import compare_reproduction, tolerance
from zoo.validators.checks.runtime import descr_v05_or_skip, error_text, fastest, formats_to_run
from zoo.validators.context import PackageUnderTest
from zoo.validators.probes import (
    MAX_PROBE_ELEMENTS,
    as_arrays,
    batch_is_free,
    content_inputs,
    crop,
    parameterized_axes,
    preprocess,
    run_model,
    shape_text,
    shapes,
    size_parameters,
    stack_batch,
    tensor_axes,
)
from zoo.validators.registry import Finding, failed, passed, rule, skipped

logger = logging.getLogger(__name__)


@dataclass
class SizeCase:
    label: str  # "n=1", "n=0, batch 2"
    inputs: dict[str, np.ndarray]  # pre-processed model inputs
    expected: dict[str, tuple]  # output shapes the rdf describes (int, or an object with min/max)


@dataclass
class SizePlan:
    """The inputs of other sizes, cut from one pre-processed image so that their outputs are comparable."""

    cases: list[SizeCase] = field(default_factory=list)
    largest_n: int = 0
    starts: dict[str, tuple[int, ...]] = field(default_factory=dict)  # the n=0 input's place in the largest one
    why_one_size: str = ""  # why no larger input is run, when none is

    def case(self, label: str) -> SizeCase | None:
        return next((c for c in self.cases if c.label == label), None)


def size_plan(pkg: PackageUnderTest, descr5, weight_format: str) -> SizePlan:
    return pkg.memo("size plan", lambda: _make_plan(pkg, descr5, weight_format))


def _make_plan(pkg: PackageUnderTest, descr5, weight_format: str) -> SizePlan:
    plan = SizePlan()
    ns = size_parameters(descr5)
    smallest = sum(math.prod(shape) for shape in shapes(descr5, 0)[0].values())
    two = batch_is_free(descr5) and smallest <= MAX_PROBE_ELEMENTS
    if not parameterized_axes(descr5):
        plan.why_one_size = "input sizes are fixed"
    elif len(ns) == 1:
        plan.why_one_size = f"n=1 would exceed {MAX_PROBE_ELEMENTS} input elements"
    if len(ns) == 1 and not two:
        return plan  # the test input already covers the one valid shape
    plan.largest_n = max(ns)
    inputs = tensor_axes(descr5, "inputs")
    test_inputs = as_arrays(pkg.test_input_sample(), inputs)
    largest_shapes, _ = shapes(descr5, plan.largest_n)
    largest = preprocess(pkg.pipeline(weight_format), content_inputs(test_inputs, largest_shapes), descr5)
    steps = {key: size.step for key, size in parameterized_axes(descr5).items()}
    for n in sorted(ns, reverse=True):
        in_shapes, out_shapes = shapes(descr5, n)
        starts = {
            t.tensor_id: tuple(
                _start(largest_shapes[t.tensor_id][i], size, steps.get((t.tensor_id, axis_id)), centre=n == 0)
                for i, (axis_id, size) in enumerate(zip(t.ids, in_shapes[t.tensor_id]))
            )
            for t in inputs
        }
        if n == 0:
            plan.starts = starts
        plan.cases.append(SizeCase(f"n={n}", crop(largest, starts, in_shapes), out_shapes))
    if two:
        single = plan.case("n=0")
        plan.cases.append(SizeCase("n=0, batch 2", stack_batch(single.inputs, inputs, 2), shapes(descr5, 0, 2)[1]))
    return plan


def _start(large: int, small: int, step: int | None, centre: bool) -> int:
    """Where a smaller input lies in the larger one: centred for n=0 (on the size step, so that a U-Net's
    pooling grid stays aligned), at the origin otherwise."""
    if large == small or not centre:
        return 0
    start = (large - small) // 2
    return start - start % step if step else start


def size_runs(pkg: PackageUnderTest, plan: SizePlan, descr5, weight_format: str) -> dict[str, object]:
    """{case label: outputs, or the exception the run raised}, run once per weight format."""

    def run():
        pipeline = pkg.pipeline(weight_format)
        results = {}
        for case in plan.cases:
            try:
                results[case.label] = run_model(pipeline, case.inputs, descr5, sample_id=case.label)
            except Exception as e:
                logger.debug("%s failed on %s", weight_format, case.label, exc_info=True)
                results[case.label] = e
        return results

    return pkg.memo(("size runs", weight_format), run)


def _prepare(pkg: PackageUnderTest, rule_) -> tuple[list[str], object, SizePlan | None, Finding | None]:
    formats, skip = formats_to_run(pkg, rule_)
    if skip:
        return [], None, None, skip
    descr5, skip = descr_v05_or_skip(pkg, rule_)
    if skip:
        return [], None, None, skip
    try:
        plan = size_plan(pkg, descr5, fastest(formats))
    except Exception as e:
        logger.debug("preparing inputs of other sizes failed", exc_info=True)
        return [], None, None, failed(rule_, f"inputs of other valid sizes could not be made ({error_text(e)})")
    return formats, descr5, plan, None


def _shape_problem(actual: tuple, expected: tuple) -> bool:
    if len(actual) != len(expected):
        return True
    for have, want in zip(actual, expected):
        if isinstance(want, int):
            if have != want:
                return True
        elif have < want.min or (want.max is not None and have > want.max):
            return True
    return False


def _expected_text(expected: tuple) -> str:
    return "×".join(str(s) if isinstance(s, int) else f"[{s.min}…{s.max or '∞'}]" for s in expected)


def _input_text(inputs: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{tensor_id} {shape_text(array.shape)}" for tensor_id, array in inputs.items())


@rule(
    "SIZ001",
    "error",
    "outputs have the shapes the rdf describes, at every tested input size and batch",
    "Correct the output axes' sizes (size reference, scale, offset) in the rdf, or the model, so that they agree "
    "at every valid input size.",
    "sizes",
)
def check_output_shapes(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_output_shapes.rule
    formats, descr5, plan, skip = _prepare(pkg, rule_)
    if skip:
        yield skip
        return
    outputs = tensor_axes(descr5, "outputs")
    test_inputs = as_arrays(pkg.test_input_sample(), tensor_axes(descr5, "inputs"))
    test_sizes = {t.id: {a.id: test_inputs[str(t.id)].shape[i] for i, a in enumerate(t.axes)} for t in descr5.inputs}
    try:
        expected_test = {
            str(tid): tuple(sizes[a.id] for a in next(o for o in descr5.outputs if o.id == tid).axes)
            for tid, sizes in descr5.get_output_tensor_sizes(test_sizes).items()
        }
    except Exception as e:  # a test input of a size the rdf does not allow: TEN001 names it
        logger.debug("output sizes for the test input", exc_info=True)
        expected_test, test_problem = None, error_text(e)
    for weight_format in formats:
        location = f"weights.{weight_format}"
        cases = []
        if expected_test is not None:
            cases.append(("test input", test_inputs, expected_test, as_arrays(pkg.test_output(weight_format), outputs)))
        else:
            yield skipped(rule_, f"test input: output sizes not resolved ({test_problem}; see TEN001)", location)
        runs = size_runs(pkg, plan, descr5, weight_format)
        for case in plan.cases:
            cases.append((case.label, case.inputs, case.expected, runs[case.label]))
        problems = 0
        for label, inputs, expected, actual in cases:
            if isinstance(actual, Exception):
                problems += 1
                yield failed(
                    rule_,
                    f"{weight_format} failed on a valid input, {label} ({_input_text(inputs)}): {error_text(actual)}",
                    location,
                    case=label,
                )
                continue
            for output_id, want in expected.items():
                have = actual.get(output_id)
                if have is None:
                    problems += 1
                    yield failed(
                        rule_, f"{label}: {weight_format} produced no output {output_id!r}", location, case=label
                    )
                elif _shape_problem(have.shape, want):
                    problems += 1
                    yield failed(
                        rule_,
                        f"{label} ({_input_text(inputs)}): outputs[{output_id}] shape "
                        f"{shape_text(have.shape)}, expected {_expected_text(want)}",
                        f"{location}/outputs[{output_id}]",
                        case=label,
                        shape=list(have.shape),
                        expected=_expected_text(want),
                    )
        if not problems:
            labels = [label for label, *_ in cases]
            note = f" ({plan.why_one_size})" if plan.why_one_size else ""
            yield passed(
                rule_,
                f"{weight_format}: output shapes as described on {', '.join(labels)}{note}",
                location,
                cases=labels,
            )


def _value_region(descr5, output_index: int, small: tuple, large: tuple, plan: SizePlan):
    """(slices into the small output, slices into the large one, halos, axes that declare no halo) of the region
    the declared halo says is exact (an axis without a halo counted as 0), or the reason there is none."""
    from bioimageio.spec.model.v0_5 import SizeReference

    tensor = descr5.outputs[output_index]
    inputs = {str(t.id): t for t in descr5.inputs}
    small_index, large_index, halos, follows, undeclared = [], [], {}, False, []
    for axis, have, big in zip(tensor.axes, small, large):
        if have == big:
            small_index.append(slice(None))
            large_index.append(slice(None))
            continue
        follows = True
        size = axis.size
        if not isinstance(size, SizeReference) or str(size.tensor_id) not in inputs:
            return f"axis {axis.id} changes with the input size but does not refer to an input axis"
        reference = inputs[str(size.tensor_id)]
        position = [str(a.id) for a in reference.axes].index(str(size.axis_id))
        ratio = getattr(reference.axes[position], "scale", 1.0) / getattr(axis, "scale", 1.0)
        offset = plan.starts[str(size.tensor_id)][position] * ratio
        if abs(offset - round(offset)) > 1e-9:
            return f"axis {axis.id} does not map pixel by pixel onto inputs[{size.tensor_id}] axis {size.axis_id}"
        offset, halo = round(offset), int(getattr(axis, "halo", 0) or 0)
        if getattr(axis, "halo", None) is None:
            undeclared.append(str(axis.id))
        if 2 * halo >= have:
            return f"the halo {halo} of axis {axis.id} leaves nothing of the n=0 output ({have} px) to compare"
        halos[str(axis.id)] = halo
        small_index.append(slice(halo, have - halo))
        large_index.append(slice(offset + halo, offset + have - halo))
    if not follows:
        return (
            "no axis follows the input size (e.g. a classifier's outputs): different fields of view, nothing to compare"
        )
    return tuple(small_index), tuple(large_index), halos, undeclared


@rule(
    "SIZ002",
    "error",
    "a smaller input's output equals the centre of a larger input's output beyond the halo",
    "Declare a halo that covers the model's border effects (TIL001 measures it), or remove what makes the output "
    "depend on the whole input (global pooling or normalisation inside the model).",
    "sizes",
)
def check_sizes_agree(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_sizes_agree.rule
    formats, descr5, plan, skip = _prepare(pkg, rule_)
    if skip:
        yield skip
        return
    if plan.largest_n == 0:
        yield skipped(rule_, f"not run: {plan.why_one_size or 'one input size only'}: no larger input to compare with")
        return
    large_label = f"n={plan.largest_n}"
    for weight_format in formats:
        runs = size_runs(pkg, plan, descr5, weight_format)
        small_outputs, large_outputs = runs["n=0"], runs[large_label]
        if isinstance(small_outputs, Exception) or isinstance(large_outputs, Exception):
            yield skipped(rule_, f"{weight_format} did not run on every size (see SIZ001)", f"weights.{weight_format}")
            continue
        for index, output in enumerate(tensor_axes(descr5, "outputs")):
            where = f"weights.{weight_format}/outputs[{output.tensor_id}]"
            small, large = small_outputs.get(output.tensor_id), large_outputs.get(output.tensor_id)
            if small is None or large is None:
                yield skipped(rule_, f"outputs[{output.tensor_id}] missing (see SIZ001)", where)
                continue
            region = _value_region(descr5, index, small.shape, large.shape, plan)
            if isinstance(region, str):
                yield skipped(rule_, f"outputs[{output.tensor_id}]: not compared, {region}", where)
                continue
            small_index, large_index, halos, undeclared = region
            rtol, atol, ppm_budget = tolerance(pkg.descr, weight_format, output.tensor_id)
            result = compare_reproduction(small[small_index], large[large_index], rtol, atol)
            sizes = f"n=0 ({shape_text(small.shape)}) inside {large_label} ({shape_text(large.shape)})"
            if undeclared:  # no halo is no claim: tell what a tiler would see, do not fail
                yield skipped(
                    rule_,
                    f"outputs[{output.tensor_id}] declares no halo on {', '.join(undeclared)}, so "
                    f"the rdf claims no region exact; not compared (for information, {sizes} "
                    f"differ by max |Δ| {result['max_abs']:.2e} up to the border)",
                    where,
                    max_abs=result["max_abs"],
                    undeclared=undeclared,
                )
                continue
            halo_text = ", ".join(f"{axis} {halo}" for axis, halo in halos.items())
            details = {**result, "halo": halos, "rtol": rtol, "atol": atol, "ppm_budget": ppm_budget}
            if result["ppm"] > ppm_budget:
                yield failed(
                    rule_,
                    f"outputs[{output.tensor_id}] {sizes}: beyond the declared halo ({halo_text}) "
                    f"{result['mismatched']} elements ({result['ppm']:.0f} ppm) differ by more than "
                    f"{atol:g} + {rtol:g}·|expected|, max |Δ| {result['max_abs']:.2e}, worst at "
                    f"{tuple(result['worst_index'])} of the compared region",
                    where,
                    **details,
                )
            else:
                yield passed(
                    rule_,
                    f"outputs[{output.tensor_id}] {sizes}: equal beyond the declared halo "
                    f"({halo_text}), max |Δ| {result['max_abs']:.2e}",
                    where,
                    **details,
                )


@rule(
    "SIZ003",
    "error",
    "a batch of two copies gives each copy's single output",
    "Make the model treat batch entries independently (no batch statistics at inference, e.g. BatchNorm in "
    "eval mode), or fix the batch axis to 1 in the rdf.",
    "sizes",
)
def check_batch_independent(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_batch_independent.rule
    formats, descr5, plan, skip = _prepare(pkg, rule_)
    if skip:
        yield skip
        return
    if plan.case("n=0, batch 2") is None:
        fixed = [f"inputs[{t.id}]" for t in descr5.inputs for a in t.axes if a.type == "batch" and a.size == 1]
        has_batch = any(a.type == "batch" for t in descr5.inputs for a in t.axes)
        reason = (
            f"{', '.join(fixed)} fix the batch to 1"
            if fixed
            else f"a batch of two of the smallest input would exceed {2 * MAX_PROBE_ELEMENTS} elements"
            if has_batch
            else "no input has a batch axis"
        )
        yield skipped(rule_, f"not run: {reason}")
        return
    for weight_format in formats:
        runs = size_runs(pkg, plan, descr5, weight_format)
        single, double = runs["n=0"], runs["n=0, batch 2"]
        if isinstance(single, Exception) or isinstance(double, Exception):
            yield skipped(
                rule_, f"{weight_format} did not run on batch 1 and 2 (see SIZ001)", f"weights.{weight_format}"
            )
            continue
        for output in tensor_axes(descr5, "outputs"):
            where = f"weights.{weight_format}/outputs[{output.tensor_id}]"
            one, two, axis = single.get(output.tensor_id), double.get(output.tensor_id), output.index("batch")
            if one is None or two is None or axis is None or two.shape[axis] != 2:
                yield skipped(rule_, f"outputs[{output.tensor_id}]: no batch of two to compare (see SIZ001)", where)
                continue
            rtol, atol, ppm_budget = tolerance(pkg.descr, weight_format, output.tensor_id)
            results = [compare_reproduction(np.take(two, [i], axis=axis), one, rtol, atol) for i in range(2)]
            worst = max(results, key=lambda r: (r["ppm"], r["max_abs"]))
            entry = results.index(worst)
            details = {**worst, "batch_entry": entry, "rtol": rtol, "atol": atol, "ppm_budget": ppm_budget}
            if worst["ppm"] > ppm_budget:
                yield failed(
                    rule_,
                    f"outputs[{output.tensor_id}]: entry {entry} of a batch of two copies "
                    f"({shape_text(two.shape)}) differs from the single run: {worst['mismatched']} "
                    f"of {math.prod(one.shape)} elements over {atol:g} + {rtol:g}·|expected|, max "
                    f"|Δ| {worst['max_abs']:.2e}",
                    where,
                    **details,
                )
            else:
                yield passed(
                    rule_,
                    f"outputs[{output.tensor_id}]: both entries of a batch of two equal the single "
                    f"run, max |Δ| {max(r['max_abs'] for r in results):.2e}",
                    where,
                    **details,
                )
