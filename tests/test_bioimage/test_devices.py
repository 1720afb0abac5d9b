"""One device rule for every stage: auto follows the runtime, cuda without a GPU and unknown names are input errors."""

import pytest

from zoo.bioimage import devices
from zoo.errors import InputError


@pytest.mark.parametrize("runtime", ["torch", "tensorflow"])
@pytest.mark.parametrize(
    ("gpu", "asked", "chosen"),
    [
        (True, "auto", "cuda"),
        (False, "auto", "cpu"),
        (True, "cuda", "cuda"),
        (True, "cpu", "cpu"),
        (False, "cpu", "cpu"),
    ],
)
def test_device_follows_the_runtime(monkeypatch, runtime, gpu, asked, chosen):
    monkeypatch.setattr(devices, "cuda_available", lambda r: gpu)
    assert devices.resolve_device(asked, runtime) == chosen


@pytest.mark.parametrize(("runtime", "name"), [("torch", "PyTorch"), ("tensorflow", "TensorFlow")])
def test_cuda_without_a_gpu_is_an_input_error_naming_the_runtime(monkeypatch, runtime, name):
    monkeypatch.setattr(devices, "cuda_available", lambda r: False)
    with pytest.raises(InputError, match=f"--device cuda, but no CUDA device is visible to {name}"):
        devices.resolve_device("cuda", runtime)


def test_an_unknown_device_is_an_input_error():
    with pytest.raises(InputError, match="choose one of auto, cpu, cuda"):
        devices.resolve_device("gpu")


def test_cpu_asks_no_runtime(monkeypatch):
    def refuse(runtime):
        raise AssertionError("asked the runtime for a GPU")

    monkeypatch.setattr(devices, "cuda_available", refuse)
    assert devices.resolve_device("cpu", "tensorflow") == "cpu"
