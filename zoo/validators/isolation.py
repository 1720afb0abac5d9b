"""Run the checks in a child process, with a time limit and a memory limit, so a model that hangs or
explodes becomes a finding instead of a hung or killed CI job.

The child is spawned (never forked from a parent that may hold torch/TF threads) and does the whole validation of
the opened package: one import of bioimageio.spec and of the frameworks, one parse. It answers in steps, the
package's facts, the static findings, then the runtime findings, so that a model that hangs, explodes or crashes
loses only the latter. A watchdog thread in the parent enforces the limits from the moment the child starts."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.validators.registry import Finding

logger = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT_S = 900.0
DEFAULT_MEMORY_LIMIT_MB = 8192
POLL_S = 0.1
EXIT_WAIT_S = 5.0  # for the child to exit after its last answer (its clean-up is done by then)
LAST_ANSWER = "runtime"


@dataclass(frozen=True)
class RuntimeJob:
    """What the child needs to rebuild the package under test. `file_problems` None: the child finds them itself
    with the FIL rules. `static_rule_ids`: rules to run and answer before the runtime `rule_ids`."""

    source: Path
    root: Path
    rdf_path: Path
    trust: bool
    device: str
    keep_artifacts: Path | None
    file_problems: dict[str, str] | None
    rule_ids: list[str]
    static_rule_ids: list[str] = field(default_factory=list)
    extract_s: float | None = None
    extract_limit_s: float | None = None


@dataclass(frozen=True)
class IsolationFailure:
    reason: str  # "time", "memory", "crash"
    message: str


def _child(job: RuntimeJob, connection) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    # OpenMP threads (torch, TF) sleep between parallel regions instead of spinning: on a busy CI runner spinning
    # burns the other jobs' CPU and slows this one; results do not depend on it
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _skip_dask()
    try:
        from zoo.validators import run_isolated_checks

        run_isolated_checks(job, lambda kind, payload: connection.send((kind, payload)))
    except BaseException as e:  # everything must reach the parent as a message
        try:
            connection.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"))
        except OSError:
            pass
    finally:
        connection.close()
    os._exit(0)  # everything is answered and cleaned up: skip tearing down torch/TF, the parent waits for it


def _skip_dask() -> None:
    """xarray imports dask.array (seconds of CPU) the first time it wraps an array, only to ask whether the array
    is a dask array; bioimageio.core's tensors here never are. Marking dask unavailable in the child makes xarray
    answer no at once; nothing the validation runs needs dask."""
    if "dask" not in sys.modules:
        sys.modules["dask"] = None


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Spawn runs the parent's __main__ again in the child (the `zoo` console script and the CLI it imports,
    pytest, a user's script), which the child never needs: its target and job come from zoo. Hidden while the
    child starts, so that it imports only what the validation needs."""
    main = sys.modules.get("__main__")
    saved = {name: getattr(main, name) for name in ("__file__", "__spec__") if hasattr(main, name)}
    try:
        if "__spec__" in saved:
            main.__spec__ = None
        if "__file__" in saved:
            del main.__file__
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


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
    """The isolated child of one validation, watched from a thread of the parent."""

    def __init__(
        self,
        job: RuntimeJob,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        memory_limit_mb: float = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a parent that may hold torch/TF threads
        self._connection, child_end = context.Pipe(duplex=False)
        self.process = context.Process(target=_child, args=(job, child_end), daemon=True)
        self._answers: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stopping = threading.Event()
        with _main_module_hidden():
            self.process.start()
        child_end.close()
        self._watchdog = threading.Thread(
            target=self._watch, args=(time_limit_s, memory_limit_mb), name="zoo-isolation-watchdog", daemon=True
        )
        self._watchdog.start()

    def _watch(self, time_limit_s: float, memory_limit_mb: float) -> None:
        started, peak, failure = time.monotonic(), 0.0, None
        try:
            while not self._stopping.is_set():
                if self._connection.poll(POLL_S):
                    kind, payload = self._connection.recv()
                    if kind == "error":
                        failure = IsolationFailure("crash", f"the model run raised {payload.splitlines()[0]}")
                        return
                    self._answers.put((kind, payload))
                    if kind == LAST_ANSWER:
                        self.process.join(timeout=EXIT_WAIT_S)
                        return
                    continue
                if not self.process.is_alive():
                    failure = IsolationFailure(
                        "crash",
                        f"the model run died with exit code {self.process.exitcode} "
                        "(a native crash or the system's out-of-memory killer)",
                    )
                    return
                peak = max(peak, _rss_mb(self.process.pid))
                if peak > memory_limit_mb:
                    failure = IsolationFailure(
                        "memory",
                        f"the model run used {peak:.0f} MB, over the limit of {memory_limit_mb:.0f} MB; it was stopped",
                    )
                    return
                if time.monotonic() - started > time_limit_s:
                    failure = IsolationFailure(
                        "time", f"the model run took longer than {time_limit_s:.0f} s; it was stopped"
                    )
                    return
        except (EOFError, OSError) as e:
            failure = IsolationFailure("crash", f"the model run ended without a result ({type(e).__name__})")
        finally:
            self._kill()
            self._answers.put(("stopped", failure) if failure is not None else ("done", None))

    def _kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)

    def messages(self) -> Iterator[tuple[str, Any]]:
        """The child's answers as they arrive ("facts", "static", "runtime"), then ("stopped", IsolationFailure)
        when it had to be stopped; ends when the child is done."""
        while True:
            kind, payload = self._answers.get()
            if kind == "done":
                return
            yield kind, payload
            if kind == "stopped":
                return

    def stop(self) -> None:
        """End the child whether or not it is done; safe to call twice."""
        self._stopping.set()
        self._watchdog.join()
        self._kill()
        self._connection.close()


def run_isolated(
    job: RuntimeJob, time_limit_s: float = DEFAULT_TIME_LIMIT_S, memory_limit_mb: float = DEFAULT_MEMORY_LIMIT_MB
) -> list[Finding] | IsolationFailure:
    """The runtime findings from a fresh child process, or why the child had to be stopped."""
    child = RuntimeChild(job, time_limit_s, memory_limit_mb)
    try:
        answers = dict(child.messages())
    finally:
        child.stop()
    if "runtime" in answers:
        return answers["runtime"]
    return answers.get("stopped") or IsolationFailure("crash", "the model run was stopped before it answered")
