"""Opening what the user asked to validate: a folder, an rdf yaml file or a zip, without trusting it."""

from __future__ import annotations

import stat
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from zoo.bioimage.files import is_inside
from zoo.errors import InputError, SourceError

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
MAX_UNPACKED_BYTES = 8 * 1024**3  # a model package larger than this is refused before extraction
MAX_MEMBERS = 10_000
MAX_EXTRACT_SECONDS = 300.0  # unpacking slower than this (a decompression bomb, a stalled disk) is stopped


class UnsafeArchive(SourceError):
    """The zip holds members that would escape the target folder, links, or absurd sizes."""


class UnpackError(UnsafeArchive):
    """The zip could not be written out here (a member name the file system refuses, a full disk)."""


class ExtractionTimeout(UnsafeArchive):
    """Unpacking the zip took longer than its deadline; what was unpacked is removed."""

    def __init__(self, message: str, seconds: float, limit_s: float, members_done: int, members: int) -> None:
        super().__init__(message)
        self.seconds, self.limit_s, self.members_done, self.members = seconds, limit_s, members_done, members


@dataclass
class OpenedSource:
    source: Path
    root: Path  # folder that relative paths in the rdf are resolved against
    rdf_path: Path
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    extract_s: float | None = None  # seconds the zip took to unpack (None: not an archive)
    extract_limit_s: float | None = None  # the deadline it was given (None: the default)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> OpenedSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def path_in_package(root: Path, source: str) -> tuple[Path | None, str | None]:
    """(the path of `source` in the package at `root`, None), or (None, why it may not be opened): a package is
    self-contained, so absolute paths, `..` out of it and links that lead outside are refused before anything
    is opened. Every stage resolves the files an rdf names through this."""
    if Path(source).is_absolute() or source.startswith(("/", "\\")) or (len(source) > 1 and source[1] == ":"):
        return None, f"{source} is an absolute path; a package names its files relative to its rdf"
    path = Path(root) / source
    try:
        inside = is_inside(path, root)
    except (OSError, RuntimeError) as e:  # a link loop
        return None, f"{source} cannot be resolved ({type(e).__name__})"
    if not inside:
        where = "through a link" if path.is_symlink() else "through a parent folder"
        return None, f"{source} leads outside the package ({where})"
    return path, None


def find_rdf(folder: Path) -> Path:
    """The package's one descriptor: rdf.yaml or bioimageio.yaml, else a single `*.bioimageio.yaml` or
    (formats 0.3/0.4) `*.model.yaml`. Two descriptors are ambiguous: refused rather than one picked silently."""
    named = [folder / name for name in RDF_NAMES if (folder / name).is_file()]
    if len(named) > 1:
        raise SourceError(
            f"{folder} holds {' and '.join(p.name for p in named)}: two descriptors, so which one is the package is "
            "ambiguous; keep one"
        )
    if named:
        return named[0]
    for pattern in ("*.bioimageio.yaml", "*.model.yaml"):
        candidates = sorted(folder.glob(pattern))
        if len(candidates) > 1:
            raise SourceError(
                f"{folder} holds {len(candidates)} descriptors ({', '.join(p.name for p in candidates)}): "
                "give the one to use as the path of its yaml file"
            )
        if candidates:
            return candidates[0]
    others = sorted(p.name for p in (*folder.glob("*.yaml"), *folder.glob("*.yml")) if p.is_file())
    if others:
        listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise SourceError(
            f"{folder} holds no rdf.yaml, bioimageio.yaml, *.bioimageio.yaml or *.model.yaml, but {listed}: if one of "
            "them describes the package, give the path of that yaml file"
        )
    raise SourceError(f"{folder} holds no rdf.yaml (nor bioimageio.yaml): give a package folder, its rdf.yaml or a zip")


def open_source(source: Path, extract_time_limit_s: float | None = None) -> OpenedSource:
    """The package at `source`, a zip unpacked into a temporary folder (refused when unsafe, stopped after
    `extract_time_limit_s`, default MAX_EXTRACT_SECONDS)."""
    source = Path(source)
    if not source.exists():
        raise SourceError(f"{source} does not exist: give a package folder, an rdf.yaml or a .zip")
    if source.is_dir():
        return OpenedSource(source, source, find_rdf(source))
    if zipfile.is_zipfile(source):
        tmp = tempfile.TemporaryDirectory(prefix="zoo-validate-")
        try:
            started = time.monotonic()
            safe_extract(source, Path(tmp.name), extract_time_limit_s)
            seconds = time.monotonic() - started
            return OpenedSource(
                source,
                Path(tmp.name),
                find_rdf(Path(tmp.name)),
                tmp,
                extract_s=seconds,
                extract_limit_s=extract_time_limit_s,
            )
        except BaseException:
            tmp.cleanup()
            raise
    if source.suffix.lower() in (".yaml", ".yml"):
        return OpenedSource(source, source.parent, source)
    if _starts_like_a_zip(source):
        raise SourceError(
            f"{source} is a damaged zip archive (its table of contents cannot be read: truncated by an interrupted "
            "download or copy?): fetch or copy it again"
        )
    if source.suffix.lower() == ".zip":
        raise SourceError(f"{source} is named .zip but is not a zip archive: give a bioimage.io package")
    raise SourceError(f"{source} is neither a folder, a yaml file nor a zip archive: give a bioimage.io package")


