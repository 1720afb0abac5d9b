"""One good and one bad package per rule ID, built from the session's tiny package."""

from __future__ import annotations

import zipfile
from functools import partial

import numpy as np
import pytest

from tests.conftest import load_rdf, rehash, save_rdf, zip_folder
from zoo.errors import SourceError
from zoo.validators import validate_source as validate_isolated

# the checks run in-process here (fast); isolation has its own tests below and in tests/test_cli/
validate_source = partial(validate_isolated, isolate=False)


def statuses(report, rule_id):
    return {f.status for f in report.by_id(rule_id)}


@pytest.mark.slow
def test_good_package_passes_every_rule(tiny_package):
    report = validate_source(tiny_package, trust=True)
    assert report.status == "passed", [(f.id, f.message) for f in report.failed()]
    for rule_id in ("SAF001", "FMT001", "FMT002", "FMT004", "FIL001", "FIL002", "FIL003", "TEN001", "TEN002", "TEN003"):
        assert statuses(report, rule_id) == {"passed"}, rule_id
    reproduced = {f.location.split("/")[0] for f in report.by_id("REP001") if f.status == "passed"}
    assert reproduced == {
        "weights.pytorch_state_dict",
        "weights.torchscript",
        "weights.onnx",
        "weights.tensorflow_saved_model_bundle",
    }


@pytest.mark.slow
def test_untrusted_state_dict_is_skipped_not_run(tiny_package):
    report = validate_source(tiny_package, trust=False)
    assert report.status == "passed"
    by_location = {f.location.split("/")[0]: f.status for f in report.by_id("REP001")}
    assert by_location["weights.pytorch_state_dict"] == "skipped"
    assert by_location["weights.onnx"] == "passed"


@pytest.mark.slow
def test_altered_test_output_fails_reproduction(package_folder):
    folder = package_folder()
    expected = np.load(folder / "test_output.npy")
    np.save(folder / "test_output.npy", (expected + 0.05).astype(np.float32))
    rehash(folder, "test_output.npy")
    report = validate_source(folder)
    assert report.status == "failed"
    failed = [f for f in report.by_id("REP001") if f.status == "failed"]
    assert {f.location.split("/")[0] for f in failed} == {
        "weights.torchscript",
        "weights.onnx",
        "weights.tensorflow_saved_model_bundle",
    }
    assert failed[0].details["mismatched"] == expected.size
    assert statuses(report, "FIL002") == {"passed"}


def test_changed_file_without_rehash_fails_hash(package_folder):
    folder = package_folder()
    np.save(folder / "test_output.npy", np.load(folder / "test_output.npy") * 0.5)
    report = validate_source(folder)
    [finding] = report.by_id("FIL002")
    assert finding.status == "failed"
    assert finding.details["file"] == "test_output.npy"


@pytest.mark.slow
def test_missing_weights_file_fails_and_skips_its_reproduction(package_folder):
    folder = package_folder()
    (folder / "weights.onnx").unlink()
    report = validate_source(folder)
    assert [f.location for f in report.by_id("FIL001") if f.status == "failed"] == ["weights.onnx"]
    onnx = [f for f in report.by_id("REP001") if f.location.startswith("weights.onnx")]
    assert [f.status for f in onnx] == ["skipped"]


@pytest.mark.slow
def test_remote_file_is_a_finding_not_a_download(package_folder):
    folder = package_folder()
    rdf = load_rdf(folder)
    rdf["weights"]["onnx"]["source"] = "https://example.invalid/weights.onnx"
    save_rdf(folder, rdf)
    report = validate_source(folder)
    [finding] = [f for f in report.by_id("FIL003") if f.status == "warning"]
    assert finding.details["url"] == "https://example.invalid/weights.onnx"
    # the URL is named; the local weights are still tested and decide the verdict (deepImageJ, which would need
    # the file in the package, has its own verdict)
    assert report.failed() == []
    assert {f.location.split("/")[0] for f in report.by_id("REP001") if f.status == "passed"} >= {"weights.torchscript"}
    assert report.status == "passed"


@pytest.mark.slow
def test_metadata_urls_are_named_without_failing(package_folder):
    folder = package_folder()
    rdf = load_rdf(folder)
    rdf["covers"] = ["https://example.invalid/cover.png"]
    save_rdf(folder, rdf)
    report = validate_source(folder, isolate=False)
    [finding] = report.by_id("FIL003")
    assert finding.status == "passed"
    assert finding.details["urls"] == ["https://example.invalid/cover.png"]
    assert report.failed() == []


@pytest.mark.slow
def test_nan_in_expected_output_fails(package_folder):
    folder = package_folder()
    output = np.load(folder / "test_output.npy")
    output[0, 0, 0, 0] = np.nan
    np.save(folder / "test_output.npy", output)
    rehash(folder, "test_output.npy")
    report = validate_source(folder)
    [finding] = report.by_id("TEN002")
    assert finding.status == "failed"
    assert finding.details == {"nan": 1, "inf": 0}


@pytest.mark.slow
def test_blank_test_input_fails(package_folder):
    folder = package_folder()
    np.save(folder / "test_input.npy", np.zeros_like(np.load(folder / "test_input.npy")))
    rehash(folder, "test_input.npy")
    report = validate_source(folder)
    assert [f.location for f in report.by_id("TEN003") if f.status == "failed"] == ["inputs.0.test_tensor"]


