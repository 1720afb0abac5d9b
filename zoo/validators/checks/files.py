"""FIL: every file the rdf names is in the package and is the file it claims to be. Offline: a URL is
not fetched, it is reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from zoo.bioimage.files import sha256_of
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed, rule

# fields that hold links or identifiers, not files of the package
NOT_FILES = {"cite", "git_repo", "links", "uploader", "parent", "config", "id", "training_data", "maintainers",
             "authors", "badges", "icon", "source"}


def referenced_files(descr) -> list[tuple[str, str, str | None]]:
    """(location, source, sha256 or None) for every file the description references."""
    from bioimageio.spec._internal.io import RelativeFilePath
    from bioimageio.spec._internal.url import HttpUrl

    found: list[tuple[str, str, str | None]] = []

    def walk(node, location: list[str]) -> None:
        if isinstance(node, BaseModel):
            source = getattr(node, "source", None)
            if "source" in type(node).model_fields and isinstance(source, (RelativeFilePath, HttpUrl, Path)):
                sha = getattr(node, "sha256", None)
                found.append((".".join(location), str(source), str(sha) if sha else None))
            for name in type(node).model_fields:
                if name not in NOT_FILES:
                    walk(getattr(node, name), [*location, name])
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, [*location, str(i)])
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*location, str(key)])
        elif isinstance(node, (RelativeFilePath, HttpUrl, Path)):
            found.append((".".join(location), str(node), None))

    walk(descr, [])
    return found


def is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://"))


@rule("FIL001", "error", "every referenced local file is in the package",
      "Add the missing file to the package or correct its path in the rdf.", "files")
def check_file_present(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_file_present.rule
    local = [(loc, src) for loc, src, _ in referenced_files(pkg.descr) if not is_remote(src)]
    missing = [(loc, src) for loc, src in local if not (pkg.root / src).is_file()]
    for location, source in missing:
        pkg.file_problems[location] = f"{source} is missing"
        yield failed(rule_, f"{source} is referenced but not in the package", location, file=source)
    if not missing:
        yield passed(rule_, f"{len(local)} local files present")


@rule("FIL002", "error", "every file matches its declared sha256",
      "Replace the file with the one the rdf describes, or update its sha256 in the rdf.", "files")
def check_file_hash(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_file_hash.rule
    checked = mismatched = 0
    for location, source, expected in referenced_files(pkg.descr):
        path = pkg.root / source
        if expected is None or is_remote(source) or not path.is_file():
            continue
        checked += 1
        actual = sha256_of(path)
        if actual != expected:
            mismatched += 1
            pkg.file_problems[location] = f"{source} has sha256 {actual}, expected {expected}"
            yield failed(rule_, f"{source} has sha256 {actual}, expected {expected}", location,
                         file=source, expected=expected, actual=actual)
    if not mismatched:
        yield passed(rule_, f"{checked} declared sha256 match")


@rule("FIL003", "error", "no file is only available at a URL",
      "Put the file into the package and reference it by a relative path; validation runs offline.", "files")
def check_file_not_remote(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_file_not_remote.rule
    remote = [(loc, src) for loc, src, _ in referenced_files(pkg.descr) if is_remote(src)]
    for location, source in remote:
        pkg.file_problems[location] = f"{source} is remote"
        yield failed(rule_, f"{source} is a URL; it was not downloaded (offline validation), so this "
                            "file is unavailable", location, url=source)
    if not remote:
        yield passed(rule_, "no remote files")
