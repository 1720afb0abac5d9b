"""Run the checks in a child process, with a time limit and a memory limit, so a model that hangs or
explodes becomes a finding instead of a hung or killed CI job.

The child is forked where nothing can break (one thread, no framework loaded: the CLI), else spawned, and does the
whole validation of the opened package: one import of bioimageio.spec, one parse. TorchScript and ONNX weights run
in a worker process per format (zoo.validators.model_worker), started the same way as soon as the rdf names the
formats (ModelWorkers, before this process imports the rules and starts the child), each importing its runtime while
the child parses. The child answers in steps, the package's facts, the static findings, then
the runtime findings, so that a model that hangs, explodes or crashes loses only the latter; once the rules that
decide what may run are done, the other static rules run in a process forked from the child (single-threaded
then, before any runtime is loaded) and answer on their own connection, while the child runs the model. A
watchdog thread in the parent enforces the limits on all of them together from the moment they start.

Over 400 lines on purpose: both sides of one isolated run (what the child does, how the parent starts, watches,
limits and cleans up it and the workers) share their pipes, messages and limits and are read together."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from zoo.validators.model_worker import serve, tree_pids, worker_formats

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
    # filled by RuntimeChild: weight format -> (worker pid, the child's connection to it); the static answer's
    # connection to the parent
    workers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    static_connection: Any = None
    # filled by RuntimeChild: the child's temporary folder, made and removed by the parent (a killed child cannot)
    scratch: Path | None = None


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
    if job.scratch is not None:  # everything temporary goes where the parent removes it
        os.environ["TMPDIR"] = tempfile.tempdir = str(job.scratch)
        job, status = _confine(job)
        connection.send(("sandbox", status.to_dict()))
    _skip_dask()
    _skip_field_docstrings()
    try:
        from zoo.validators import run_isolated_checks

        run_isolated_checks(job, lambda kind, payload: connection.send((kind, payload)), own_process=True)
    except BaseException as e:  # everything must reach the parent as a message
        try:
            connection.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"))
        except OSError:
            pass
    finally:
        connection.close()
    os._exit(0)  # everything is answered and cleaned up: skip tearing down torch/TF, the parent waits for it


def _confine(job: RuntimeJob):
    """Enter the sandbox (zoo.bioimage.sandbox): read the package, write the scratch folder and the artifacts
    folder the user asked for, no network. Returns the job with absolute paths (the working folder becomes the
    scratch folder) and what the sandbox could provide."""
    from zoo.bioimage.sandbox import enter_sandbox

    artifacts = None
    if job.keep_artifacts is not None:
        artifacts = Path(job.keep_artifacts).resolve()
        artifacts.mkdir(parents=True, exist_ok=True)
    job = replace(
        job,
        root=Path(job.root).resolve(),
        rdf_path=Path(job.rdf_path).resolve(),
        source=Path(job.source).resolve(),
        keep_artifacts=artifacts,
    )
    os.chdir(job.scratch)
    writable = [job.scratch, *([artifacts] if artifacts is not None else [])]
    return job, enter_sandbox([job.root, job.rdf_path.parent], writable, job.device)


# weight formats whose static rules import the framework that runs them here (TensorFlow reads SavedModel graphs):
# a forked static process would import it a second time, for seconds of CPU, so their static rules run here
RUNS_IMPORT_WHAT_STATIC_IMPORTS = ("tensorflow_saved_model_bundle", "keras_hdf5", "keras_v3")


def run_static_aside(job: RuntimeJob, pkg, static: list[str], deciding: list[str], run, send) -> None:
    """`send("static", findings of the rules static)`, `run(rule_id)` giving each rule's findings. The rules
    `deciding` (which files may run: they fill pkg.file_problems) come first, then the others.

    With a connection for it, a process forked off this one runs them all, while this one loads bioimageio.core
    (unless the runs here need what the static rules import, see RUNS_IMPORT_WHAT_STATIC_IMPORTS);
    that process hands pkg.file_problems back as soon as the deciding rules are done, then answers the parent
    itself while this one runs the model. Called while this process has no threads of its own and no runtime
    loaded. Without the connection or fork, everything runs here, in order."""
    connection = getattr(job, "static_connection", None)
    if connection is None:  # in-process
        send("static", [f for rule_id in static for f in run(rule_id)])
        return
    if not hasattr(os, "fork") or set(pkg.weight_formats) & set(RUNS_IMPORT_WHAT_STATIC_IMPORTS):
        try:
            connection.send(("static", [f for rule_id in static for f in run(rule_id)]))
        finally:
            connection.close()
        return
    decided_reader, decided_writer = multiprocessing.Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # the static process: answer and leave without running the child's clean-up
        try:
            decided_reader.close()
            found = {rule_id: run(rule_id) for rule_id in deciding}
            decided_writer.send(dict(pkg.file_problems))
            decided_writer.close()
            connection.send(("static", [f for r in static for f in (found[r] if r in found else run(r))]))
        except BaseException as e:
            try:
                connection.send(("error", f"{type(e).__name__}: {e}"))
            except OSError:
                pass
        finally:
            os._exit(0)
    connection.close()  # the static process holds the only writing end now: its exit is the parent's end of file
    decided_writer.close()
    _reap_later(pid)
    if pkg.descr is not None:  # the model runs need it: it loads while the static process decides
        import bioimageio.core  # noqa: F401
    try:
        pkg.file_problems.update(decided_reader.recv())
    except (EOFError, OSError):  # the static process died first: decide here (the parent runs the static rules)
        for rule_id in deciding:
            run(rule_id)
    finally:
        decided_reader.close()


def _reap_later(pid: int) -> None:
    """Collect the static process's exit status when it ends, so that it leaves no zombie behind."""
    threading.Thread(target=os.waitpid, args=(pid, 0), name="zoo-static-reaper", daemon=True).start()


