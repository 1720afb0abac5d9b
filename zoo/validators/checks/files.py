"""FIL: every file the rdf names is in the package, inside it, and is the file it claims to be; a state dict's
architecture source is there and defines what the rdf names (read, never run). Offline: a URL is not fetched,
it is named; it only matters when running the model needs that file."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

from zoo.bioimage.files import sha256_of
from zoo.bioimage.rdf_weights import FileRef, referenced_files, weight_entries
from zoo.bioimage.source import MAX_UNPACKED_BYTES, path_in_package
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed, rule

MAX_FILE_BYTES = MAX_UNPACKED_BYTES  # one file may be as large as a whole unpacked package, no larger


def package_path(pkg: PackageUnderTest, source: str) -> tuple[Path | None, str | None]:
    """`source` resolved inside the package under test (zoo.bioimage.source.path_in_package)."""
    return path_in_package(pkg.root, source)


def _files(pkg: PackageUnderTest) -> list[FileRef]:
    return pkg.memo("referenced files", lambda: referenced_files(pkg.rdf))


@rule(
    "FIL001",
    "error",
    "every referenced local file is in the package",
    "Add the missing file to the package or correct its path in the rdf (relative, inside the package).",
    "files",
    needs="rdf",
)
def check_file_present(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_file_present.rule
    local = [f for f in _files(pkg) if not f.is_url]
    problems = 0
    for ref in local:
        path, refused = package_path(pkg, ref.source)
        if refused is not None:
            problems += 1
            pkg.file_problems[ref.location] = refused
            yield failed(rule_, f"{refused}: not opened", ref.location, file=ref.source)
        elif not path.is_file():
            problems += 1
            pkg.file_problems[ref.location] = f"{ref.source} is missing"
            yield failed(rule_, f"{ref.source} is referenced but not in the package", ref.location, file=ref.source)
    if not problems:
        yield passed(rule_, f"{len(local)} local files present")


@rule(
    "FIL002",
    "error",
    "every file matches its declared sha256",
    "Replace the file with the one the rdf describes, or update its sha256 in the rdf.",
    "files",
    needs="rdf",
)
def check_file_hash(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_file_hash.rule
    checked = mismatched = 0
    for ref in _files(pkg):
        if ref.sha256 is None or ref.is_url or ref.location in pkg.file_problems:
            continue
        path, refused = package_path(pkg, ref.source)
        if refused is not None or not path.is_file():
            continue
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            mismatched += 1
            pkg.file_problems[ref.location] = f"{ref.source} is {size} bytes"
            yield failed(
                rule_,
                f"{ref.source} is {size} bytes, more than the {MAX_FILE_BYTES} a package file may "
                "have; not hashed, not opened",
                ref.location,
                file=ref.source,
                size=size,
            )
            continue
        checked += 1
        actual = sha256_of(path)
        if actual != ref.sha256:
            mismatched += 1
            pkg.file_problems[ref.location] = f"{ref.source} has sha256 {actual}, expected {ref.sha256}"
            yield failed(
                rule_,
                f"{ref.source} has sha256 {actual}, expected {ref.sha256}",
                ref.location,
                file=ref.source,
                expected=ref.sha256,
                actual=actual,
            )
    if not mismatched:
        yield passed(rule_, f"{checked} declared sha256 match")


@rule(
    "FIL003",
    "warning",
    "files that running the model needs are not only at a URL",
    "Put the file into the package and reference it by a relative path; validation runs offline.",
    "files",
    needs="rdf",
)
def check_file_not_remote(pkg: PackageUnderTest) -> Iterator[Finding]:
    """A URL is named, never fetched. Only files that running or reproducing the model reads matter (weights,
    their architecture, test tensors); a URL-only cover or documentation is listed in the passing finding."""
    rule_ = check_file_not_remote.rule
    remote = [f for f in _files(pkg) if f.is_url]
    needed = [f for f in remote if f.needed]
    for ref in needed:
        pkg.file_problems[ref.location] = f"{ref.source} is only at a URL (not fetched: validation is offline)"
        what = f"{ref.weight_format} weights" if ref.role in ("weights", "architecture") else ref.role.replace("_", " ")
        yield failed(
            rule_,
            f"{ref.source} is a URL; it was not downloaded (offline validation), so the {what} "
            "cannot be checked or run",
            ref.location,
            url=ref.source,
            role=ref.role,
        )
    others = [f for f in remote if not f.needed]
    if not needed:
        named = "; ".join(f"{f.location}: {f.source}" for f in others)
        yield passed(
            rule_,
            f"running needs no remote file{f' (not fetched, not needed: {named})' if named else ''}",
            urls=[f.source for f in others] or None,
        )


@rule(
    "FIL004",
    "error",
    "a state dict's architecture is a Python file in the package that defines the named callable",
    "Write the architecture as `file.py:Callable` (0.4) or {source: file.py, callable: Name} (0.5), with the file "
    "in the package defining that class or function.",
    "files",
    needs="rdf",
)
def check_architecture_source(pkg: PackageUnderTest) -> Iterator[Finding]:
    """Read statically (ast): the package's code is not run here, with or without --trust."""
    rule_ = check_architecture_source.rule
    checked = problems = 0
    for name, entry in weight_entries(pkg.rdf).items():
        arch = entry.architecture
        if arch is None:
            continue
        checked += 1
        problem = _architecture_problem(pkg, arch)
        if problem:
            problems += 1
            pkg.file_problems.setdefault(f"weights.{name}.architecture", problem)
            yield failed(rule_, f"weights.{name} architecture {problem}", arch.location)
    if checked and not problems:
        yield passed(
            rule_,
            f"{checked} architecture reference{'s' if checked > 1 else ''} well-formed; a source "
            "file in the package defines the named callable",
        )
    elif not checked:
        yield passed(rule_, "no state dict weights: no architecture to check")


def _architecture_problem(pkg: PackageUnderTest, arch) -> str | None:
    if arch.problem:
        return arch.problem
    if arch.import_from is not None:
        top = arch.import_from.split(".")[0]
        if importlib.util.find_spec(top) is None:
            return f"imports {arch.callable} from {arch.import_from}, which is not installed here"
        return None
    if arch.source is None or arch.callable is None:
        return "names no source file and callable"
    if arch.source.startswith(("http://", "https://")):
        return None  # FIL003 names it
    path, refused = package_path(pkg, arch.source)
    if refused is not None:
        return refused
    if not path.is_file():
        return None  # FIL001 names the missing file; this rule judges what the file says
    try:
        tree = ast.parse(path.read_bytes(), filename=arch.source)
    except (SyntaxError, ValueError) as e:
        return f"source {arch.source} is not valid Python ({type(e).__name__}: {e})"
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    if arch.callable not in defined:
        return f"source {arch.source} defines no {arch.callable!r} at its top level"
    return None
