"""What every command shares: the consoles, calling into zoo.api with one-line errors, logging, and the options
whose names, units and defaults are the same in every command."""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

EXIT_PASSED, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
WIDE = 10_000  # columns when the output is not a terminal: tables and lines are never cut in files and pipes


console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else WIDE)
errors = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else WIDE)


def progress():
    """The progress display for this run: a live bar with ETA on a terminal, flushed lines anywhere else."""
    from zoo.progress import auto_progress

    return auto_progress(sys.stderr, errors)


def fail(message: str, code: int = EXIT_USAGE):
    """One line on stderr and the exit code; never a traceback."""
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        from loguru import logger as loguru_logger  # bioimageio logs through loguru

        loguru_logger.remove()
        loguru_logger.add(sys.stderr, level="INFO" if verbose else "ERROR")
    except ImportError:
        pass
    from zoo import quiet_frameworks

    quiet_frameworks()


def run_api(action, interrupted="nothing was written to the output folder"):
    """Call into zoo.api; a ZooError is a one-line message and exit 2, never a traceback. `interrupted`: what
    Ctrl-C leaves behind, in the words of the command (e.g. how to resume), or a function that says it then."""
    from zoo.errors import ZooError

    try:
        return action()
    except ZooError as e:
        fail(str(e))
    except KeyboardInterrupt:
        note = interrupted() if callable(interrupted) else interrupted
        errors.print(f"[red]interrupted[/red]: {escape(note)}", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OSError as e:
        if os.environ.get("ZOO_DEBUG"):
            raise
        fail(os_error_message(e))
    except Exception as e:
        if os.environ.get("ZOO_DEBUG"):
            raise
        errors.print(
            f"[red]unexpected error:[/red] {type(e).__name__}: {escape(str(e))}\n"
            "Run again with ZOO_DEBUG=1 for the traceback and please report it.",
            highlight=False,
        )
        raise typer.Exit(EXIT_USAGE) from None


# what to do about a file-system failure, by errno name
OS_ERROR_ADVICE = {
    "EEXIST": "a file is in the way where a folder is needed: remove it or choose another path",
    "ENOTDIR": "a file is in the way where a folder is needed: remove it or choose another path",
    "EISDIR": "a folder is in the way where a file is needed: choose a file path",
    "ENOSPC": "the disk is full: free some space or write to another disk",
    "EDQUOT": "the disk quota is used up: free some space or write to another disk",
    "EFBIG": "the file is larger than the file-size limit (ulimit -f) or the file system allows: raise the limit "
    "or write to another disk",
    "EACCES": "permission denied: choose a folder you can write to",
    "EPERM": "permission denied: choose a folder you can write to",
    "EROFS": "the file system is read-only: choose a folder you can write to",
    "ENAMETOOLONG": "the name is too long for the file system: choose a shorter path",
    "ENOENT": "check the path",
}


def os_error_message(e: OSError) -> str:
    """One line for a file-system failure: the path, the system's words for it and what to do."""
    name = errno.errorcode.get(e.errno, "")
    where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 is not None else "") if e.filename else "a file"
    what = e.strerror or str(e) or type(e).__name__
    advice = OS_ERROR_ADVICE.get(name, "check the path and its permissions, or choose another one")
    return f"file-system error on {where}: {what}{f' ({name})' if name else ''}; {advice}"


def plural(count: int, word: str, words: str | None = None) -> str:
    """1 tile, 2 tiles."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


# ---- option values: checked here, one line each, before any work ----


def parse_json_object(text: str | None, option: str) -> dict | None:
    """A JSON object given on the command line, or an InputError line naming the option."""
    import json

    from zoo.errors import InputError

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            f"{option} {text}: not JSON ({e.msg} at character {e.pos}); write e.g. '{{\"depth\": 4}}'"
        ) from e
    if not isinstance(value, dict):
        raise InputError(f"{option} {text}: expected a JSON object of keyword arguments, e.g. '{{\"depth\": 4}}'")
    return value


def check_device(value: str) -> str:
    from zoo.bioimage.devices import DEVICES

    if value not in DEVICES:
        gpu = re.fullmatch(r"(cuda|gpu):?\d*", value)
        hint = " (one GPU is used: choose which with CUDA_VISIBLE_DEVICES)" if gpu else ""
        raise typer.BadParameter(f"{value!r}: choose auto, cpu or cuda{hint}")
    return value


SIZE_UNITS = {"": 2**20, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(value: str) -> int:
    """Bytes from 8GB, 512MB, 1.5G, 800M; a bare number is MB."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", str(value), flags=re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{value!r}: give a size such as 8GB, 512MB or 1.5G")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


def check_size(value: str) -> str:
    parse_size(value)
    return value


def check_positive(value: Optional[float]) -> Optional[float]:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value:g}: must be greater than 0")
    return value


def check_target(value: str) -> str:
    from zoo.validators.report import TARGETS

    if value not in TARGETS:
        raise typer.BadParameter(f"{value!r}: choose bioimageio or deepimagej")
    return value


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show every detail: log lines and every table row.")]
Device = Annotated[
    str,
    typer.Option(
        callback=check_device,
        help="auto (a GPU when one is visible, else the CPU), cpu or cuda.",
        show_default=True,
    ),
]
MemoryLimit = Annotated[
    str,
    typer.Option(callback=check_size, help="Memory the model runs may use, e.g. 8GB or 512MB (a bare number is MB)."),
]
Target = Annotated[
    str,
    typer.Option(
        callback=check_target,
        help="bioimageio: bioimage.io's rules decide; deepimagej: also fail what Fiji's deepImageJ would not run "
        "or would compute differently. The deepImageJ verdict is shown either way.",
    ),
]
Trust = Annotated[
    bool,
    typer.Option(
        help="Allow running code shipped in a package (pytorch_state_dict architectures, Keras custom objects, "
        "pickles). Never needed for zoo's own packages."
    ),
]
Overwrite = Annotated[
    bool, typer.Option(help="Replace existing output files; without it an existing file is refused and kept.")
]
Out = Annotated[Path, typer.Option(help="Output folder.")]
