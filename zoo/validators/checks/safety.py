"""SAF: opening the package is safe. The archive itself is checked before extraction and unpacked against a
deadline (source.py); these rules record the verdicts so that they show in every report."""

from __future__ import annotations

from collections.abc import Iterator

from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, passed, rule


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
