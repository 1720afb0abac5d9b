"""GPU001: CPU and GPU agree. Without a GPU (as here) it is skipped with the reason; the comparison itself is run
with the CPU standing in for the GPU."""

from __future__ import annotations

import pytest

from tests.test_validators import runtime_packages as rp
from zoo.validators.checks import devices


@pytest.fixture
def conv_package(tmp_path):
    return rp.write_package(
        tmp_path / "p", rp.conv_stack(2), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=2)
    )


def test_without_a_gpu_the_check_is_skipped_with_the_reason(conv_package):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    [finding] = rp.run_rules(conv_package, ("GPU001",))["GPU001"]
    assert finding.status == "skipped"
    assert "no CUDA GPU here" in finding.message and "torch.cuda.is_available() is False" in finding.message


def test_formats_without_a_device_choice_are_named():
    assert devices.device_pair("torchscript", "cuda") == ("cpu", "cuda")
    assert "does not place tensorflow_saved_model_bundle" in devices.device_pair(
        "tensorflow_saved_model_bundle", "cuda"
    )
    onnx = devices.device_pair("onnx", "cuda")
    assert onnx == ("CPUExecutionProvider", "CUDAExecutionProvider") or "CUDAExecutionProvider" in onnx


@pytest.mark.slow
def test_agreeing_devices_pass(conv_package, monkeypatch):
    monkeypatch.setattr(devices, "accelerator", lambda: ("cpu", "the CPU standing in for a GPU"))
    [finding] = rp.run_rules(conv_package, ("GPU001",))["GPU001"]
    assert finding.status == "passed" and finding.details["max_abs"] == 0.0
    assert finding.details["devices"] == ["cpu", "cpu"]


@pytest.mark.slow
def test_disagreeing_devices_fail_with_the_difference(conv_package, monkeypatch):
    monkeypatch.setattr(devices, "accelerator", lambda: ("gpu-standin", "the CPU standing in for a GPU"))
    real = devices.run_on_device

    def run(pkg, weight_format, device):
        outputs = real(pkg, weight_format, "cpu")
        if device == "gpu-standin":
            from copy import deepcopy

            outputs = deepcopy(outputs)
            for tensor in outputs.members.values():
                tensor.data.values[..., :3, :] += 0.01
        return outputs

    monkeypatch.setattr(devices, "run_on_device", run)
    [finding] = rp.run_rules(conv_package, ("GPU001",))["GPU001"]
    assert finding.status == "failed"
    assert finding.details["mismatched"] == 3 * 24 and abs(finding.details["max_abs"] - 0.01) < 1e-6
