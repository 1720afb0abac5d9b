"""SAF: opening the package is safe. The archive itself is checked before extraction and unpacked against a
deadline (source.py); these rules record the verdicts so that they show in every report."""

from __future__ import annotations

from collections.abc import Iterator

from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed, rule, skipped


@rule(
    "SAF001",
    "error",
    "the archive has no member that escapes, links or is absurdly large",
    "Re-create the zip from the package folder with plain relative member names.",
    "safety",
    needs="nothing",
)
def check_archive_safe(pkg: PackageUnderTest) -> Iterator[Finding]:
    if pkg.opened.source.is_file() and pkg.opened.source != pkg.opened.rdf_path:
        yield passed(check_archive_safe.rule, "archive members checked before extraction", pkg.opened.source.name)
    else:
        yield passed(check_archive_safe.rule, "not an archive", pkg.opened.source.name)


@rule(
    "SAF002",
    "error",
    "the archive unpacks within the time limit",
    "Re-create the zip with ordinary deflate compression and a sane number of members; a package that takes "
    "minutes to unpack is refused.",
    "safety",
    needs="nothing",
)
def check_archive_unpacks_in_time(pkg: PackageUnderTest) -> Iterator[Finding]:
    from zoo.bioimage.source import MAX_EXTRACT_SECONDS

    seconds = pkg.opened.extract_s
    if seconds is None:
        yield passed(check_archive_unpacks_in_time.rule, "not an archive", pkg.opened.source.name)
    else:
        yield passed(
            check_archive_unpacks_in_time.rule,
            f"unpacked in {seconds:.2f} s (limit {pkg.opened.extract_limit_s or MAX_EXTRACT_SECONDS:g} s)",
            pkg.opened.source.name,
            seconds=seconds,
        )


def _acting_weights(pkg: PackageUnderTest, rule_, weight_format: str) -> Iterator[Finding]:
    """Read (never load) the weights of `weight_format` for operations that reach outside the model. Without
    --trust such weights are not run: they are marked unusable, so every model-running check skips them."""
    from zoo.bioimage.rdf_weights import weight_entries
    from zoo.bioimage.weight_scan import UnreadableWeights, acting_ops
    from zoo.validators.checks.files import package_path

    entry = weight_entries(pkg.rdf).get(weight_format)
    location = f"weights.{weight_format}"
    if entry is None:
        yield passed(rule_, f"no {weight_format} weights", location)
        return
    if entry.source is None or entry.is_url or location in pkg.file_problems:
        yield skipped(
            rule_, f"not read: {pkg.file_problems.get(location, 'the weights file is not in the package')}", location
        )
        return
    path, refused = package_path(pkg, entry.source)
    if refused is not None or not path.exists():
        yield skipped(rule_, f"not read: {refused or f'{entry.source} is missing'}", location)
        return
    try:
        found = acting_ops(weight_format, path, pkg.root)
    except UnreadableWeights as e:
        yield skipped(rule_, f"not read: {e}", location)
        return
    if not found:
        yield passed(rule_, f"{entry.source}: no operation that touches files, processes or the network", location)
        return
    ops = sorted({f.op for f in found})
    if not pkg.trust:
        pkg.file_problems[location] = f"its graph calls {', '.join(ops)}: not run without --trust"
    sites = [str(f) for f in sorted(found, key=lambda f: (f.op, f.where))][:10]
    yield failed(
        rule_,
        f"{entry.source} calls {'; '.join(sites)}{'' if pkg.trust else ': not run (pass --trust to run it anyway)'}",
        location,
        ops=ops,
    )


@rule(
    "SAF003",
    "error",
    "TorchScript weights call no operation that reads or writes files",
    "Export the model without file operations (torch.from_file, torch.save) in forward(); a weights file must "
    "only compute.",
    "files",
    needs="rdf",
)
def check_torchscript_acts_not(pkg: PackageUnderTest) -> Iterator[Finding]:
    yield from _acting_weights(pkg, check_torchscript_acts_not.rule, "torchscript")


@rule(
    "SAF004",
    "error",
    "TF SavedModel serving graphs call no file, Python or debug operation",
    "Export the serving function without tf.io file ops, tf.py_function or summaries; a weights file must "
    "only compute.",
    "files",
    needs="rdf",
)
def check_saved_model_acts_not(pkg: PackageUnderTest) -> Iterator[Finding]:
    yield from _acting_weights(pkg, check_saved_model_acts_not.rule, "tensorflow_saved_model_bundle")


@rule(
    "SAF005",
    "error",
    "ONNX graphs use only the standard operator domains",
    "Export with standard ONNX operators only; a custom domain runs a kernel that the package cannot vouch for.",
    "files",
    needs="rdf",
)
def check_onnx_domains_standard(pkg: PackageUnderTest) -> Iterator[Finding]:
    yield from _acting_weights(pkg, check_onnx_domains_standard.rule, "onnx")


@rule(
    "SAF006",
    "error",
    "the package is read and checked within the time and memory limits",
    "Shrink what the rdf and its files ask the reader to do (aliases, nesting, huge files); see the message.",
    "safety",
    needs="nothing",
)
def check_read_within_limits(pkg: PackageUnderTest) -> Iterator[Finding]:
    """Recorded here when reading finished; the parent records the failure when the isolated child was stopped
    before it could answer."""
    yield passed(check_read_within_limits.rule, "read and checked within the limits", pkg.opened.source.name)
