from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from ruyaml import YAML

from tests.conftest import tiny_train_config
from zoo.packaging.export import parse_formats
from zoo.progress import SilentProgress
from zoo.validators import validate_source


def test_keras_formats_default_to_native_savedmodel_and_onnx():
    assert parse_formats(None, "keras") == ["keras_v3", "tensorflow_saved_model_bundle", "onnx"]
    assert parse_formats("onnx", "keras") == ["keras_v3", "onnx"]


@pytest.mark.slow
def test_keras_package_is_channels_last_with_three_proven_formats(tiny_keras_package):
    with zipfile.ZipFile(tiny_keras_package) as archive:
        rdf = YAML(typ="safe").load(archive.read("rdf.yaml"))
        with archive.open("test_input.npy") as f:
            test_input = np.load(f)
    assert [axis["id"] for axis in rdf["inputs"][0]["axes"]] == ["batch", "y", "x", "channel"]
    assert test_input.shape[0] == 1 and test_input.shape[-1] == 1
    assert set(rdf["weights"]) == {"keras_v3", "tensorflow_saved_model_bundle", "onnx"}
    assert rdf["weights"]["onnx"]["parent"] == "keras_v3"
    assert rdf["weights"]["onnx"]["opset_version"] <= 17
    assert all(a["max_abs"] <= 1e-4 for a in rdf["config"]["zoo"]["agreement"].values())
    assert "keras" in rdf["tags"]


@pytest.mark.slow
def test_keras_package_validates_in_every_format(tiny_keras_package):
    report = validate_source(tiny_keras_package, trust=True)
    assert report.status == "passed", [(f.id, f.message) for f in report.failed()]
    reproduced = {f.location.split("/")[0] for f in report.by_id("REP001") if f.status == "passed"}
    assert reproduced == {"weights.keras_v3", "weights.tensorflow_saved_model_bundle", "weights.onnx"}


def test_keras_run_resumes_after_an_interruption(tmp_path):
    """Interrupted in epoch 2 of 2, resumed: the history continues from the saved epoch and holds both epochs;
    the result exports to Keras v3 and a TF SavedModel, each proven (the fast lane's one Keras test)."""
    from tests.test_trainers.test_zoo_trainers import StopAtEpoch
    from zoo import api

    config = tiny_train_config(tmp_path, trainer="unet2d-keras", epochs=2)
    with pytest.raises(KeyboardInterrupt):
        api.train(config, StopAtEpoch(2))
    assert (tmp_path / "train_state.npz").is_file() and not (tmp_path / "checkpoint.pt").exists()
    saved = json.loads(str(np.load(tmp_path / "train_state.npz")["meta"]))
    seen = EpochsSeen()
    resumed = api.train(tiny_train_config(tmp_path, trainer="unet2d-keras", epochs=2, resume=True), seen)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert seen.epochs == {2}, "epoch 1 was trained again: the saved state was ignored"
    assert resumed.history[0] == saved["history"][0]  # epoch 1 comes from the state, not from a new run

    exported = api.export(resumed.checkpoint, tmp_path / "weights", "tensorflow", progress=False)
    assert {w.weight_format for w in exported.weights} == {"keras_v3", "tensorflow_saved_model_bundle"}
    assert all(w.agreement.passed and w.path.is_file() for w in exported.weights)


class EpochsSeen(SilentProgress):
    def __init__(self) -> None:
        self.epochs: set[int] = set()

    def advance(self, steps: int = 1, **info) -> None:
        self.epochs.add(info.get("epoch"))
