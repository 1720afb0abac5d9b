"""DIJ07: TorchScript weights and the libtorch engine Fiji runs them on, settled from the archive where it says so."""

from __future__ import annotations

from collections.abc import Iterator

from zoo.bioimage.weight_files import UnreadableWeights, read_torchscript
from zoo.validators.checks.deepimagej.common import (
    TORCHSCRIPT_FORMATS,
    absent_weight_finding,
    dij,
    entries,
    weight_path,
)
from zoo.validators.context import PackageUnderTest
from zoo.validators.deepimagej.engines import engine_for, version_tuple
from zoo.validators.deepimagej.known_ops import LIBTORCH_MAX_FILE_FORMAT_VERSION, TORCH_ATEN_OPS, TORCH_PRIM_OPS
from zoo.validators.registry import Finding, failed, passed, skipped


@dij(
    "DIJ07",
    "risk",
    "TorchScript loads in the libtorch engine Fiji picks (1.13.1 or 2.0.0)",
    "Save TorchScript with torch ≤ 2.0, or keep to operators libtorch 2.0 has.",
)
def check_torchscript_engine_compatible(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_torchscript_engine_compatible.rule
    torchscript = entries(pkg, TORCHSCRIPT_FORMATS)
    if not torchscript:
        yield passed(rule_, "no TorchScript weights")
        return
    for name, entry in torchscript:
        location = f"weights.{name}"
        choice = engine_for(name, entry)
        if choice.engine is None:
            yield skipped(rule_, f"no pytorch engine for version {choice.declared} (see DIJ05)", location)
            continue
        path = weight_path(pkg, entry)
        if path is None:
            yield absent_weight_finding(
                pkg, rule_, name, entry, f"whether libtorch {choice.engine} loads the TorchScript is read from its file"
            )
            continue
        details = {"engine": choice.label(), "pytorch_version": choice.declared}
        try:
            content = read_torchscript(path)
        except UnreadableWeights as e:
            yield failed(rule_, f"{e}: libtorch {choice.engine} will fail to load it in Fiji", location, **details)
            continue
        max_version = (
            LIBTORCH_MAX_FILE_FORMAT_VERSION[choice.engine]
            if choice.engine in (LIBTORCH_MAX_FILE_FORMAT_VERSION)
            else 10
        )
        unknown = sorted(op for op in content.ops if not _torch_op_known(op))
        details.update(
            file_format_version=content.file_format_version,
            max_file_format_version=max_version,
            ops=len(content.ops),
            unknown_ops=unknown,
        )
        newer = (version_tuple(choice.declared or "") or (0,)) > (version_tuple(choice.engine) or (0,))
        saved_by = f"{path.name} (pytorch_version {choice.declared})"
        if content.file_format_version is not None and content.file_format_version > max_version:
            yield failed(
                rule_,
                f"{saved_by} has archive file-format version {content.file_format_version}, "
                f"libtorch {choice.engine} reads ≤ {max_version}: the model will not load in Fiji",
                location,
                **details,
            )
        elif newer and content.file_format_version is None:
            yield failed(
                rule_,
                f"{saved_by} has no archive version record, so whether libtorch {choice.engine} "
                "reads it is unknown: it may fail to load in Fiji",
                location,
                **details,
            )
        elif newer and unknown:
            yield failed(
                rule_,
                f"{saved_by} runs on libtorch {choice.engine}; {len(unknown)} of its "
                f"{len(content.ops)} operators are not on our list of operators libtorch "
                f"{choice.engine} has ({', '.join(unknown[:8])}): it may fail to load in Fiji with "
                "'Unknown builtin op'",
                location,
                **details,
            )
        elif newer:
            yield passed(
                rule_,
                f"{saved_by} runs on libtorch {choice.engine}: archive file-format version "
                f"{content.file_format_version} ≤ {max_version} and all {len(content.ops)} "
                f"operators are in libtorch {choice.engine}",
                location,
                **details,
            )
        else:
            yield passed(
                rule_, f"{saved_by} runs on libtorch {choice.engine}, not older than the file", location, **details
            )


def _torch_op_known(op: str) -> bool:
    namespace, _, name = op.partition("::")
    return (namespace == "aten" and name in TORCH_ATEN_OPS) or (namespace == "prim" and name in TORCH_PRIM_OPS)
