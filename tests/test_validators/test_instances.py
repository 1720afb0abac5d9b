"""REP002: instance label images are judged object by object, not element by element (and XFM001 compares
formats the same way)."""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import pytest

from tests.conftest import rehash
from tests.instance_packages import stardist_package, unpacked_copy
from zoo.validators import validate_source as validate_isolated
from zoo.validators.checks.instances import compare_instances

validate_source = partial(validate_isolated, isolate=False)
AXES = ("batch", "space", "space", "channel")


def labels_bxyc() -> np.ndarray:
    labels = np.zeros((1, 48, 48, 1), np.int32)
    labels[0, 4:16, 4:16, 0] = 1
    labels[0, 4:16, 16:30, 0] = 2  # touching the first
    labels[0, 30:44, 10:24, 0] = 3
    return labels


def test_a_renumbered_label_image_is_reproduced():
    expected = labels_bxyc()
    actual = np.select([expected == 1, expected == 2, expected == 3], [3, 1, 77], 0)
    result = compare_instances(actual, expected, AXES)
    assert result["reproduced"] and result["fraction_matched"] == 1.0 and result["min_iou"] == 1.0


def test_a_boundary_pixel_more_is_reproduced():
    expected = labels_bxyc()
    actual = expected.copy()
    actual[0, 16, 4:8, 0] = 1
    result = compare_instances(actual, expected, AXES)
    assert result["reproduced"] and result["min_iou"] == pytest.approx(144 / 148)


@pytest.mark.parametrize(
    ("edit", "lost", "extra", "problem"),
    [
        (lambda a: np.where(a == 3, 0, a), 1, 0, r"test object 3 at \(36, 16\) is lost \(best IoU 0.00\)"),
        # merged: the larger half keeps a match of IoU 0.54, the smaller is lost
        (lambda a: np.where(a == 2, 1, a), 1, 0, r"test object 1 at \(10, 10\) is lost \(best IoU 0.46\)"),
        # split: 8 of 14 columns keep a match of IoU 0.57, the other 6 are an extra object
        (
            lambda a: np.where((a == 3) & (np.arange(48)[None, None, :, None] > 17), 9, a),
            0,
            1,
            r"object 9 at .* is not",
        ),
    ],
    ids=["lost", "merged", "split"],
)
def test_a_lost_merged_or_split_object_is_not(edit, lost, extra, problem):
    expected = labels_bxyc()
    result = compare_instances(edit(expected), expected, AXES)
    assert not result["reproduced"]
    assert (result["objects_lost"], result["objects_extra"]) == (lost, extra)
    assert re.search(problem, result["first_problem"])


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return stardist_package(tmp_path_factory.getbasetemp())


def findings(report, rule_id):
    return {(f.location, f.status) for f in report.by_id(rule_id)}


@pytest.mark.slow
def test_a_stardist_package_passes_rep002_and_leaves_rep001_to_it(package):
    report = validate_source(package, trust=True)
    assert report.status == "passed", [(f.id, f.message) for f in report.failed()]
    rep002 = {f.location.split("/")[0]: f for f in report.by_id("REP002")}
    assert set(rep002) == {"weights.pytorch_state_dict", "weights.torchscript", "weights.onnx"}
    assert all(f.status == "passed" and f.details["fraction_matched"] == 1.0 for f in rep002.values())
    assert {f.status for f in report.by_id("REP001")} == {"skipped"}
    assert {f.status for f in report.by_id("XFM001")} == {"passed"}


@pytest.mark.slow
def test_renumbered_test_labels_pass_and_a_lost_object_fails(package, tmp_path):
    folder = unpacked_copy(package, tmp_path / "renumbered")
    labels = np.load(folder / "test_output.npy")
    ids = np.unique(labels)[1:]
    renumbered = np.zeros_like(labels)
    for new, old in zip(ids[::-1] * 10, ids):  # every object gets another number
        renumbered[labels == old] = new
    np.save(folder / "test_output.npy", renumbered)
    rehash(folder, "test_output.npy")
    report = validate_source(folder)
    assert report.status == "passed", [(f.id, f.message) for f in report.failed()]

    folder = unpacked_copy(package, tmp_path / "lost")
    labels = np.load(folder / "test_output.npy")
    labels[labels == np.unique(labels)[1]] = 0  # an object the model finds is no longer in the test output
    labels[0, :6, :6, 0] = labels.max() + 1  # and an object the model does not find is
    np.save(folder / "test_output.npy", labels)
    rehash(folder, "test_output.npy")
    report = validate_source(folder)
    assert report.status == "failed"
    failed = [f for f in report.by_id("REP002") if f.status == "failed"]
    assert {f.location.split("/")[0] for f in failed} == {"weights.torchscript", "weights.onnx"}  # no --trust
    assert all(f.details["objects_lost"] == 1 and f.details["objects_extra"] == 1 for f in failed)


STARDIST_STEP = {
    "id": "stardist_postprocessing",
    "kwargs": {"prob_threshold": 0.5, "nms_threshold": 0.4, "n_rays": 32, "grid": [1, 1], "b": 2},
}


def test_deepimagej_stops_at_stardist_postprocessing_and_floors_nothing(package_folder):
    from tests.test_validators.deepimagej_packages import dij_report, edit_rdf, problems, statuses

    folder = package_folder()

    def label_output(rdf):
        rdf["outputs"][0].update(postprocessing=[STARDIST_STEP], data={"type": "int32"})

    edit_rdf(folder, label_output)
    report = dij_report(folder)
    [stop] = problems(report, "DIJ27")
    assert stop.details == {
        "op": "stardist_postprocessing",
        "kwargs": ["b", "grid", "n_rays", "nms_threshold", "prob_threshold"],
    }
    assert stop.location == "outputs.0.postprocessing.0"
    assert statuses(report, "DIJ30") == {"passed"}  # no output to floor: the run stops first
    assert report.deepimagej_verdict == "will not run"


@pytest.mark.slow
def test_a_stardist_package_will_not_run_in_fiji_and_is_not_sent_to_jdlls_stardist_runner(package):
    from tests.test_validators.deepimagej_packages import dij_report, problems, statuses

    report = dij_report(package)
    assert [f.details["op"] for f in problems(report, "DIJ27")] == ["stardist_postprocessing"]
    assert statuses(report, "DIJ15") == {"passed"}
    assert report.deepimagej_verdict == "will not run"
