"""DIJ21–DIJ26: tensor sizes as JDLL computes them, and the tiles it cuts an image into."""

from __future__ import annotations

import math
from collections.abc import Iterator

from zoo.bioimage.rdf import deepimagej_config
from zoo.bioimage.rdf_tensors import TensorView, tensors
from zoo.validators.checks.deepimagej.common import VANISHES, dij
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed


@dij(
    "DIJ21",
    "error",
    "outputs sized by reference use scale 1 and offset 0",
    "Give output axes that reference an input scale 1 and offset 0 (crop in post-processing instead).",
)
def check_output_reference_identity(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_output_reference_identity.rule
    inputs = {t.tensor_id: t for t in tensors(pkg.rdf, "inputs")}
    problems = 0
    for tensor in tensors(pkg.rdf, "outputs"):
        if not isinstance(tensor.raw.get("axes"), list):  # 0.3/0.4: reference·scale + 2·offset is JDLL's formula
            continue
        for axis in tensor.axes:
            size = axis.size
            if size.kind != "reference":
                continue
            ref = inputs.get(size.ref_tensor)
            ref_axis = next((a for a in ref.axes if size.ref_axis in (a.axis_id, a.letter)), None) if ref else None
            ref_scale = ref_axis.scale if ref_axis else 1.0
            spec_factor, jdll_factor = ref_scale / size.scale if size.scale else math.inf, size.scale
            if not math.isclose(spec_factor, jdll_factor) or size.offset != 0:
                problems += 1
                yield failed(
                    rule_,
                    f"outputs[{tensor.tensor_id}] axis {axis.axis_id or axis.index} references "
                    f"{size.ref_tensor}.{size.ref_axis} with scale {size.scale:g} and offset "
                    f"{size.offset:g}: the spec means size·{spec_factor:g} + {size.offset:g}, JDLL "
                    f"computes size·{jdll_factor:g} + {2 * size.offset:g}: Fiji expects another output "
                    "shape and tiling breaks",
                    f"{tensor.location}.axes.{axis.index}",
                    scale=size.scale,
                    offset=size.offset,
                    reference_scale=ref_scale,
                )
    if not problems:
        v05 = any(isinstance(t.raw.get("axes"), list) for t in tensors(pkg.rdf, "outputs"))
        yield passed(
            rule_,
            "referenced output sizes use scale 1 and offset 0"
            if v05
            else "format 0.3/0.4: the spec's reference·scale + 2·offset is JDLL's formula",
        )


@dij(
    "DIJ22",
    "error",
    "output sizes are fixed or reference an input; input sizes do not reference",
    "Give outputs fixed sizes or size references, and inputs fixed or min + n·step sizes.",
)
def check_tensor_sizes_supported(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_tensor_sizes_supported.rule
    problems = 0
    for tensor in [*tensors(pkg.rdf, "inputs"), *tensors(pkg.rdf, "outputs")]:
        for axis in tensor.axes:
            kind = axis.size.kind
            bad = (tensor.kind == "inputs" and kind == "reference") or (
                tensor.kind == "outputs" and kind in ("parameterized", "data_dependent")
            )
            if bad:
                problems += 1
                yield failed(
                    rule_,
                    f"{tensor.kind}[{tensor.tensor_id}] axis {axis.axis_id or axis.index} has a "
                    f"{kind.replace('_', '-')} size: deepImageJ cannot compute the tile shapes and the "
                    "model does not run in Fiji",
                    f"{tensor.location}.axes.{axis.index}",
                    size=kind,
                )
    if not problems:
        yield passed(rule_, "tensor sizes are of kinds deepImageJ supports")


@dij("DIJ23", "error", "batch is free or 1", "Let the batch axis be free or of size 1; deepImageJ feeds one slice.")
def check_batch_size_one(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_batch_size_one.rule
    problems = 0
    for tensor in [*tensors(pkg.rdf, "inputs"), *tensors(pkg.rdf, "outputs")]:
        axis = tensor.axis("b")
        smallest = axis.size.smallest if axis else None
        if smallest is not None and smallest != 1:
            problems += 1
            yield failed(
                rule_,
                f"{tensor.kind}[{tensor.tensor_id}] batch size {smallest}, deepImageJ feeds one "
                "image at a time: the model does not run in Fiji",
                f"{tensor.location}.axes.{axis.index}",
                batch=smallest,
            )
    if not problems:
        yield passed(rule_, "batch free or 1")


def _smallest_output(tensor: TensorView, axis, inputs: dict[str, TensorView]) -> int | None:
    """An output axis's size for the smallest input tile, computed as JDLL does (TileMaker.getOutputTiles)."""
    size = axis.size
    if size.kind == "fixed":
        return size.value
    if size.kind == "reference" and size.ref_tensor in inputs:
        ref = next((a for a in inputs[size.ref_tensor].axes if size.ref_axis in (a.axis_id, a.letter)), None)
        if ref is not None and ref.size.smallest is not None:
            return int(ref.size.smallest * size.scale + 2 * size.offset)
    if axis.letter == "b":
        return 1
    return None


@dij(
    "DIJ24",
    "error",
    "tiling works: min divisible by step, tiles larger than twice the halo",
    "Choose min as a multiple of step, and a min size larger than twice the halo.",
)
def check_tiling_geometry_valid(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_tiling_geometry_valid.rule
    problems = 0
    smallest_image: dict[str, int] = {}
    inputs = {t.tensor_id: t for t in tensors(pkg.rdf, "inputs")}
    for tensor in inputs.values():
        for axis in tensor.axes:
            size = axis.size
            if size.kind == "parameterized" and size.step and size.min is not None and size.min % size.step:
                problems += 1
                yield failed(
                    rule_,
                    f"inputs[{tensor.tensor_id}] axis {axis.axis_id or axis.index} size "
                    f"{size.min} + n·{size.step}: {size.min} is not a multiple of {size.step}, "
                    "deepImageJ's tiling gives up and the model does not run in Fiji",
                    f"{tensor.location}.axes.{axis.index}",
                    min=size.min,
                    step=size.step,
                )
            elif size.kind == "fixed" and axis.letter in ("x", "y", "z"):
                smallest_image[f"{tensor.tensor_id}.{axis.letter}"] = math.ceil(size.value / 3)
    for tensor in tensors(pkg.rdf, "outputs"):
        for axis in tensor.axes:
            if not axis.halo:
                continue
            out = _smallest_output(tensor, axis, inputs)
            if out is not None and out - 2 * axis.halo <= 0:
                problems += 1
                yield failed(
                    rule_,
                    f"outputs[{tensor.tensor_id}] axis {axis.axis_id or axis.index}: smallest tile "
                    f"{out} minus twice the halo {axis.halo} is {out - 2 * axis.halo}, must stay "
                    "positive: deepImageJ refuses small images",
                    f"{tensor.location}.axes.{axis.index}",
                    tile=out,
                    halo=axis.halo,
                )
    if not problems:
        note = f"; fixed sizes need images of at least a third of them: {smallest_image}" if smallest_image else ""
        yield passed(rule_, f"tiling geometry valid{note}", smallest_image=smallest_image)


MAX_INPUT_TILE_ELEMENTS = 4096 * 4096 * 3  # TileCalculator
MAX_OUTPUT_TILE_BYTES = 2**31 - 1
DTYPE_BYTES = {
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "float32": 4,
    "float64": 8,
}


@dij(
    "DIJ25",
    "error",
    "the smallest tile stays within JDLL's size limits",
    "Declare a step (or smaller fixed sizes) so that tiles stay under 4096·4096·3 elements.",
)
def check_tile_size_bounded(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_tile_size_bounded.rule
    problems = 0
    inputs = {t.tensor_id: t for t in tensors(pkg.rdf, "inputs")}
    for tensor in inputs.values():
        elements = _product([1 if a.letter == "b" else a.size.smallest for a in tensor.axes])
        if elements is not None and elements > MAX_INPUT_TILE_ELEMENTS:
            problems += 1
            yield failed(
                rule_,
                f"inputs[{tensor.tensor_id}] smallest tile has {elements} elements, more than "
                f"{MAX_INPUT_TILE_ELEMENTS}: deepImageJ's tiling gives up",
                tensor.location,
                elements=elements,
                limit=MAX_INPUT_TILE_ELEMENTS,
            )
    for tensor in tensors(pkg.rdf, "outputs"):
        elements = _product([_smallest_output(tensor, a, inputs) for a in tensor.axes])
        if elements is None:
            continue
        size_bytes = elements * DTYPE_BYTES.get(tensor.data_type() or "float32", 4)
        if size_bytes > MAX_OUTPUT_TILE_BYTES:
            problems += 1
            yield failed(
                rule_,
                f"outputs[{tensor.tensor_id}] smallest tile takes {size_bytes} bytes, more than "
                f"{MAX_OUTPUT_TILE_BYTES}: deepImageJ's tiling gives up",
                tensor.location,
                bytes=size_bytes,
                limit=MAX_OUTPUT_TILE_BYTES,
            )
    if not problems:
        yield passed(rule_, "smallest tiles within JDLL's limits")


def _product(values: list[int | None]) -> int | None:
    if any(v is None for v in values):
        return None
    return math.prod(values)


@dij(
    "DIJ26",
    "error",
    "config.deepimagej allow_tiling and pyramidal_model are YAML booleans",
    "Write allow_tiling: true (unquoted) and pyramidal_model: false in config.deepimagej.",
)
def check_deepimagej_config_booleans(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_deepimagej_config_booleans.rule
    section = deepimagej_config(pkg.rdf)
    if section is None:
        yield passed(rule_, "no config.deepimagej (tiling allowed)")
        return
    problems = 0
    for key in ("allow_tiling", "pyramidal_model"):
        value = section.get(key)
        if value is not None and not isinstance(value, bool):
            problems += 1
            yield failed(
                rule_,
                f"config.deepimagej.{key} is the {type(value).__name__} {value!r}, expected a YAML "
                f"boolean: deepImageJ fails to read the config and {VANISHES}",
                f"config.deepimagej.{key}",
                value=value,
                yaml_type=type(value).__name__,
            )
    if not problems:
        tiling = section.get("allow_tiling", False)
        yield passed(
            rule_,
            f"allow_tiling {tiling}"
            + ("" if "allow_tiling" in section else " (absent: deepImageJ treats it as false)"),
            "config.deepimagej",
            allow_tiling=tiling,
        )
