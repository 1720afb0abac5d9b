"""DIJ27–DIJ31: pre- and post-processing as deepImageJ implements it."""

from __future__ import annotations

from collections.abc import Iterator

from zoo.bioimage.instances import INSTANCE_OPS
from zoo.bioimage.rdf import deepimagej_config, spec_version
from zoo.bioimage.rdf_tensors import TensorView, tensors
from zoo.validators.checks.deepimagej.common import dij
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed

IMPLEMENTED_OPS = (
    "binarize",
    "clip",
    "scale_linear",
    "scale_range",
    "sigmoid",
    "zero_mean_unit_variance",
    "fixed_zero_mean_unit_variance",
    "ensure_dtype",
)


def _steps(pkg: PackageUnderTest):
    for tensor in [*tensors(pkg.rdf, "inputs"), *tensors(pkg.rdf, "outputs")]:
        for index, name, kwargs in tensor.processing():
            yield tensor, f"{tensor.location}.{tensor.processing_key}.{index}", name, kwargs


@dij(
    "DIJ27",
    "error",
    "pre- and post-processing use only ops and kwargs deepImageJ implements",
    "Use binarize, clip (min and max), scale_linear, scale_range, sigmoid or (fixed_)zero_mean_unit_variance.",
)
def check_processing_ops_implemented(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_processing_ops_implemented.rule
    v05 = spec_version(pkg.rdf) == "0.5"
    problems = 0
    for tensor, location, name, kwargs in _steps(pkg):
        problem = None
        if name == "None":  # neither `id` nor `name`: e.g. `- scale_range: {kwargs: ...}`
            problem = "a step without id or name is not an op"
        elif name in INSTANCE_OPS:
            problems += 1
            yield failed(rule_, _instance_op_problem(tensor, name, kwargs), location, op=name, kwargs=sorted(kwargs))
            continue
        elif name not in IMPLEMENTED_OPS:
            problem = f"{name} is not implemented"
        elif name == "binarize" and v05 and ("axis" in kwargs or isinstance(kwargs.get("threshold"), list)):
            problem = "binarize with a per-channel threshold (axis or a list) has no Java setter"
        elif name == "clip" and set(kwargs) & {"min_percentile", "max_percentile", "axes"}:
            problem = f"clip with {sorted(set(kwargs) & {'min_percentile', 'max_percentile', 'axes'})} has no setter"
        elif name == "clip" and not {"min", "max"} <= set(kwargs):
            problem = f"clip needs both min and max, has {sorted(map(str, kwargs))}"
        if problem:
            problems += 1
            yield failed(
                rule_,
                f"{tensor.kind}[{tensor.tensor_id}] {tensor.processing_key}: {problem} in deepImageJ: "
                "the model fails at run time in Fiji",
                location,
                op=name,
                kwargs=sorted(map(str, kwargs)),
            )
    if not problems:
        yield passed(rule_, "processing ops implemented")


def _instance_op_problem(tensor: TensorView, name: str, kwargs: dict) -> str:
    """What JDLL (0.6.1-0.6.3 and main, 2026-07) does with an op that makes instance labels: `Processing.init` looks
    for a Java class named after the op (`StardistPostprocessingTransformation`), finds none and raises before the
    input is pre-processed, so the network never runs. Only a model whose name says "stardist" and that has
    `config.stardist` takes JDLL's StarDist route instead (DIJ15), which loads a CSBDeep/Keras StarDist model."""
    where = f"{tensor.kind}[{tensor.tensor_id}] {tensor.processing_key}"
    message = (
        f'{where}: {name} has no Java implementation in deepImageJ (JDLL): the run stops with "Invalid method '
        f"'{name}' in the specs file\" before the network runs, so Fiji gives no output at all"
    )
    if name == "stardist_postprocessing":
        thresholds = f"probability {kwargs.get('prob_threshold')}, overlap {kwargs.get('nms_threshold')}"
        message += (
            "; in Fiji, run the network without this step (its output: channel 0 the object probability, channels "
            "1.. the ray distances) and StarDist's Plugins > StarDist > Other > StarDist 2D NMS (postprocessing "
            f"only) on them with thresholds {thresholds}, or predict in Python (zoo predict, bioimageio.core)"
        )
    return message


NUMERIC_KWARGS = ("threshold", "min", "max", "gain", "offset", "min_percentile", "max_percentile", "eps", "mean", "std")


@dij(
    "DIJ28",
    "error",
    "numeric processing kwargs are plain YAML numbers",
    "Write numeric kwargs unquoted, e.g. eps: 1.0e-6.",
)
def check_processing_kwargs_numeric(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_processing_kwargs_numeric.rule
    problems = 0
    for tensor, location, name, kwargs in _steps(pkg):
        for key in NUMERIC_KWARGS:
            if key not in kwargs or kwargs[key] is None:
                continue
            value = kwargs[key]
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                problems += 1
                yield failed(
                    rule_,
                    f"{tensor.kind}[{tensor.tensor_id}] {name}.{key} is {value!r}, expected a YAML "
                    "number: deepImageJ's setter rejects it and the model fails at run time in Fiji",
                    f"{location}.kwargs.{key}",
                    op=name,
                    kwarg=key,
                    value=value,
                )
    if not problems:
        yield passed(rule_, "numeric kwargs are numbers")


@dij(
    "DIJ29",
    "wrong",
    "statistics are computed as deepImageJ computes them",
    "Use per-sample statistics on the tensor itself with percentiles 0 and 100, or fixed values.",
)
def check_processing_statistics_faithful(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_processing_statistics_faithful.rule
    problems = 0
    for tensor, location, name, kwargs in _steps(pkg):
        where = f"{tensor.kind}[{tensor.tensor_id}] {name}"
        found = []
        if kwargs.get("mode") == "per_dataset":
            found.append(("per_dataset statistics are computed per image in deepImageJ", {"mode": "per_dataset"}))
        reference = kwargs.get("reference_tensor")
        if name == "scale_range" and reference is not None and reference != tensor.tensor_id:
            found.append(
                (
                    f"reference_tensor {reference!r} is ignored, the range comes from this tensor",
                    {"reference_tensor": reference},
                )
            )
        if name == "scale_range":
            low, high = kwargs.get("min_percentile", 0), kwargs.get("max_percentile", 100)
            if (low, high) != (0, 100) and all(isinstance(v, (int, float)) for v in (low, high)):
                found.append(
                    (
                        f"percentiles {low} and {high} are taken nearest-rank, numpy interpolates",
                        {"min_percentile": low, "max_percentile": high},
                    )
                )
        for problem, details in found:
            problems += 1
            yield failed(
                rule_, f"{where}: {problem}: Fiji's output differs from Python's", location, op=name, **details
            )
    if not problems:
        yield passed(rule_, "statistics computed alike")


@dij(
    "DIJ30",
    "wrong",
    "per-channel parameters are applied per channel in deepImageJ",
    "Use one value for all channels, or normalize each channel jointly; keep post-processed outputs float.",
)
def check_processing_per_channel_faithful(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_processing_per_channel_faithful.rule
    problems = 0
    for tensor, location, name, kwargs in _steps(pkg):
        where = f"{tensor.kind}[{tensor.tensor_id}] {name}"
        channels = tensor.channel_count() or 1
        problem, details = None, {}
        if name == "scale_linear" and any(
            isinstance(kwargs.get(k), list) and len(set(map(str, kwargs[k]))) > 1 for k in ("gain", "offset")
        ):
            problem = "per-channel gain/offset lists: deepImageJ applies the first value to every channel"
            details = {"gain": kwargs.get("gain"), "offset": kwargs.get("offset")}
        elif name == "zero_mean_unit_variance" and channels > 1 and kwargs.get("axes") is not None:
            meant, jdll = _reduced_axes(tensor, kwargs["axes"])
            if ("c" in meant) != ("c" in jdll):
                problem = (
                    f"axes {kwargs['axes']} reduce {''.join(sorted(meant))} as the spec reads them, "
                    f"{''.join(sorted(jdll))} as deepImageJ matches them per character"
                )
                details = {"axes": kwargs["axes"], "channels": channels}
        elif name == "fixed_zero_mean_unit_variance" and any(
            isinstance(kwargs.get(k), list) and len(kwargs[k]) > 1 for k in ("mean", "std")
        ):
            first = tensor.axes[0].letter if tensor.axes else None
            if first != "c":
                problem = f"per-channel mean/std lists need the channel axis first, the axes are {tensor.letters!r}"
                details = {"axes": tensor.letters}
        if problem:
            problems += 1
            yield failed(
                rule_, f"{where}: {problem}: Fiji's output differs from Python's", location, op=name, **details
            )
    for tensor in tensors(pkg.rdf, "outputs"):
        dtype = tensor.data_type() or "float32"
        ops = [name for _, name, _ in tensor.processing() if name != "ensure_dtype"]
        if set(ops) & set(INSTANCE_OPS):  # the run stops at such an op (DIJ27): there is no output to floor
            continue
        if set(ops) - {"binarize"} and not dtype.startswith("float"):  # binarize gives exact 0/1, flooring is moot
            problems += 1
            yield failed(
                rule_,
                f"outputs[{tensor.tensor_id}] is {dtype} and post-processed by {ops}: deepImageJ "
                "floors the result instead of rounding: Fiji's output differs from Python's",
                tensor.location,
                dtype=dtype,
                ops=ops,
            )
    if not problems:
        yield passed(rule_, "per-channel parameters applied alike")


def _reduced_axes(tensor: TensorView, axes) -> tuple[set[str], set[str]]:
    """(letters the spec reduces over, letters deepImageJ reduces over: every character of every axis name)."""
    names = [str(a) for a in axes] if isinstance(axes, list) else [str(axes)]
    by_id = {"batch": "b", "channel": "c", **{a.axis_id: a.letter for a in tensor.axes if a.axis_id}}
    meant = {by_id.get(n, n) for n in names} if isinstance(axes, list) else set(names[0])
    letters = {a.letter for a in tensor.axes}
    return {m for m in meant if m in letters}, {ch for n in names for ch in n if ch in letters}


@dij(
    "DIJ31",
    "wrong",
    "no normalization lives only in an ImageJ macro",
    "Express pre- and post-processing as rdf processing steps; deepImageJ 3 never runs the macros.",
)
def check_processing_macros_absent(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_processing_macros_absent.rule
    section = deepimagej_config(pkg.rdf) or {}
    prediction = section.get("prediction") if isinstance(section.get("prediction"), dict) else {}
    problems = 0
    for key, kind in (("preprocess", "inputs"), ("postprocess", "outputs")):
        macros = [m for m in prediction.get(key) or [] if isinstance(m, dict) and (m.get("spec") or m.get("kwargs"))]
        if not macros:
            continue
        steps = [name for t in tensors(pkg.rdf, kind) for _, name, _ in t.processing() if name != "ensure_dtype"]
        files = [m.get("kwargs") for m in macros]
        if not steps:
            problems += 1
            yield failed(
                rule_,
                f"config.deepimagej.prediction.{key} names macros {files} and the rdf has no "
                f"{kind} processing: deepImageJ never runs the macros, so Fiji skips this step",
                f"config.deepimagej.prediction.{key}",
                macros=files,
            )
    if not problems:
        yield passed(rule_, "no processing only in macros")