def _starts_like_a_zip(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def package_extent(source: Path) -> Path:
    """What the package at `source` occupies: its folder (given as the folder or as its yaml file) or the zip."""
    source = Path(source)
    if source.suffix.lower() in (".yaml", ".yml") and not source.is_dir():
        return source.parent
    return source


def refuse_output_inside(option: str, output: Path, source: Path) -> None:
    """InputError when `output`, the value of `option`, lies in the package at `source`: the input is never changed."""
    if is_inside(output, package_extent(source)):
        raise InputError(
            f"{option} {output} lies inside the package {package_extent(source)}, which is never changed: "
            "write it outside the package"
        )


def safe_extract(archive_path: Path, target: Path, time_limit_s: float | None = None) -> None:
    """Extract after checking every member: no absolute paths, no `..`, no links, bounded total size, and
    within `time_limit_s` (default MAX_EXTRACT_SECONDS): the deadline is checked between chunks of 1 MiB, so a
    member that decompresses slowly is stopped too; ExtractionTimeout says how far it got."""
    limit_s = MAX_EXTRACT_SECONDS if time_limit_s is None else time_limit_s
    started = time.monotonic()
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"{archive_path} cannot be read as a zip ({e}): re-create the archive") from e
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise UnsafeArchive(f"{archive_path} has {len(members)} members, expected at most {MAX_MEMBERS}")
        total = 0
        seen: set[str] = set()
        for member in members:
            name = PurePosixPath(member.filename)
            if member.filename in seen:
                raise UnsafeArchive(
                    f"{archive_path}: member {member.filename!r} appears twice (which copy is the package is "
                    "ambiguous); refused"
                )
            seen.add(member.filename)
            if name.is_absolute() or member.filename.startswith(("/", "\\")) or ":" in name.parts[0]:
                raise UnsafeArchive(f"{archive_path}: member {member.filename!r} has an absolute path; refused")
            if ".." in name.parts:
                raise UnsafeArchive(f"{archive_path}: member {member.filename!r} escapes the package folder; refused")
            mode = member.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchive(f"{archive_path}: member {member.filename!r} is a symbolic link; refused")
            total += member.file_size
        if total > MAX_UNPACKED_BYTES:
            raise UnsafeArchive(
                f"{archive_path} declares {total} bytes unpacked, more than the limit of {MAX_UNPACKED_BYTES}; refused"
            )
        written = 0
        for done, member in enumerate(members):
            _check_deadline(archive_path, started, limit_s, done, len(members))
            destination = target / member.filename
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, destination.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > MAX_UNPACKED_BYTES:
                            raise UnsafeArchive(
                                f"{archive_path} unpacks to more than {MAX_UNPACKED_BYTES} bytes; refused"
                            )
                        dst.write(chunk)
                        _check_deadline(archive_path, started, limit_s, done, len(members))
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, zlib.error) as e:
                raise UnsafeArchive(
                    f"{archive_path}: member {member.filename!r} is corrupt ({type(e).__name__}: {e}); "
                    "re-create the zip"
                ) from e
            except OSError as e:  # a name longer than the file system allows, a full disk, a file-size limit
                raise UnpackError(
                    f"{archive_path}: member {member.filename!r} could not be unpacked ({e.strerror or e}); "
                    "check the free space of the temporary folder, or re-create the zip with shorter names"
                ) from e
        _check_deadline(archive_path, started, limit_s, len(members), len(members))


def _check_deadline(archive_path: Path, started: float, limit_s: float, done: int, total: int) -> None:
    seconds = time.monotonic() - started
    if seconds > limit_s:
        raise ExtractionTimeout(
            f"{archive_path}: unpacking took more than {limit_s:g} s ({done} of {total} members "
            f"done after {seconds:.1f} s); stopped",
            seconds,
            limit_s,
            done,
            total,
        )


__all__ = [
    "ExtractionTimeout",
    "OpenedSource",
    "UnsafeArchive",
    "find_rdf",
    "open_source",
    "package_extent",
    "path_in_package",
    "refuse_output_inside",
    "safe_extract",
]
