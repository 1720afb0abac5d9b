"""DIJ16–DIJ26: tensors and axes as JDLL names, sizes and tiles them."""

from __future__ import annotations

import math
from collections.abc import Iterator

from zoo.bioimage.rdf import TensorView, deepimagej_config, source_name, spec_version, tensors, weights
from zoo.bioimage.weight_files import UnreadableWeights, read_onnx, read_saved_model
from zoo.validators.checks.deepimagej.common import TF_FORMAT, VANISHES, dij, weight_path
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed

ALLOWED_LETTERS = frozenset("btzircyx")


@dij(
    "DIJ16",
    "error",
    "each tensor's axes map onto {b|t, z|i|r, c, y, x}",
    "Use at most one of b/t, one of z/i/r, c, y and x, each once.",
)
def check_axes_mappable(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_axes_mappable.rule
    problems = 0
    for tensor in [*tensors(pkg.rdf, "inputs"), *tensors(pkg.rdf, "outputs")]:
        v05 = isinstance(tensor.raw.get("axes"), list)
        letters = [a.letter for a in tensor.axes]
        named = [x for x in letters if x is not None and x in ALLOWED_LETTERS]
        where = f"{tensor.kind}[{tensor.tensor_id}] axes {tensor.letters!r}"
        found = []
        unknown = [x for x in letters if x is not None and x not in ALLOWED_LETTERS]
        if not letters:
            found.append("no axes")
        if unknown and not v05:  # format 0.5 ids are DIJ17's
            found.append(f"axes {unknown} are not among b, t, z, i, r, c, y, x")
        if "b" in named and "t" in named:
            found.append("both b and t")
        if len([x for x in named if x in "zir"]) > 1:
            found.append(f"more than one of z/i/r ({[x for x in named if x in 'zir']})")
        repeated = sorted({x for x in named if named.count(x) > 1})
        if repeated:
            found.append(f"repeated {repeated}")
        if len(letters) > 5:
            found.append(f"{len(letters)} axes, at most 5")
        for problem in found:
            problems += 1
            yield failed(
                rule_,
                f"{where}: {problem}; JDLL cannot order the tensor and the model does not run in Fiji",
                f"{tensor.location}.axes",
                axes=tensor.letters,
                problem=problem,
            )
    if not problems:
        yield passed(rule_, "every tensor's axes map onto JDLL's axes")


AXIS_IDS_BY_TYPE = {"space": ("x", "y", "z"), "time": ("t",), "index": ("i",)}


@dij(
    "DIJ17",
    "error",
    "format 0.5 axes have a type, explicit ids x/y/z/t/i, and channel names",
    "Write every axis's type, space ids x/y/z, time id t, index id i, and channel_names on channel axes.",
)
def check_axis_ids_explicit(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_axis_ids_explicit.rule
    problems = 0
    for tensor in [*tensors(pkg.rdf, "inputs"), *tensors(pkg.rdf, "outputs")]:
        if not isinstance(tensor.raw.get("axes"), list):
            continue
        for axis in tensor.axes:
            raw = axis.raw if isinstance(axis.raw, dict) else {}
            location = f"{tensor.location}.axes.{axis.index}"
            where = f"{tensor.kind}[{tensor.tensor_id}] axis {axis.index}"
            problem = None
            if axis.axis_type is None:
                problem = f"{where} has no type (id {axis.axis_id!r})"
            elif axis.axis_type == "channel" and not isinstance(raw.get("channel_names"), list):
                problem = f"{where} is a channel axis without channel_names"
            elif axis.axis_type in AXIS_IDS_BY_TYPE and axis.axis_id not in AXIS_IDS_BY_TYPE[axis.axis_type]:
                expected = " or ".join(AXIS_IDS_BY_TYPE[axis.axis_type])
                written = "has no id" if axis.axis_id is None else f"has id {axis.axis_id!r}"
                problem = f"{where} ({axis.axis_type}) {written}, expected {expected} written out"
            if problem:
                problems += 1
                yield failed(
                    rule_,
                    f"{problem}: JDLL cannot name the axis and {VANISHES}",
                    location,
                    axis_type=axis.axis_type,
                    axis_id=axis.axis_id,
                )
    if not problems:
        detail = "format 0.4 axes are letters" if spec_version(pkg.rdf) == "0.4" else "axes typed and named"
        yield passed(rule_, detail)


@dij(
    "DIJ18",
    "error",
    "exactly one input tensor, with x and y",
    "Merge the inputs into one image tensor with x and y axes; more inputs run only from a script.",
)
def check_image_input_single(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_image_input_single.rule
    inputs = tensors(pkg.rdf, "inputs")
    ids = [t.tensor_id for t in inputs]
    if len(inputs) != 1:
        yield failed(
            rule_,
            f"{len(inputs)} input tensors {ids}, deepImageJ's plugin feeds exactly one image: the "
            "model does not run from the Fiji GUI (only from a script call)",
            "inputs",
            n_inputs=len(inputs),
            input_ids=ids,
        )
        return
    missing = [x for x in "xy" if inputs[0].axis(x) is None]
    unnamed = [a for a in inputs[0].axes if a.axis_type == "space" and a.letter is None]
    if missing and len(missing) <= len(unnamed):
        yield passed(
            rule_,
            f"one input {ids[0]!r}; its unnamed space axes stand for {missing} (see DIJ17)",
            "inputs.0",
            n_inputs=1,
            input_ids=ids,
        )
    elif missing:
        yield failed(
            rule_,
            f"inputs[{ids[0]}] axes {inputs[0].letters!r} lack {missing}: deepImageJ cannot feed an image to it",
            "inputs.0.axes",
            n_inputs=1,
            missing=missing,
        )
    else:
        yield passed(rule_, f"one input {ids[0]!r} with x and y", "inputs.0", n_inputs=1, input_ids=ids)


def _dtype_reaching_model(tensor: TensorView) -> str | None:
    """The dtype the model receives per the rdf: the declared type, changed by ensure_dtype, float32 after
    any other pre-processing step."""
    dtype = tensor.data_type()
    for _, name, kwargs in tensor.processing():
        dtype = str(kwargs.get("dtype")) if name == "ensure_dtype" and kwargs.get("dtype") else "float32"
    return dtype


@dij(
    "DIJ19",
    "wrong",
    "the model accepts float32 input",
    "Make the model take float32 input (deepImageJ always feeds float32).",
)
def check_input_float32(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_input_float32.rule
    problems = 0
    for tensor in tensors(pkg.rdf, "inputs"):
        dtype = _dtype_reaching_model(tensor)
        if dtype not in (None, "float32"):
            problems += 1
            yield failed(
                rule_,
                f"inputs[{tensor.tensor_id}] reaches the model as {dtype} per the rdf, deepImageJ "
                "always feeds float32: the model gets other values than in Python (or fails)",
                tensor.location,
                dtype=dtype,
                expected="float32",
                source="rdf",
            )
    for name, dtypes in _file_dtypes(pkg, "inputs").items():
        for tensor_name, dtype in dtypes:
            if dtype != "float32":
                problems += 1
                yield failed(
                    rule_,
                    f"weights.{name} takes input {tensor_name!r} as {dtype}, deepImageJ feeds "
                    "float32: the model gets other values than in Python (or fails)",
                    f"weights.{name}",
                    dtype=dtype,
                    expected="float32",
                    source=name,
                )
    if not problems:
        yield passed(rule_, "inputs are float32")


def _file_dtypes(pkg: PackageUnderTest, kind: str) -> dict[str, list[tuple[str, str]]]:
    """weight format -> [(tensor name, dtype)] in the model's own order, for the formats whose files say it."""
    out: dict[str, list[tuple[str, str]]] = {}
    entries = weights(pkg.rdf)
    if "onnx" in entries and (path := weight_path(pkg, entries["onnx"])) is not None:
        try:
            content = read_onnx(path)
            out["onnx"] = content.inputs if kind == "inputs" else content.outputs
        except UnreadableWeights:
            pass
    if TF_FORMAT in entries:
        try:
            signature = read_saved_model(pkg.root, source_name(entries[TF_FORMAT])).signatures.get("serving_default")
        except UnreadableWeights:
            signature = None
        if signature is not None:
            out[TF_FORMAT] = list((signature.inputs if kind == "inputs" else signature.outputs).items())
    return out


OUTPUT_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64")
FLOAT_PRODUCING_OPS = (
    "sigmoid",
    "scale_linear",
    "scale_range",
    "zero_mean_unit_variance",
    "fixed_zero_mean_unit_variance",
    "clip",
)


@dij(
    "DIJ20",
    "error",
    "each output's declared data type is what the engine returns, int8…float64",
    "Declare the dtype the model itself returns (ensure_dtype is skipped), one of int8…float64.",
)
def check_output_dtype_supported(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_output_dtype_supported.rule
    problems = 0
    outputs = tensors(pkg.rdf, "outputs")
    file_dtypes = _file_dtypes(pkg, "outputs")
    for i, tensor in enumerate(outputs):
        declared = tensor.data_type()
        if declared is not None and declared not in OUTPUT_DTYPES:
            problems += 1
            yield failed(
                rule_,
                f"outputs[{tensor.tensor_id}] data type {declared}, deepImageJ handles "
                f"{', '.join(OUTPUT_DTYPES)}: the output cannot become an image in Fiji",
                tensor.location,
                declared=declared,
            )
            continue
        ops = [name for _, name, _ in tensor.processing() if name != "ensure_dtype"]
        if any(name not in FLOAT_PRODUCING_OPS for name in ops):
            continue  # what JDLL's other steps return is not known here
        for name, dtypes in file_dtypes.items():
            if name == TF_FORMAT:
                match = dict(dtypes).get(tensor.tensor_id) or (dtypes[i][1] if i < len(dtypes) else None)
            else:
                match = dtypes[i][1] if i < len(dtypes) else None
            returned = "float32" if ops else match
            if returned == "uint8" and name == "onnx":
                returned = "int8"  # JDLL's ONNX engine hands uint8 back as int8
            if returned is not None and declared is not None and returned != declared:
                problems += 1
                yield failed(
                    rule_,
                    f"outputs[{tensor.tensor_id}] declared {declared}, deepImageJ gets {returned} "
                    f"from weights.{name} (ensure_dtype is skipped): the output cannot be read as "
                    "declared",
                    tensor.location,
                    declared=declared,
                    returned=returned,
                    weights=name,
                )
    if not problems:
        yield passed(rule_, "output data types supported and as returned")


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