@pytest.mark.slow
def test_test_tensor_of_wrong_shape_fails(package_folder):
    folder = package_folder()
    test_input = np.load(folder / "test_input.npy")
    np.save(folder / "test_input.npy", test_input[..., :-1])  # one pixel less: not min + n·step
    rehash(folder, "test_input.npy")
    report = validate_source(folder)
    [finding] = [f for f in report.by_id("TEN001") if f.status == "failed"]
    assert finding.details["shape"][-1] == test_input.shape[-1] - 1


def test_unreadable_yaml_fails_format(package_folder):
    folder = package_folder()
    (folder / "rdf.yaml").write_text("name: [unclosed\n")
    report = validate_source(folder)
    assert statuses(report, "FMT001") == {"failed"}
    assert statuses(report, "REP001") == {"skipped"}


def test_invalid_field_is_named(package_folder):
    folder = package_folder()
    rdf = load_rdf(folder)
    rdf["inputs"][0]["axes"][2]["size"] = {"min": -5, "step": 8}
    save_rdf(folder, rdf)
    report = validate_source(folder)
    failed = [f for f in report.by_id("FMT002") if f.status == "failed"]
    assert failed and any("inputs.0.axes" in f.location for f in failed)


def test_non_model_resource_fails(package_folder):
    folder = package_folder()
    rdf = {
        "type": "generic",
        "format_version": "0.3.0",
        "name": "not a model",
        "description": "generic",
        "authors": [{"name": "x"}],
        "cite": [{"text": "x", "doi": "10.1/x"}],
        "license": "MIT",
    }
    save_rdf(folder, rdf)
    report = validate_source(folder)
    assert statuses(report, "FMT004") == {"failed"}


@pytest.mark.parametrize("member", ["../escape.txt", "/absolute.txt"])
def test_unsafe_archive_is_refused_before_extraction(tmp_path, member):
    archive_path = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("rdf.yaml", "type: model\n")
        archive.writestr(member, "x")
    report = validate_source(archive_path)
    assert statuses(report, "SAF001") == {"failed"}
    assert not (tmp_path.parent / "escape.txt").exists()


@pytest.mark.slow
def test_zip_of_a_good_folder_passes(package_folder, tmp_path):
    report = validate_source(zip_folder(package_folder(), tmp_path / "copy.zip"))
    assert report.status == "passed"
    assert statuses(report, "SAF001") == {"passed"}


def test_nothing_to_validate_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        validate_source(tmp_path / "missing.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no rdf.yaml"):
        validate_source(tmp_path / "empty")


@pytest.mark.slow
def test_validation_never_changes_the_input(package_folder):
    folder = package_folder()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    validate_source(folder, trust=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.slow
def test_keep_artifacts_saves_produced_outputs(tiny_package, tmp_path):
    validate_source(tiny_package, keep_artifacts=tmp_path / "artifacts")
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == [
        "onnx_probability.npy",
        "tensorflow_saved_model_bundle_probability.npy",
        "torchscript_probability.npy",
    ]


@pytest.mark.slow
def test_validation_writes_nothing_into_the_working_folder(tiny_package, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = validate_source(tiny_package)
    assert any(
        f.location.startswith("weights.tensorflow_saved_model_bundle") and f.status == "passed"
        for f in report.by_id("REP001")
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cross_format_agreement_is_measured_on_two_sizes(tiny_package):
    report = validate_source(tiny_package, trust=True)
    findings = report.by_id("XFM001")
    assert findings and {f.status for f in findings} == {"passed"}
    assert len(findings) == 6  # four formats, every pair
    assert all(f.details["max_abs"] <= 1e-4 and f.details["cases"] == ["test input", "noise probe"] for f in findings)


@pytest.mark.slow
def test_a_format_that_disagrees_with_the_others_fails_cross_format(package_folder, monkeypatch):
    from zoo.validators.checks import cross_format

    real = cross_format.probe_outputs

    def skew_onnx(pkg, descr5, weight_format, name):
        outputs = real(pkg, descr5, weight_format, name)
        if weight_format == "onnx":
            outputs = {key: value.copy() for key, value in outputs.items()}
            for value in outputs.values():
                value[..., :4] += 0.5
        return outputs

    monkeypatch.setattr(cross_format, "probe_outputs", skew_onnx)
    report = validate_source(package_folder())
    failed = [f for f in report.by_id("XFM001") if f.status == "failed"]
    assert failed and all("onnx" in f.location for f in failed)
    assert failed[0].details["case"] == "noise probe"
    passed = [f for f in report.by_id("XFM001") if f.status == "passed"]
    assert [f.location for f in passed] == ["tensorflow_saved_model_bundle vs torchscript"]


@pytest.mark.slow
def test_isolated_run_matches_in_process_run(tiny_package):
    isolated = validate_isolated(tiny_package)
    in_process = validate_source(tiny_package)
    summary = lambda report: sorted((f.id, f.status, f.location) for f in report.findings)  # noqa: E731
    assert summary(isolated) == summary(in_process)


def test_a_model_run_over_the_time_limit_is_a_finding(tiny_package):
    report = validate_isolated(tiny_package, time_limit_s=0.5)
    [stopped] = [f for f in report.by_id("REP001") if f.status == "failed"]
    assert stopped.details == {"reason": "time"}
    assert report.status == "failed"


def test_a_model_run_over_the_memory_limit_is_a_finding(tiny_package):
    report = validate_isolated(tiny_package, memory_limit_mb=50)
    [stopped] = [f for f in report.by_id("REP001") if f.status == "failed"]
    assert stopped.details == {"reason": "memory"}
