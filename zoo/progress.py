"""Progress reporting: library code calls a Progress and never prints; what draws it is chosen by the caller.

- SilentProgress: the library's default, reports nothing.
- BarProgress: a live bar with elapsed and remaining time, for a terminal or a notebook (rich draws both).
- LineProgress: for logs, pipes, schedulers and CI, where a live bar shows nothing until the end: one flushed
  line per epoch (or per finished format, package, rule group), and at least one every LINE_EVERY_S seconds
  or every tenth of the work, each with elapsed and remaining time.

`auto_progress(stream)` picks BarProgress when `stream` is a terminal or the code runs in a notebook, else
LineProgress."""

from __future__ import annotations

import sys
import time
from typing import IO, Protocol

LINE_EVERY_S = 30.0  # the longest silence of a LineProgress while work goes on
LINE_FRACTIONS = 10  # ...and a line at every tenth of the work


class Progress(Protocol):
    def start(self, task: str, total: int | None) -> None: ...
    def advance(self, steps: int = 1, **info: float | str) -> None: ...
    def finish(self) -> None: ...


class SilentProgress:
    """The default: reports nothing."""

    def start(self, task: str, total: int | None) -> None:
        pass

    def advance(self, steps: int = 1, **info: float | str) -> None:
        pass

    def finish(self) -> None:
        pass


def clock(seconds: float) -> str:
    """0:07, 3:25, 1:02:03."""
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def info_text(info: dict) -> str:
    return " ".join(f"{key} {value}" for key, value in info.items())


class LineProgress:
    """One flushed line per unit of work worth reading in a log: `training unet2d: 120/480 (25%), epoch 3, loss
    0.21, 0:42 elapsed, ~2:06 remaining`."""

    def __init__(self, stream: IO[str] | None = None, every_s: float = LINE_EVERY_S) -> None:
        self._stream = stream
        self._every_s = every_s
        self._task, self._total, self._done = "", None, 0
        self._started = self._last_line = 0.0
        self._next_fraction = 1
        self._epoch = None
        self._info: dict = {}

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    def start(self, task: str, total: int | None) -> None:
        self._task, self._total, self._done = task, total, 0
        self._started = self._last_line = time.monotonic()
        self._next_fraction, self._epoch, self._info = 1, None, {}
        self._write(f"{task}: started" + (f", {total} steps" if total else ""))

    def advance(self, steps: int = 1, **info: float | str) -> None:
        epoch = info.get("epoch")
        finished_epoch = self._epoch is not None and epoch is not None and epoch != self._epoch
        if finished_epoch:  # the first step of an epoch: the one before it is done
            self._line(f"epoch {self._epoch} done")
        self._done += steps
        self._info = {**self._info, **info}
        self._epoch = epoch if epoch is not None else self._epoch
        now = time.monotonic()
        fraction_due = bool(self._total) and self._done * LINE_FRACTIONS >= self._next_fraction * self._total
        if steps and not finished_epoch and (fraction_due or now - self._last_line >= self._every_s):
            self._line()
        if self._total:
            while self._done * LINE_FRACTIONS >= self._next_fraction * self._total:
                self._next_fraction += 1

    def finish(self) -> None:
        if self._epoch is not None:
            self._info.pop("epoch", None)
        elapsed = time.monotonic() - self._started
        self._write(f"{self._task}: done, {self._count()} in {clock(elapsed)}")

    def _count(self) -> str:
        if not self._total:
            return f"{self._done}"
        return f"{self._done}/{self._total} ({100 * self._done / self._total:.0f}%)"

    def _line(self, note: str = "") -> None:
        elapsed = time.monotonic() - self._started
        parts = [self._count()]
        if note:
            parts.append(note)
        shown = {k: v for k, v in self._info.items() if not (note and k == "epoch")}
        if shown:
            parts.append(", ".join(f"{k} {v}" for k, v in shown.items()))
        parts.append(f"{clock(elapsed)} elapsed")
        if self._total and self._done:
            parts.append(f"~{clock(elapsed / self._done * (self._total - self._done))} remaining")
        self._write(f"{self._task}: " + ", ".join(parts))

    def _write(self, text: str) -> None:
        self._last_line = time.monotonic()
        self.stream.write(text + "\n")
        self.stream.flush()


class BarProgress:
    """A live bar (rich) with elapsed and remaining time; works in terminals and notebooks."""

    def __init__(self, console=None) -> None:
        self._console = console
        self._progress = None
        self._task = None

    def start(self, task: str, total: int | None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if self._progress is not None:
            self._progress.stop()
        self._progress = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self._console,
        )
        self._progress.start()
        self._task = self._progress.add_task(task, total=total, info="")

    def advance(self, steps: int = 1, **info: float | str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=steps, info=info_text(info))

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    kernel = get() if get is not None else None
    return kernel is not None and type(kernel).__name__ == "ZMQInteractiveShell"


def auto_progress(stream: IO[str] | None = None, console=None) -> Progress:
    """A live bar on a terminal or in a notebook; flushed lines anywhere else (files, pipes, schedulers)."""
    stream = stream if stream is not None else sys.stderr
    is_terminal = getattr(stream, "isatty", lambda: False)()
    if is_terminal or in_notebook():
        return BarProgress(console)
    return LineProgress(stream)
