"""What every check sees: the opened package, its raw rdf, the parsed description, and a cache of loaded models
and of their outputs, so that each weight format is loaded once and each input is run once per format."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.bioimage.source import OpenedSource
from zoo.validators.measure import Measurement, measure

logger = logging.getLogger(__name__)

# loading these runs code shipped in the package (architecture modules, pickles, Keras lambdas)
CODE_EXECUTING_FORMATS = ("pytorch_state_dict", "keras_hdf5", "keras_v3")


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
    _pipelines: dict[tuple[str, str], Any] = field(default_factory=dict)
    _memo: dict[Any, tuple[bool, Any]] = field(default_factory=dict)
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
        device), loaded once and reused; the first load on the package's device is measured.

        Loading runs in a private working folder: bioimageio.core unzips TF weights into
        `./bioimageio_unzipped_tf_weights`, which would litter the user's folder and mix up packages."""
        device = device or self.device
        key = (weight_format, device)
        if key not in self._pipelines:
            from bioimageio.core import create_prediction_pipeline

            if self._workdir is None:
                self._workdir = tempfile.TemporaryDirectory(prefix="zoo-load-")
            previous = os.getcwd()
            os.chdir(self._workdir.name)
            try:
                with measure(cuda=device.startswith("cuda")) as loading:
                    self._pipelines[key] = create_prediction_pipeline(
                        self.descr, weight_format=weight_format, devices=[device]
                    )
            finally:
                os.chdir(previous)
            if device == self.device:
                self.performance.setdefault(weight_format, {})["load"] = loading
        return self._pipelines[key]

    def memo(self, key, compute):
        """`compute()` once per key: its value, or the exception it raised (raised again on every call)."""
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
            with measure(cuda=self.device.startswith("cuda")) as running:
                outputs = run_on_test_input(pipeline, self.test_input_sample())
            self.performance.setdefault(weight_format, {})["first inference"] = running
            self.test_outputs[weight_format] = outputs
            return outputs

        return self.memo(("test output", weight_format), run)

    def repeated_test_output(self, weight_format: str):
        """A second run of the test input, on the warm model: DET001 compares it with the first, PRF001 reports
        its time."""

        def run():
            from zoo.validators.checks.reproduction import run_on_test_input

            self.test_output(weight_format)
            with measure(cuda=self.device.startswith("cuda")) as running:
                outputs = run_on_test_input(self.pipeline(weight_format), self.test_input_sample())
            self.performance.setdefault(weight_format, {})["inference"] = running
            return outputs

        return self.memo(("repeated test output", weight_format), run)

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
        for pipeline in self._pipelines.values():
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
