"""What every check sees: the opened package, its raw rdf, the parsed description, and a cache of loaded models
and of their outputs, so that each weight format is loaded once and each input is run once per format.

Where weight formats run in worker processes (the isolated validation, zoo.validators.model_worker), the runs every
check asks for (the test input twice, the probes) start for all those formats at once, one thread per format, as
soon as the first is asked for: the formats compute side by side and the checks find their outputs ready."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.bioimage.formats import CODE_EXECUTING_FORMATS
from zoo.bioimage.source import OpenedSource
from zoo.validators.measure import Measurement, measure

logger = logging.getLogger(__name__)


@dataclass
class PackageUnderTest:
    opened: OpenedSource
    trust: bool = False
    device: str = "cpu"
    keep_artifacts: Path | None = None
    rdf: dict[str, Any] | None = None  # raw yaml, None when unreadable
    rdf_error: str | None = None  # the rdf is not readable YAML
    spec_error: str | None = None  # bioimageio.spec raised instead of reporting
    descr: Any = None  # a valid bioimageio.spec description, None when the format check failed
    invalid: Any = None  # bioimageio.spec's InvalidDescr, when the format check failed
    other_resource: Any = None  # a valid description of something that is not a model
    file_problems: dict[str, str] = field(default_factory=dict)  # location -> why the file is unusable
    test_outputs: dict[str, Any] = field(default_factory=dict)  # weight format -> outputs on the test input
    # weight format -> {"load" | "first inference" | "inference": Measurement} (PRF001 reports them)
    performance: dict[str, dict[str, Measurement]] = field(default_factory=dict)
    workers: dict[str, Any] = field(default_factory=dict)  # weight format -> WorkerClient (isolated runs)
    _pipelines: dict[tuple[str, str], Any] = field(default_factory=dict)
    _memo: dict[Any, tuple[bool, Any]] = field(default_factory=dict)
    _locks: dict[Any, threading.Lock] = field(default_factory=dict)
    _locks_lock: threading.Lock = field(default_factory=threading.Lock)
    _in_worker: set[tuple[str, str]] = field(default_factory=set)  # (weight format, device) run by a worker
    _prefetch: list[threading.Thread] | None = None
    _workdir: tempfile.TemporaryDirectory | None = None

    @property
    def root(self) -> Path:
        return self.opened.root

    @property
    def weight_formats(self) -> list[str]:
        if self.descr is None:
            return []
        return [name for name, entry in self.descr.weights if entry is not None]

    def runnable_formats(self) -> list[str]:
        """Weight formats whose files are available and that may be run (code needs --trust)."""
        return [
            wf
            for wf in self.weight_formats
            if not any(loc.startswith(f"weights.{wf}") for loc in self.file_problems)
            and (self.trust or wf not in CODE_EXECUTING_FORMATS)
        ]

    def pipeline(self, weight_format: str, device: str | None = None):
        """A bioimageio.core prediction pipeline for one weight format on `device` (default: the package's
        device), loaded once and reused; the first load on the package's device is measured. A format with a
        worker process runs its model there (see zoo.validators.model_worker), through the same pipeline.

        Loading runs in a private working folder: bioimageio.core unzips TF weights into
        `./bioimageio_unzipped_tf_weights`, which would litter the user's folder and mix up packages."""
        device = device or self.device
        key = (weight_format, device)
        with self._lock(("pipeline", key)):
            if key not in self._pipelines:
                self._pipelines[key] = self._load_pipeline(weight_format, device)
        return self._pipelines[key]

    def _load_pipeline(self, weight_format: str, device: str):
        from bioimageio.core import create_prediction_pipeline

        client = self.workers.get(weight_format) if device == "cpu" else None
        pids = (client.pid,) if client is not None else ()
        adapter = None
        with measure(cuda=device.startswith("cuda"), pids=pids) as loading:
            if client is not None:
                from zoo.validators.model_worker import worker_adapter

                adapter = worker_adapter(self.descr, client, device)
            if adapter is not None:  # nothing unzipped here: no working folder to switch to
                pipeline = create_prediction_pipeline(
                    self.descr, weight_format=weight_format, devices=[device], model_adapter=adapter
                )
            else:
                pipeline = self._in_workdir(
                    lambda: create_prediction_pipeline(self.descr, weight_format=weight_format, devices=[device])
                )
        if adapter is not None:
            self._in_worker.add((weight_format, device))
        if device == self.device:
            self.performance.setdefault(weight_format, {})["load"] = loading
        return pipeline

    def _in_workdir(self, load):
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="zoo-load-")
        previous = os.getcwd()
        os.chdir(self._workdir.name)
        try:
            return load()
        finally:
            os.chdir(previous)

    def _worker_pids(self, weight_format: str) -> tuple[int, ...]:
        """The worker whose memory counts with this process's for `weight_format`'s runs, if it has one."""
        if (weight_format, self.device) in self._in_worker:
            return (self.workers[weight_format].pid,)
        return ()

    def _lock(self, key) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def memo(self, key, compute):
        """`compute()` once per key: its value, or the exception it raised (raised again on every call). A key
        being computed in another thread is waited for."""
        if key not in self._memo:
            with self._lock(key):
                if key not in self._memo:
                    try:
                        self._memo[key] = (True, compute())
                    except Exception as e:
                        self._memo[key] = (False, e)
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    @property
    def descr_v05(self):
        """The description in format 0.5 (a 0.4 one converted by bioimageio.spec), None if it cannot be."""

        def convert():
            from bioimageio.spec import load_description
            from bioimageio.spec.model import v0_5

            if isinstance(self.descr, v0_5.ModelDescr):
                return self.descr
            converted = load_description(self.opened.rdf_path, perform_io_checks=False, format_version="latest")
            if not isinstance(converted, v0_5.ModelDescr):
                return None
            return keep_fixed_batch(converted, self.tensor_specs[0])

        try:
            return self.memo("descr_v05", convert)
        except Exception:
            logger.debug("converting the description to format 0.5 failed", exc_info=True)
            return None

    @property
    def tensor_specs(self):
        """(inputs, outputs) as the rdf says them, in its own format version (zoo.bioimage.tensors)."""
        from zoo.bioimage.tensors import tensor_specs

        return self.memo("tensor specs", lambda: tensor_specs(self.rdf or {}))

    def test_input_sample(self):
        from bioimageio.core.digest_spec import get_test_input_sample

        return self.memo("test inputs", lambda: get_test_input_sample(self.descr))

    def test_output(self, weight_format: str):
        """Outputs of `weight_format` on the test input through the rdf's processing (REP001 compares them with
        the test outputs), run and measured once; a failure is raised again on every call."""

        def run():
            from zoo.validators.checks.reproduction import run_on_test_input

            pipeline = self.pipeline(weight_format)
            with measure(cuda=self.device.startswith("cuda"), pids=self._worker_pids(weight_format)) as running:
                outputs = run_on_test_input(pipeline, self.test_input_sample())
            self.performance.setdefault(weight_format, {})["first inference"] = running
            self.test_outputs[weight_format] = outputs
            return outputs

        self._start_prefetch()
        return self.memo(("test output", weight_format), run)

    def repeated_test_output(self, weight_format: str):
        """A second run of the test input, on the warm model: DET001 compares it with the first, PRF001 reports
        its time."""

        def run():
            from zoo.validators.checks.reproduction import run_on_test_input

            self.test_output(weight_format)
            pipeline = self.pipeline(weight_format)
            with measure(cuda=self.device.startswith("cuda"), pids=self._worker_pids(weight_format)) as running:
                outputs = run_on_test_input(pipeline, self.test_input_sample())
            self.performance.setdefault(weight_format, {})["inference"] = running
            return outputs

        return self.memo(("repeated test output", weight_format), run)

    def _start_prefetch(self) -> None:
        """Once: one thread per runnable format with a worker, running what the checks will ask of it (the test
        input, its repetition, the noise probe, the constant probe on the fastest format, deepImageJ's
        emulation), in their order."""
        if self._prefetch is not None:
            return
        self._prefetch = []
        runnable = self.runnable_formats()
        formats = [wf for wf in runnable if wf in self.workers and self.device == "cpu"]
        if not formats:
            return
        from zoo.validators.checks.runtime import fastest

        self.descr_v05  # noqa: B018  (converted once, here, not by two threads at once)
        for weight_format in formats:
            thread = threading.Thread(
                target=self._prefetch_runs,
                args=(weight_format, weight_format == fastest(runnable)),
                name=f"zoo-runs-{weight_format}",
                daemon=True,
            )
            self._prefetch.append(thread)
            thread.start()

    def _prefetch_runs(self, weight_format: str, fastest: bool) -> None:
        """The runs of `weight_format` in the order the checks ask for them; failures stay memoised."""
        from zoo.validators.checks.outputs import ONE_FORMAT_PROBES
        from zoo.validators.checks.runtime import PROBES, probe_outputs

        descr5 = self.descr_v05
        every_format = [name for name in PROBES if name not in ONE_FORMAT_PROBES] if descr5 is not None else []
        one_format = list(ONE_FORMAT_PROBES) if descr5 is not None and fastest else []
        try:
            self.test_output(weight_format)
            for name in every_format:
                probe_outputs(self, descr5, weight_format, name)
            self.repeated_test_output(weight_format)
            for name in one_format:
                probe_outputs(self, descr5, weight_format, name)
            if self.rdf is not None:
                from zoo.validators.checks.deepimagej_emulation import start_emulation

                start_emulation(self, weight_format)
        except Exception:  # memoised: the check that asks for the run reports it
            logger.debug("a run of %s failed", weight_format, exc_info=True)

    def working_formats(self) -> list[str]:
        """Runnable weight formats that ran on the test input (REP001 reports the others)."""
        working = []
        for weight_format in self.runnable_formats():
            try:
                self.test_output(weight_format)
            except Exception:
                continue
            working.append(weight_format)
        return working

    def close(self) -> None:
        for key, pipeline in self._pipelines.items():
            if key in self._in_worker:  # the model lives in the worker, which ends with the child
                continue
            try:
                pipeline.unload()
            except Exception:  # unloading is best effort
                logger.debug("unloading a pipeline failed", exc_info=True)
        self._pipelines.clear()
        self._memo.clear()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


def keep_fixed_batch(descr5, inputs):
    """bioimageio.spec's 0.4 → 0.5 upgrade drops a batch that the 0.4 shape fixes at 1 (`shape: [1, 1, 512, 512]`):
    put it back from zoo's reading of the original, so that no check feeds that model a batch of two."""
    from bioimageio.spec.model import v0_5

    fixed = {spec.id for spec in inputs for axis in spec.axes if axis.kind == "batch" and axis.sizes is not None}
    if not fixed:
        return descr5
    new_inputs = []
    for tensor in descr5.inputs:
        if str(tensor.id) in fixed:
            axes = [a.model_copy(update={"size": 1}) if isinstance(a, v0_5.BatchAxis) else a for a in tensor.axes]
            tensor = tensor.model_copy(update={"axes": axes})
        new_inputs.append(tensor)
    return descr5.model_copy(update={"inputs": new_inputs})
