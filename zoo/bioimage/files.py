"""Files: hashing and atomic writes, one implementation for every stage."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class HashingTimeout(OSError):
    """Hashing a file took longer than its deadline (a huge or sparse file)."""


def sha256_of(path: Path, *, deadline: float | None = None) -> str:
    """The file's sha256, read in 1 MiB chunks; past `deadline` (a time.monotonic() value) HashingTimeout."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            if deadline is not None and time.monotonic() > deadline:
                raise HashingTimeout(f"hashing {Path(path).name} did not finish before its deadline")
    return digest.hexdigest()


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PartsDigest:
    """One sha256 over a sequence of parts fed in order (a data set's files): `add_bytes` hashes a part's length
    (8 bytes, little-endian) and then its bytes, so that no two sequences of files collide by concatenation;
    `add_text` hashes a name's UTF-8 bytes as they are."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add_bytes(self, data: bytes) -> bytes:
        """Hash `data` after its length; returns `data`."""
        self._digest.update(len(data).to_bytes(8, "little"))
        self._digest.update(data)
        return data

    def add_text(self, text: str) -> None:
        self._digest.update(text.encode("utf-8"))

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to a temporary file beside `path`, then move it into place: a reader never sees half a file.
    An OSError without a file name (a full disk, a file-size limit) is raised again naming `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these files are for reading
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside `path` for a writer that takes a file name (torch.save, np.savez: give suffix=".npz"
    or it appends one); when the block ends it is moved into place, or removed if the block raised: a reader never
    sees half a file, and a crash leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these files are for reading
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def is_inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies under it, after resolving links, `..` and relative parts."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def is_url(source: str) -> bool:
    return str(source).startswith(("http://", "https://"))


__all__ = [
    "HashingTimeout",
    "PartsDigest",
    "atomic_path",
    "is_inside",
    "is_url",
    "sha256_of",
    "sha256_of_bytes",
    "write_bytes_atomic",
    "write_text_atomic",
]
