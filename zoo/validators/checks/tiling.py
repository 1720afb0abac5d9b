"""TIL: a tile predicted with the declared halo equals the same region of the whole-image prediction, so that
tiled prediction (Fiji, `zoo predict`, bioimageio.core's blockwise prediction) gives the whole-image result. The
reference validator never tiles, so a halo that is too small goes unnoticed; here it is reported with the halo that
would be needed, measured as zoo measures the halo it declares when it packages a model (zoo.bioimage.halo).

The image is the test input mirrored outwards to a size that leaves room for the halo, pre-processed once as a
whole (as tiled prediction normalises the whole image first), then run whole and as an interior tile."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from zoo.bioimage.halo import TILING_ATOL, centre_tile_difference, measure_halo
from zoo.validators.checks.runtime import descr_v05_or_skip, error_text, fastest, formats_to_run
from zoo.validators.context import PackageUnderTest
from zoo.validators.probes import as_arrays, content_inputs, preprocess, run_model, shape_text, shapes, tensor_axes
from zoo.validators.registry import Finding, failed, passed, rule, skipped

logger = logging.getLogger(__name__)

MAX_TILING_ELEMENTS = 1 << 21  # the whole image tiled here stays below this many elements
CORE_PIXELS = 16  # the compared tile is at least this large along every tiled axis
OTHER_LETTERS = {"batch": "b", "channel": "c", "time": "t", "index": "i"}


@dataclass(frozen=True)
class TiledAxis:
    letter: str  # z, y or x: how zoo.bioimage.halo names it
    position: int  # in the input array
    min: int
    step: int

    def at_least(self, size: int) -> int:
        """The smallest valid size ≥ `size`."""
        return self.min if size <= self.min else self.min + math.ceil((size - self.min) / self.step) * self.step


@dataclass(frozen=True)
class TiledOutput:
    tensor_id: str
    layout: str  # one letter per output axis, the tiled ones named as in the input
    halos: dict[str, int]  # declared halo per tiled letter


def tiling_layout(descr5) -> tuple[str, list[TiledAxis], list[TiledOutput], dict[str, str]] | str:
    """(input layout, tiled axes, tileable outputs, {output id: why not tileable}), or why nothing can be tiled."""
    from bioimageio.spec.model.v0_5 import ParameterizedSize, SizeReference

    if len(descr5.inputs) != 1:
        return f"{len(descr5.inputs)} inputs: tiling is checked for models with one input"
    tensor = descr5.inputs[0]
    tiled = [(i, a) for i, a in enumerate(tensor.axes) if a.type == "space" and isinstance(a.size, ParameterizedSize)]
    if not tiled:
        fixed = shape_text(shapes(descr5, 0)[0][str(tensor.id)])
        return f"inputs[{tensor.id}] has no spatial axis of parameterized size ({fixed}): no image larger than a tile"
    ids = [str(a.id) for _, a in tiled]
    letters = ids if set(ids) <= set("zyx") else list("zyx"[-len(tiled) :]) if len(tiled) <= 3 else None
    if letters is None:
        return f"inputs[{tensor.id}] has {len(tiled)} spatial axes; at most 3 (z, y, x) are tiled"
    axes = [TiledAxis(letter, i, a.size.min, a.size.step) for letter, (i, a) in zip(letters, tiled)]
    by_id = {str(a.id): letter for letter, (_, a) in zip(letters, tiled)}
    layout = "".join(by_id.get(str(a.id), OTHER_LETTERS.get(a.type, "_")) for a in tensor.axes)
    outputs, reasons = [], {}
    for output in descr5.outputs:
        letters_out, halos, reason = [], {}, None
        for axis in output.axes:
            size = axis.size if axis.type not in ("batch", "channel") else None
            if isinstance(size, SizeReference) and str(size.tensor_id) == str(tensor.id) and str(size.axis_id) in by_id:
                ref = next(a for a in tensor.axes if str(a.id) == str(size.axis_id))
                if size.offset != 0 or getattr(ref, "scale", 1.0) != getattr(axis, "scale", 1.0):
                    reason = f"axis {axis.id} is not the same size as inputs[{tensor.id}] axis {size.axis_id}"
                letter = by_id[str(size.axis_id)]
                letters_out.append(letter)
                halos[letter] = getattr(axis, "halo", None)
            elif axis.type in ("batch", "channel"):
                letters_out.append(OTHER_LETTERS[axis.type])
            else:
                reason = f"axis {axis.id} does not follow a tiled input axis"
        if not halos:
            reason = "no spatial axis follows the input (e.g. a classifier's output): tiling does not apply"
        elif set(halos) != set(by_id.values()):
            reason = "not every tiled input axis reaches this output"
        elif None in halos.values():
            reason = (
                f"it declares no halo on {', '.join(k for k, v in halos.items() if v is None)}, so the rdf "
                "claims no tile exact (tilers then use none)"
            )
        if reason:
            reasons[str(output.id)] = reason
        else:
            outputs.append(TiledOutput(str(output.id), "".join(letters_out), halos))
    return layout, axes, outputs, reasons


def _rounded(halo: int, step: int) -> int:
    return math.ceil(halo / step) * step


@rule(
    "TIL001",
    "error",
    "a tile predicted with the declared halo equals the whole-image prediction",
    "Declare at least the halo this finding says is needed (outputs[].axes[].halo), so that tiled prediction "
    "reproduces the whole image.",
    "tiling",
)
def check_tiling_exact(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_tiling_exact.rule
    formats, skip = formats_to_run(pkg, rule_)
    if skip:
        yield skip
        return
    descr5, skip = descr_v05_or_skip(pkg, rule_)
    if skip:
        yield skip
        return
    setup = tiling_layout(descr5)
    if isinstance(setup, str):
        yield skipped(rule_, f"not run: {setup}")
        return
    layout, axes, outputs, reasons = setup
    for output_id, reason in reasons.items():
        yield skipped(rule_, f"outputs[{output_id}]: not tiled, {reason}", f"outputs[{output_id}]")
    if not outputs:
        return
    weight_format = fastest(formats)
    try:
        yield from _check_outputs(pkg, descr5, weight_format, layout, axes, outputs)
    except Exception as e:
        logger.debug("tiling with %s failed", weight_format, exc_info=True)
        yield failed(
            rule_, f"{weight_format} failed to run the tiling comparison ({error_text(e)})", f"weights.{weight_format}"
        )


def _check_outputs(pkg, descr5, weight_format, layout, axes, outputs) -> Iterator[Finding]:
    rule_ = check_tiling_exact.rule
    step = math.lcm(*(a.step for a in axes))  # a halo searched on one grid for every axis
    core = {a.letter: a.at_least(CORE_PIXELS) for a in axes}
    tensor_id = str(descr5.inputs[0].id)
    base_shape = list(shapes(descr5, 0)[0][tensor_id])  # batch 1, the smallest size on the axes not tiled
    others = math.prod(s for i, s in enumerate(base_shape) if i not in {a.position for a in axes})

    def image_shape(max_halo: int) -> list[int]:
        shape = list(base_shape)
        for a in axes:
            shape[a.position] = a.at_least(core[a.letter] + 2 * (max_halo + 2 * step))
        return shape

    least = _rounded(max(_rounded(o.halos[a.letter], a.step) for o in outputs for a in axes), step)
    max_halo = max(least + 4 * step, 2 * least, 8 * step)
    while max_halo > least and others * math.prod(image_shape(max_halo)) > MAX_TILING_ELEMENTS:
        max_halo -= step
    shape = image_shape(max_halo)
    if others * math.prod(shape) > MAX_TILING_ELEMENTS:
        yield skipped(
            rule_,
            f"not run: an image to tile with the declared halo would be {shape_text(shape)}, more "
            f"than {MAX_TILING_ELEMENTS} elements",
        )
        return
    pipeline = pkg.pipeline(weight_format)
    inputs = tensor_axes(descr5, "inputs")
    raw = content_inputs(as_arrays(pkg.test_input_sample(), inputs), {tensor_id: tuple(shape)})
    image = preprocess(pipeline, raw, descr5)[tensor_id]
    runs: dict[tuple, dict[str, np.ndarray]] = {}

    def run(array: np.ndarray) -> dict[str, np.ndarray]:
        key = (array.shape, hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest())
        if key not in runs:
            runs[key] = run_model(pipeline, {tensor_id: array}, descr5, sample_id="tile")
        return runs[key]

    whole_outputs = run(image)
    for output in outputs:
        where = f"weights.{weight_format}/outputs[{output.tensor_id}]"

        def predict(array, output_id=output.tensor_id):
            return run(array)[output_id]

        whole = whole_outputs[output.tensor_id]
        finite = np.abs(whole[np.isfinite(whole)]) if whole.size else np.zeros(1)
        tol = TILING_ATOL * max(1.0, float(finite.max()) if finite.size else 1.0)
        halo = {a.letter: _rounded(output.halos[a.letter], a.step) for a in axes}
        steps = {a.letter: a.step for a in axes}
        difference = centre_tile_difference(
            predict, image, whole, layout, halo, core, steps, output_layout=output.layout
        )
        declared_text = ", ".join(f"{letter} {h}" for letter, h in output.halos.items())
        rounded = "" if halo == output.halos else f" (rounded up to the size step: {halo})"
        details = {
            "weight_format": weight_format,
            "declared_halo": output.halos,
            "max_abs": difference,
            "tolerance": tol,
            "image": list(shape),
            "core": core,
        }
        if difference <= tol:
            yield passed(
                rule_,
                f"outputs[{output.tensor_id}]: a tile with the declared halo ({declared_text}) equals "
                f"the whole image ({shape_text(shape)}, {weight_format}), max |Δ| {difference:.2e} "
                f"≤ {tol:.1e}",
                where,
                **details,
            )
            continue
        first = _rounded(max(halo.values()) + 1, step)
        measured = (
            measure_halo(
                predict,
                layout,
                step,
                max_halo,
                atol=tol,
                core=core,
                image=image,
                whole=whole,
                output_layout=output.layout,
                first_halo=first,
            )
            if first <= max_halo
            else None
        )
        found = measured is not None and measured.max_abs <= tol
        details.update(
            needed_halo=measured.halo if found else None,
            needed_max_abs=measured.max_abs if measured else None,
            halos_checked=measured.checked if measured else [],
        )
        needed = (
            f"a halo of {measured.halo} on {', '.join(a.letter for a in axes)} is needed (max |Δ| "
            f"{measured.max_abs:.2e})"
            if found
            else f"no halo up to {max_halo} is enough"
            + (f" (at {measured.checked[-1]}: max |Δ| {measured.max_abs:.2e})" if measured else "")
        )
        yield failed(
            rule_,
            f"outputs[{output.tensor_id}]: a tile with the declared halo ({declared_text}){rounded} "
            f"differs from the whole image ({shape_text(shape)}, {weight_format}) by max |Δ| "
            f"{difference:.2e} > {tol:.1e}; {needed}",
            where,
            **details,
        )