def _skip_dask() -> None:
    """xarray imports dask.array (seconds of CPU) the first time it wraps an array, only to ask whether the array
    is a dask array; bioimageio.core's tensors here never are. Marking dask unavailable in the child makes xarray
    answer no at once; nothing the validation runs needs dask."""
    if "dask" not in sys.modules:
        sys.modules["dask"] = None


def _skip_field_docstrings() -> None:
    """bioimageio.spec's and bioimageio.core's pydantic models turn each attribute's docstring into the field's
    description (`use_attribute_docstrings`): pydantic reads the source of every class as it is defined, a third of
    the CPU of importing bioimageio.spec, on the way to every model run. Descriptions are documentation (JSON schema,
    help texts); nothing the validation reads or reports uses them, so the child skips reading them. Where pydantic
    has no such function (another version), nothing changes."""
    try:
        from pydantic._internal import _docs_extraction, _fields, _generate_schema
    except ImportError:
        return

    def no_docstrings(*args, **kwargs) -> dict[str, str]:  # whatever pydantic passes
        return {}

    for module in (_docs_extraction, _fields, _generate_schema):
        if callable(getattr(module, "extract_docstrings_from_cls", None)):
            module.extract_docstrings_from_cls = no_docstrings


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


def _worker_formats(rdf_path: Path, device: str) -> list[str]:
    """The weight formats that get a worker, from the raw rdf (read again by the child: this is a cheap look)."""
    from zoo.bioimage.rdf import read_rdf

    try:
        return worker_formats(read_rdf(rdf_path), device)
    except Exception:  # the child reports an unreadable rdf
        return []


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


FORK_UNSAFE_MODULES = ("torch", "tensorflow", "keras", "jax", "onnxruntime")


def start_method() -> str:
    """ "fork" where this process has nothing a fork could break: Linux, no thread but this one, no framework
    that keeps thread pools loaded (the CLI, which imports none of them). The child then starts at once, with
    the modules this process already imported; "spawn" otherwise (a notebook or a test that holds torch)."""
    if (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and not any(name in sys.modules for name in FORK_UNSAFE_MODULES)
    ):
        return "fork"
    return "spawn"


class ModelWorkers:
    """The worker processes of one isolated validation, one per weight format that gets one
    (zoo.validators.model_worker), started as soon as the rdf names its formats: their runtime imports (torch's is
    the longest part of the start) run while this process imports the rules and starts the child. The
    RuntimeChild that takes them over ends them; `close()` ends them where none does."""

    def __init__(self, root: Path, rdf_path: Path, device: str) -> None:
        self.context = multiprocessing.get_context(start_method())
        self.started = time.monotonic()
        self.scratch = Path(tempfile.mkdtemp(prefix="zoo-isolated-"))  # the child's too; the parent removes it
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.ends: dict[str, tuple[int, Any]] = {}  # weight format -> (worker pid, the child's connection to it)
        self._taken = False
        formats = _worker_formats(rdf_path, device)
        if formats:
            import numpy  # noqa: F401  (every runtime imports it: once here, shared by the forked workers)
        confined = (Path(root).resolve(), self.scratch, device)
        try:
            with _main_module_hidden():
                for weight_format in formats:
                    child_side, worker_side = self.context.Pipe()
                    worker = self.context.Process(
                        target=serve,
                        args=(weight_format, len(formats), worker_side, confined),
                        name=f"zoo-model-{weight_format}",
                        daemon=True,
                    )
                    worker.start()
                    worker_side.close()  # the worker holds it now: no other process inherits it
                    self.processes.append(worker)
                    self.ends[weight_format] = (worker.pid, child_side)
        except BaseException:
            self.close()
            raise

    def take(self) -> None:
        """The child has its connections to the workers, the RuntimeChild their processes and the scratch folder."""
        self._taken = True
        for _, child_side in self.ends.values():
            child_side.close()

    def close(self) -> None:
        """End the workers and remove the scratch folder, unless a RuntimeChild took them over."""
        if self._taken:
            return
        self._taken = True
        for _, child_side in self.ends.values():
            child_side.close()
        for worker in self.processes:
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=10)
        shutil.rmtree(self.scratch, ignore_errors=True)


