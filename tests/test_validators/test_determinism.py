"""DET001: the same input twice gives the same output."""

from __future__ import annotations

import pytest

from tests.test_validators import runtime_packages as rp


@pytest.mark.slow
def test_deterministic_model_is_bitwise_identical(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(2), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=2)
    )
    [finding] = rp.run_rules(folder, ("DET001",))["DET001"]
    assert finding.status == "passed"
    assert finding.details["bitwise"] is True and finding.details["max_abs"] == 0.0


@pytest.mark.slow
def test_dropout_left_on_at_inference_fails_with_the_difference(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.dropout_model(), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=2)
    )
    [finding] = rp.run_rules(folder, ("DET001",))["DET001"]
    assert finding.status == "failed"
    assert finding.details["bitwise"] is False
    assert finding.details["max_abs"] > 0.1 and finding.details["ppm"] > 1e5
    assert finding.location == "weights.torchscript/outputs[out]"


@pytest.mark.slow
def test_differences_within_the_tolerance_pass_but_are_not_called_bitwise(tmp_path, monkeypatch):
    from zoo.validators.context import PackageUnderTest

    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(2), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=2)
    )
    real = PackageUnderTest.repeated_test_output

    def nudged(self, weight_format):
        outputs = real(self, weight_format)
        for tensor in outputs.members.values():
            tensor.data.values[..., 0, 0] += 1e-6
        return outputs

    monkeypatch.setattr(PackageUnderTest, "repeated_test_output", nudged)
    [finding] = rp.run_rules(folder, ("DET001",))["DET001"]
    assert finding.status == "passed" and finding.details["bitwise"] is False
    assert 5e-7 < finding.details["max_abs"] < 2e-6
