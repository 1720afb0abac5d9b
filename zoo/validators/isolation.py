"""Run the checks that execute a model in a child process, with a time limit and a memory limit, so a
model that hangs or explodes becomes a finding instead of a hung or killed CI job.

The child is spawned (never forked from a parent that may hold torch/TF threads) as soon as the package is
opened, and does all its work on its own: it parses the description, finds the unusable files as the FIL rules
do, imports the frameworks and runs the model checks, while the parent runs the static checks on the other core.
A watchdog thread in the parent enforces the limits from the moment the child starts."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from zoo.validators.registry import Finding

logger = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT_S = 900.0
DEFAULT_MEMORY_LIMIT_MB = 8192
POLL_S = 0.1
EXIT_WAIT_S = 5.0  # for the child to exit after it answered (its clean-up is done by then)


@dataclass(frozen=True)
class RuntimeJob:
    """What the child needs to rebuild the package under test. `file_problems` None: the child finds them itself
    by running the FIL rules (their findings are the parent's to report)."""

    source: Path
    root: Path
    rdf_path: Path
    trust: bool
    device: str
    keep_artifacts: Path | None
    file_problems: dict[str, str] | None
    rule_ids: list[str]


@dataclass(frozen=True)
class IsolationFailure:
    reason: str  # "time", "memory", "crash"
    message: str


def _child(job: RuntimeJob, connection) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        from zoo.validators import run_runtime_checks

        connection.send(("findings", run_runtime_checks(job)))
    except BaseException as e:  # everything must reach the parent as a message
        try:
            connection.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"))
        except OSError:
            pass
    finally:
        connection.close()


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RuntimeChild:
    """The isolated child of one validation, watched from a thread of the parent while the parent works on."""

    def __init__(self, job: RuntimeJob, time_limit_s: float = DEFAULT_TIME_LIMIT_S,
                 memory_limit_mb: float = DEFAULT_MEMORY_LIMIT_MB) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a parent that may hold torch/TF threads
        self._connection, child_end = context.Pipe(duplex=False)
        self.process = context.Process(target=_child, args=(job, child_end), daemon=True)
        self._result: list[Finding] | IsolationFailure | None = None
        self._done, self._stopping = threading.Event(), threading.Event()
        self.process.start()
        child_end.close()
        self._watchdog = threading.Thread(target=self._watch, args=(time_limit_s, memory_limit_mb),
                                          name="zoo-isolation-watchdog", daemon=True)
        self._watchdog.start()

    def _watch(self, time_limit_s: float, memory_limit_mb: float) -> None:
        started, peak = time.monotonic(), 0.0
        try:
            while not self._stopping.is_set():
                if self._connection.poll(POLL_S):
                    kind, payload = self._connection.recv()
                    self.process.join(timeout=EXIT_WAIT_S)
                    self._result = payload if kind == "findings" else IsolationFailure(
                        "crash", f"the model run raised {payload.splitlines()[0]}")
                    return
                if not self.process.is_alive():
                    self._result = IsolationFailure("crash", f"the model run died with exit code "
                                                             f"{self.process.exitcode} (a native crash or the "
                                                             "system's out-of-memory killer)")
                    return
                peak = max(peak, _rss_mb(self.process.pid))
                if peak > memory_limit_mb:
                    self._result = IsolationFailure("memory", f"the model run used {peak:.0f} MB, over the limit "
                                                              f"of {memory_limit_mb:.0f} MB; it was stopped")
                    return
                if time.monotonic() - started > time_limit_s:
                    self._result = IsolationFailure("time", f"the model run took longer than {time_limit_s:.0f} "
                                                            "s; it was stopped")
                    return
        except (EOFError, OSError) as e:
            self._result = IsolationFailure("crash", f"the model run ended without a result ({type(e).__name__})")
        finally:
            self._kill()
            self._done.set()

    def _kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)

    def result(self) -> list[Finding] | IsolationFailure:
        """The runtime findings, or why the child had to be stopped (waits for one or the other)."""
        self._done.wait()
        return self._result or IsolationFailure("crash", "the model run was stopped before it answered")

    def stop(self) -> None:
        """End the child whether or not it is done; safe to call twice."""
        self._stopping.set()
        self._watchdog.join()
        self._kill()
        self._connection.close()


def run_isolated(job: RuntimeJob, time_limit_s: float = DEFAULT_TIME_LIMIT_S,
                 memory_limit_mb: float = DEFAULT_MEMORY_LIMIT_MB) -> list[Finding] | IsolationFailure:
    """The runtime findings from a fresh child process, or why the child had to be stopped."""
    child = RuntimeChild(job, time_limit_s, memory_limit_mb)
    try:
        return child.result()
    finally:
        child.stop()
