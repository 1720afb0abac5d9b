"""OUT001 (declared range) and OUT002 (no NaN/Inf), on the test input, a constant image and noise."""

from __future__ import annotations

import pytest

from tests.conftest import load_rdf, save_rdf
from tests.test_validators import runtime_packages as rp


def conv_package(tmp_path, data_range=None):
    return rp.write_package(
        tmp_path / "p",
        rp.conv_stack(2),
        rp.blob_image((1, 1, 24, 24)),
        rp.image_axes(),
        rp.output_axes(halo=2),
        data_range=data_range,
    )


@pytest.mark.slow
def test_outputs_within_the_declared_range_pass(tmp_path):
    found = rp.run_rules(conv_package(tmp_path, [-1.0, 1.0]), ("OUT001", "OUT002"))
    [in_range] = found["OUT001"]
    assert in_range.status == "passed"
    low, high = in_range.details["observed"]["out"]
    assert -1.0 <= low < high <= 1.0
    [finite] = found["OUT002"]
    assert finite.status == "passed" and finite.details["cases"] == ["test input", "constant image", "noise"]


@pytest.mark.slow
def test_outputs_outside_the_declared_range_fail_with_values(tmp_path):
    [*failed] = rp.run_rules(conv_package(tmp_path, [5.0, 6.0]), ("OUT001",))["OUT001"]
    assert {f.status for f in failed} == {"failed"}
    assert {f.details["case"] for f in failed} == {"test input", "constant image", "noise"}
    test_input = next(f for f in failed if f.details["case"] == "test input")
    assert test_input.details["declared"] == "[5, 6]" and test_input.details["max"] < 5.0
    assert test_input.details["outside"] == 24 * 24


@pytest.mark.slow
def test_open_ended_range_checks_the_given_bound(tmp_path):
    folder = conv_package(tmp_path, [0.0, None])
    failed = [f for f in rp.run_rules(folder, ("OUT001",))["OUT001"] if f.status == "failed"]
    assert failed and all(f.details["declared"] == "[0, ∞]" and f.details["min"] < 0 for f in failed)


@pytest.mark.slow
def test_no_declared_range_is_skipped_with_the_reason(tmp_path):
    [finding] = rp.run_rules(conv_package(tmp_path), ("OUT001",))["OUT001"]
    assert finding.status == "skipped" and "no output declares a data range" in finding.message


@pytest.mark.slow
def test_division_by_a_zero_spread_gives_nan_on_the_constant_probe(tmp_path):
    folder = rp.write_package(
        tmp_path / "p",
        rp.spread_normalising_model(),
        rp.blob_image((1, 1, 24, 24)),
        rp.image_axes(),
        rp.output_axes(halo=1),
    )
    [finding] = rp.run_rules(folder, ("OUT002",))["OUT002"]
    assert finding.status == "failed" and finding.details["case"] == "constant image"
    assert finding.details["nan"] == finding.details["size"] == 16 * 16


@pytest.mark.slow
def test_tiny_unet_output_range_and_probes_pass(package_folder):
    folder = rp.only_weights(package_folder(), "onnx")
    found = rp.run_rules(folder, ("OUT001", "OUT002"))
    assert rp.statuses(found["OUT001"]) == {"passed"} and rp.statuses(found["OUT002"]) == {"passed"}
    rdf = load_rdf(folder)
    rdf["outputs"][0]["data"]["range"] = [2.0, 3.0]  # a probability declared as something it is not
    save_rdf(folder, rdf)
    assert rp.statuses(rp.run_rules(folder, ("OUT001",))["OUT001"]) == {"failed"}
