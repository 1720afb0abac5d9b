"""Finding the packages of a collection: under a folder, searched recursively, or listed in a text file;
and a unique, file-name-safe stem per package for its reports."""

from __future__ import annotations

import os
import re
from pathlib import Path

from zoo.bioimage.source import RDF_NAMES
from zoo.errors import InputError


def find_packages(source: Path, exclude: tuple[Path, ...] = ()) -> list[tuple[str, Path]]:
    """(display path, path) of every package: under a folder, searched recursively (a folder holding an rdf is
    one package and is not searched further; zips are packages), or listed one per line in a text file
    (relative to the file's folder; blank lines and `#` comments skipped)."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source} does not exist: give a folder of packages or a text file of paths")
    if source.is_file():
        if source.suffix.lower() in (".zip", ".yaml", ".yml"):
            return [(source.name, source.resolve())]
        return _listed_packages(source)
    excluded = {p.resolve() for p in exclude}
    found: list[tuple[str, Path]] = []
    root = source.resolve()
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in excluded)
        rdfs = [n for n in RDF_NAMES if n in filenames]
        if rdfs:
            found.append((_display(here, root), here))
            dirnames[:] = []
            continue
        yamls = sorted(n for n in filenames if n.endswith(".bioimageio.yaml"))
        if yamls:  # a package folder with several descriptions: each is a package
            found.extend((_display(here / n, root), here / n) for n in yamls)
            dirnames[:] = []
            continue
        found.extend(
            (_display(here / n, root), here / n)
            for n in sorted(filenames)
            if n.lower().endswith(".zip") and not n.startswith(".")
        )
    found.sort(key=lambda item: item[0])
    return found


def _display(path: Path, root: Path) -> str:
    relative = path.relative_to(root).as_posix()
    return root.name if relative == "." else relative


def _listed_packages(list_file: Path) -> list[tuple[str, Path]]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{list_file} cannot be read as a text file of package paths ({e})") from e
    found = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry).expanduser()
        found.append((entry, (path if path.is_absolute() else list_file.parent / path).resolve()))
    return found


def slugs(display_paths: list[str]) -> list[str]:
    """A unique, file-name-safe stem per package."""
    used: set[str] = set()
    out = []
    for display in display_paths:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", display).strip("-.") or "package"
        slug, n = base, 2
        while slug.lower() in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug.lower())
        out.append(slug)
    return out
