"""DIJ01–DIJ04, DIJ32: can deepImageJ read the package: descriptor name and place, YAML types, weight and test files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from zoo.bioimage.files import is_url
from zoo.bioimage.rdf import spec_version
from zoo.bioimage.rdf_tensors import tensors
from zoo.bioimage.rdf_weights import source_name, weights
from zoo.bioimage.weight_files import find_saved_model
from zoo.validators.checks.deepimagej.common import (
    TF_FORMAT,
    VANISHES,
    cannot_judge,
    dij,
    lone_rdf,
    used_formats,
    weight_path,
)
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed


@dij(
    "DIJ01",
    "error",
    "the descriptor is rdf.yaml at the root of the package",
    "Name the descriptor rdf.yaml and put it at the root of the model folder or zip.",
)
def check_rdf_name_expected(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_rdf_name_expected.rule
    rdf_path = pkg.opened.rdf_path
    relative = rdf_path.relative_to(pkg.root).as_posix() if rdf_path.is_relative_to(pkg.root) else rdf_path.name
    source = pkg.opened.source
    if source == rdf_path:
        where = f"the descriptor file {source.name}"
    else:
        where = f"the {'zip' if source.is_file() else 'folder'} {source.name} holds the descriptor as {relative}"
    if relative != "rdf.yaml":
        yield failed(
            rule_,
            f"{where}, deepImageJ reads only rdf.yaml at the root of the model folder: the model "
            "does not appear in Fiji",
            relative,
            file_name=relative,
            expected="rdf.yaml",
        )
    else:
        yield passed(
            rule_,
            f"{where} is rdf.yaml at the package root" if source == rdf_path else where,
            relative,
            file_name=relative,
        )


@dij(
    "DIJ02",
    "error",
    "format_version is a YAML string starting with 0.4 or 0.5",
    'Quote the version, e.g. format_version: "0.5.4".',
)
def check_format_version_string(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_format_version_string.rule
    value = pkg.rdf.get("format_version")
    details = {"format_version": value, "yaml_type": type(value).__name__}
    if isinstance(value, str) and value.startswith(("0.4", "0.5")):
        yield passed(rule_, f"format_version {value!r}", "format_version", **details)
    elif value is None:
        yield failed(
            rule_, f"format_version is missing, JDLL needs a 0.4 or 0.5 string: {VANISHES}", "format_version", **details
        )
    elif not isinstance(value, str):
        yield failed(
            rule_,
            f"format_version is the YAML {type(value).__name__} {value!r}, expected a quoted string "
            f'such as "0.5.4": JDLL rejects it and {VANISHES}',
            "format_version",
            **details,
        )
    else:
        yield failed(
            rule_, f"format_version {value!r}, JDLL reads only 0.4.x and 0.5.x: {VANISHES}", "format_version", **details
        )


TEXT_FIELDS = ("name", "description", "license", "documentation", "git_repo", "id", "type")


@dij(
    "DIJ03",
    "error",
    "text fields are strings and inputs, outputs and weights exist",
    "Write name, description, license, documentation and git_repo as plain strings, give inputs, outputs and "
    "weights, and (format 0.5 with a config) an id or config.bioimageio.nickname.",
)
def check_descriptor_fields_readable(pkg: PackageUnderTest) -> Iterator[Finding]:
    """ModelDescriptor.buildModelDescription casts each text field to String; ModelDescriptorV05 then needs an id:
    with a `config` but neither `id` nor `config.bioimageio.nickname` it dereferences null (JDLL 0.6.1)."""
    rule_ = check_descriptor_fields_readable.rule
    rdf = pkg.rdf
    problems = 0
    for key in TEXT_FIELDS:
        value = rdf.get(key)
        if value is not None and not isinstance(value, str):
            problems += 1
            keys = sorted(map(str, value)) if isinstance(value, dict) else None
            shown = f"a mapping with keys {keys}" if keys is not None else f"a {type(value).__name__}"
            yield failed(
                rule_,
                f"{key} is {shown}, deepImageJ reads it as a string: {VANISHES}",
                key,
                field=key,
                yaml_type=type(value).__name__,
                expected="str",
            )
    for key, container in (("inputs", list), ("outputs", list), ("weights", dict)):
        if not isinstance(rdf.get(key), container):
            problems += 1
            found = "missing" if rdf.get(key) is None else f"a {type(rdf.get(key)).__name__}"
            yield failed(
                rule_,
                f"{key} is {found}, expected a {container.__name__}: {VANISHES}",
                key,
                field=key,
                yaml_type=type(rdf.get(key)).__name__,
                expected=container.__name__,
            )
    config = rdf.get("config")
    bioimageio = config.get("bioimageio") if isinstance(config, dict) else None
    nickname = bioimageio.get("nickname") if isinstance(bioimageio, dict) else None
    if spec_version(rdf) == "0.5" and isinstance(config, dict) and rdf.get("id") is None and nickname is None:
        problems += 1
        config_keys = sorted(map(str, config))
        yield failed(
            rule_,
            f"no id and no config.bioimageio.nickname while config exists (keys {config_keys}): "
            f"JDLL's ModelDescriptorV05 dereferences the missing id and {VANISHES}",
            "id",
            field="id",
            yaml_type="NoneType",
            expected="str",
            config_keys=config_keys,
        )
    if not problems:
        yield passed(rule_, "text fields are strings; inputs, outputs and weights present")


@dij(
    "DIJ04",
    "error",
    "every weight file deepImageJ may use is in the package folder by its base name",
    "Put each weight file into the package root and reference it by a relative path; deepImageJ downloads nothing.",
)
def check_weight_files_present(pkg: PackageUnderTest) -> Iterator[Finding]:
    """Only the formats deepImageJ may pick count (`used_formats`): an absent keras_hdf5, or a state dict beside
    TorchScript, does not stop the model. On a lone rdf (no needed file here at all) the files cannot be judged."""
    rule_ = check_weight_files_present.rule
    used = used_formats(pkg.rdf)
    lone = lone_rdf(pkg)
    checked = problems = 0
    missing: list[str] = []
    for name in used:
        entry = weights(pkg.rdf)[name]
        checked += 1
        location = f"weights.{name}"
        source = source_name(entry)
        if name == TF_FORMAT and find_saved_model(pkg.root, source) is not None:
            continue
        if source is None:
            problem = f"{location} has no source"
        elif weight_path(pkg, entry) is not None:
            continue
        elif lone:
            missing.append(source)
            continue
        elif is_url(source):
            problem = f"{location} source is the URL {source}, deepImageJ does not download weights at run time"
        else:
            base = PurePosixPath(source).name
            where = (
                f" (it is at {source}, deepImageJ looks for {base} in the model folder)"
                if (pkg.root / source).is_file()
                else ""
            )
            problem = f"{location} source {source} is not in the package folder{where}"
        problems += 1
        yield failed(rule_, f"{problem}: this format fails to load in Fiji", location, source=source)
    architecture = weights(pkg.rdf).get("pytorch_state_dict", {}).get("architecture")
    arch_source = architecture.get("source") if isinstance(architecture, dict) else None
    if (
        "pytorch_state_dict" in used
        and isinstance(arch_source, str)
        and not (pkg.root / PurePosixPath(arch_source).name).is_file()
    ):
        if lone:
            missing.append(arch_source)
        else:
            problems += 1
            yield failed(
                rule_,
                f"weights.pytorch_state_dict.architecture source {arch_source} is not in the package "
                "folder: deepImageJ cannot build the model from the state dict",
                "weights.pytorch_state_dict.architecture",
                source=arch_source,
            )
    if missing:
        yield cannot_judge(
            rule_,
            f"the weight files of {', '.join(used)} are not here, so whether deepImageJ finds "
            "them in the installed model folder is unknown",
            "weights",
            missing,
        )
    elif not problems:
        unused = sorted(set(weights(pkg.rdf)) - set(used))
        note = f"; {', '.join(unused)} not used by deepImageJ, not checked" if unused else ""
        yield passed(rule_, f"{checked} weight files found by base name{note}", files=checked, not_used=unused)


@dij(
    "DIJ32",
    "risk",
    "the input has a test or sample tensor for 'run on test'",
    "Ship a test_tensor (.npy) or a sample_tensor (e.g. TIFF) for the input.",
)
def check_test_input_present(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_test_input_present.rule
    problems = 0
    for tensor in tensors(pkg.rdf, "inputs"):
        v04 = not isinstance(tensor.raw.get("axes"), list)  # 0.3/0.4 list test files at the top level
        tests = [
            _file_of(tensor.raw.get("test_tensor")),
            _nth(pkg.rdf.get("test_inputs"), tensor.index) if v04 else None,
        ]
        samples = [
            _file_of(tensor.raw.get("sample_tensor")),
            _nth(pkg.rdf.get("sample_inputs"), tensor.index) if v04 else None,
        ]
        usable = [c for c in tests if c and c.endswith(".npy") and _in_package(pkg, c)] + [
            c for c in samples if c and _in_package(pkg, c)
        ]
        if not usable:
            problems += 1
            named = [c for c in tests + samples if c]
            if named and lone_rdf(pkg):
                yield cannot_judge(
                    rule_, f"inputs[{tensor.tensor_id}] test and sample files are not here", tensor.location, named
                )
                continue
            yield failed(
                rule_,
                f"inputs[{tensor.tensor_id}] has no test_tensor (.npy) or sample_tensor in the "
                f"package (named: {named}): 'run on test' is unavailable in Fiji",
                tensor.location,
                named=named,
            )
    if not problems:
        yield passed(rule_, "test input present")


def _in_package(pkg: PackageUnderTest, source: str) -> bool:
    return not is_url(source) and (pkg.root / PurePosixPath(source).name).is_file()


def _file_of(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("source")
    return value if isinstance(value, str) else None


def _nth(values, index: int) -> str | None:
    return _file_of(values[index]) if isinstance(values, list) and index < len(values) else None
