"""DIJ16–DIJ20: tensors and axes as JDLL names them, one image input, the data types fed and returned. Sizes and
tiles (DIJ21–DIJ26) are in tiling_checks."""

from __future__ import annotations

from collections.abc import Iterator

from zoo.bioimage.onnx_file import read_onnx
from zoo.bioimage.rdf import spec_version
from zoo.bioimage.rdf_tensors import TensorView, tensors
from zoo.bioimage.rdf_weights import source_name, weights
from zoo.bioimage.weight_files import UnreadableWeights, read_saved_model
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
