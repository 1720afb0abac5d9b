"""Packages of instance segmentation: stardist_postprocessing with the trained thresholds, a label-image test
output, and a package that bioimageio.core runs and validates."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from ruyaml import YAML

from tests.instance_packages import stardist_checkpoint, stardist_package
from zoo.errors import PackageError
from zoo.packaging import instances
from zoo.trainers.task import Task


def instance_task(**stardist) -> Task:
    kwargs = {"prob_threshold": 0.5, "nms_threshold": 0.4, "n_rays": 8, "grid": [1, 1], "b": 2, **stardist}
    return Task(kind="instances", output_id="labels", output_channels=("instance",), extra={"stardist": kwargs})


def test_the_rdf_gets_the_trained_post_processing_and_int32_labels():
    from bioimageio.spec.model import v0_5

    task = instance_task(prob_threshold=0.61)
    (step,) = instances.postprocessing(task, v0_5)["postprocessing"]
    assert step.id == "stardist_postprocessing"
    assert (step.kwargs.prob_threshold, step.kwargs.nms_threshold, step.kwargs.n_rays) == (0.61, 0.4, 8)
    assert instances.output_data(task, v0_5).type == "int32"
    assert instances.postprocessing(Task(), v0_5) == {}  # other tasks' rdf stays as it was
    assert instances.output_data(Task(), v0_5).type == "float32"


def test_the_test_output_is_the_post_processed_label_image():
    from stardist import edt_prob, star_dist

    labels = np.zeros((40, 40), np.int32)
    labels[5:15, 5:15], labels[20:32, 8:18] = 1, 2
    network = np.concatenate([edt_prob(labels)[..., None], star_dist(labels, 8)], axis=-1)[None].astype(np.float32)
    output = instances.described_output(instance_task(), network, "byxc")
    assert output.shape == (1, 40, 40, 1) and output.dtype == np.int32
    assert len(np.unique(output)) == 3
    with pytest.raises(PackageError, match="finds no object in the test image"):
        instances.described_output(instance_task(prob_threshold=0.99), network * 0.5, "byxc")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return stardist_package(tmp_path_factory.getbasetemp())


@pytest.mark.slow
def test_a_stardist_package_passes_zoo_and_the_reference_validator(package, tmp_path):
    from bioimageio.core import test_model

    from zoo.trainers.checkpoint import load_checkpoint

    with zipfile.ZipFile(package) as archive:
        rdf = YAML(typ="safe").load(archive.read("rdf.yaml"))
        archive.extract("test_output.npy", tmp_path)
    output = rdf["outputs"][0]
    assert [a["id"] for a in output["axes"]] == ["batch", "y", "x", "channel"]
    assert output["data"]["type"] == "int32"
    kwargs = output["postprocessing"][0]["kwargs"]
    recorded = load_checkpoint(stardist_checkpoint(tmp_path)).task["extra"]["stardist"]
    assert kwargs == {**recorded, "grid": [1, 1]} and kwargs["n_rays"] == 32
    assert "stardist" not in rdf["config"]  # JDLL would route it to its Keras StarDist runner (DIJ15)
    labels = np.load(tmp_path / "test_output.npy")
    assert labels.dtype == np.int32 and labels.max() >= 1
    assert len(rdf["weights"]) == 3
    summary = test_model(str(package))
    assert summary.status == "passed", [d.name for d in summary.details if d.status != "passed"]
