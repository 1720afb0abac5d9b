"""Files: hashing and atomic writes, one implementation for every stage."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
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


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to a temporary file beside `path`, then move it into place: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these files are for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def is_url(source: str) -> bool:
    return str(source).startswith(("http://", "https://"))


__all__ = ["HashingTimeout", "is_url", "sha256_of", "sha256_of_bytes", "write_bytes_atomic", "write_text_atomic"]