class RuntimeChild:
    """The isolated child of one validation, watched from a thread of the parent."""

    def __init__(
        self,
        job: RuntimeJob,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        memory_limit_mb: float = DEFAULT_MEMORY_LIMIT_MB,
        workers: ModelWorkers | None = None,
    ) -> None:
        """`workers`: the job's worker processes, started earlier (ModelWorkers); started here without them. The
        time limit counts from their start."""
        if workers is None:
            workers = ModelWorkers(job.root, job.rdf_path, job.device)
        context = workers.context
        self._started = workers.started
        self._connection, child_end = context.Pipe(duplex=False)
        self._static_connection, static_end = context.Pipe(duplex=False)
        self._answers: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stopping = threading.Event()
        self.workers: list[multiprocessing.process.BaseProcess] = list(workers.processes)
        self.scratch = workers.scratch
        try:
            job = replace(job, workers=dict(workers.ends), static_connection=static_end, scratch=self.scratch)
            with _main_module_hidden():
                self.process = context.Process(target=_child, args=(job, child_end), daemon=True)
                self.process.start()
        except BaseException:
            workers.close()
            self._connection.close()
            self._static_connection.close()
            raise
        finally:
            child_end.close()
            static_end.close()
        workers.take()
        self._watchdog = threading.Thread(
            target=self._watch, args=(time_limit_s, memory_limit_mb), name="zoo-isolation-watchdog", daemon=True
        )
        self._watchdog.start()

    def _watch(self, time_limit_s: float, memory_limit_mb: float) -> None:
        """Relay the answers of the child and of its static process until the runtime findings are in and the
        static answer is in or gone; stop everything over a limit or when the child dies first."""
        started, peak, failure = self._started, 0.0, None
        open_connections = [self._connection, self._static_connection]
        runtime_done = False
        try:
            while not self._stopping.is_set():
                for ready in wait(open_connections, timeout=POLL_S):
                    try:
                        kind, payload = ready.recv()
                    except EOFError:
                        open_connections.remove(ready)
                        if ready is self._connection and not runtime_done:
                            failure = IsolationFailure("crash", "the model run ended without a result (EOFError)")
                            return
                        continue
                    if kind == "error":
                        if ready is self._static_connection:  # the parent runs the static rules itself then
                            open_connections.remove(ready)
                            continue
                        failure = IsolationFailure("crash", f"the model run raised {payload.splitlines()[0]}")
                        return
                    self._answers.put((kind, payload))
                    if kind == "static" and ready is self._static_connection:
                        open_connections.remove(ready)
                    if kind == LAST_ANSWER:
                        runtime_done = True
                if runtime_done and self._static_connection not in open_connections:
                    self.process.join(timeout=EXIT_WAIT_S)
                    return
                if not runtime_done and not self.process.is_alive() and not self._connection.poll():
                    failure = IsolationFailure(
                        "crash",
                        f"the model run died with exit code {self.process.exitcode} "
                        "(a native crash or the system's out-of-memory killer)",
                    )
                    return
                peak = max(peak, sum(_rss_mb(pid) for pid in self._pids()))
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

    def _pids(self) -> list[int]:
        """The child, its static process and the workers (whose memory counts together)."""
        pids = []
        for process in (self.process, *self.workers):
            if process.pid is not None and process.exitcode is None:
                pids.extend(tree_pids(process.pid))
        return pids

    def _kill(self) -> None:
        for pid in self._pids()[::-1]:  # descendants (the static process) first
            if pid not in {p.pid for p in (self.process, *self.workers)}:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for process in (self.process, *self.workers):
            if process.is_alive():
                process.kill()
                process.join(timeout=10)

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
        self._static_connection.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
