"""The prediction options as given on the command line or to predict(): the memory budget and the tile request."""

from __future__ import annotations

import re

from zoo.errors import InputError

DEFAULT_MEMORY_LIMIT = 2 * 1024**3


def parse_memory(value: int | str | None) -> int:
    """Bytes from 2GB, 512MiB, 1.5G, or an int; None: the default budget."""
    if value is None:
        return DEFAULT_MEMORY_LIMIT
    if isinstance(value, (int, float)):
        return int(value)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)(i?b?)\s*", str(value), flags=re.IGNORECASE)
    if not match:
        raise InputError(f"--memory-limit {value!r}: give a size such as 2GB, 512MB or 1.5G")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


def parse_tile(value) -> str | dict[str, int]:
    """auto, none, or window sizes (y, x[, z]) as a tuple or the string Y,X[,Z]."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return "auto"
    if isinstance(value, str) and value.strip().lower() == "none":
        return "none"
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        sizes = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise InputError(f"--tile {value!r}: give auto, none, or window sizes Y,X or Y,X,Z") from None
    if len(sizes) not in (2, 3) or min(sizes) < 1:
        raise InputError(f"--tile {value!r}: give two or three positive sizes, Y,X or Y,X,Z")
    return dict(zip(("y", "x", "z"), sizes))


__all__ = ["DEFAULT_MEMORY_LIMIT", "parse_memory", "parse_tile"]
