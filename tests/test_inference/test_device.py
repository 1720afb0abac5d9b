"""--device: cuda without a GPU is refused with one clear line, auto falls back to the CPU, and on CUDA the
TorchScript weights are chosen and tiles batched (checked here with the GPU faked; the real run is marked gpu)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from tests.packages import batch, channel, space_in, space_out, write_package
from zoo import api
from zoo.bioimage import devices
from zoo.bioimage.devices import resolve_device
from zoo.cli import app
from zoo.errors import InputError, WeightsError
from zoo.inference.model import load_model
from zoo.inference.planning import tiles_per_call
from zoo.inference.predict import predict_arrays

torch = pytest.importorskip("torch")
runner = CliRunner()


class Smooth(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """TorchScript and ONNX weights of one small network, halo 1."""
    torch.manual_seed(0)
    example = np.random.default_rng(0).normal(size=(1, 1, 32, 32)).astype(np.float32)
    inputs = [batch(), channel("raw"), space_in("y", (16, 4)), space_in("x", (16, 4))]
    outputs = [batch(), channel("out"), space_out("y", halo=1), space_out("x", halo=1)]
    return write_package(
        tmp_path_factory.mktemp("device") / "smooth",
        Smooth(),
        example,
        inputs,
        outputs,
        formats=("torchscript", "onnx"),
        trace=True,
        normalize=True,
    )


@pytest.fixture
def onnx_only(package, tmp_path):
    """The same package with its TorchScript weights taken out of the rdf."""
    import shutil

    from tests.conftest import load_rdf, save_rdf

    folder = tmp_path / "onnx-only"
    shutil.copytree(package, folder)
    rdf = load_rdf(folder)
    del rdf["weights"]["torchscript"]
    save_rdf(folder, rdf)
    return folder


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(devices, "cuda_available", lambda runtime="torch": False)


@pytest.fixture
def fake_gpu(monkeypatch):
    """CUDA reported as present; TorchScript and ONNX backends are loaded on the CPU but record the device asked."""
    from zoo.bioimage import runtimes as backends

    asked = []
    real_load = backends.load_backend

    def load_on_cpu(weight_format, path, device="cpu", **options):
        asked.append((weight_format, device))
        return real_load(weight_format, path, device="cpu", **options)

    monkeypatch.setattr(devices, "cuda_available", lambda runtime="torch": True)
    monkeypatch.setattr(backends, "load_backend", load_on_cpu)
    return asked


def test_cuda_without_a_gpu_exits_2_with_one_line(package, tmp_path, no_gpu):
    tifffile.imwrite(tmp_path / "a.tif", np.ones((20, 20), np.float32))
    result = runner.invoke(
        app, ["predict", str(package), str(tmp_path / "a.tif"), "--out", str(tmp_path / "out"), "--device", "cuda"]
    )
    assert result.exit_code == 2
    assert "--device cuda, but no CUDA device" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="choose one of auto, cpu, cuda"):
        resolve_device("gpu")


def test_auto_without_a_gpu_runs_on_the_cpu_with_onnx(package, tmp_path, no_gpu):
    tifffile.imwrite(tmp_path / "a.tif", np.ones((20, 20), np.float32))
    result = api.predict(package, [tmp_path / "a.tif"], tmp_path / "out", device="auto")
    assert (result.exit_code, result.device, result.weight_format) == (0, "cpu", "onnx")


def test_cuda_chooses_torchscript_and_batches_tiles(package, fake_gpu):
    model = load_model(package, device="cuda")
    try:
        assert (model.device, model.weight_format, model.workers) == ("cuda", "torchscript", 1)
        assert fake_gpu == [("torchscript", "cuda")]
        assert tiles_per_call(model, None) == 4
        image = np.random.default_rng(1).normal(size=(1, 1, 70, 50)).astype(np.float32)
        tiled = predict_arrays(model, image, tile=(24, 24))["out"]
        assert np.abs(tiled - predict_arrays(model, image, tile="none")["out"]).max() < 1e-5
    finally:
        model.close()


def test_auto_on_a_gpu_without_cuda_weights_falls_back_to_the_cpu(onnx_only, fake_gpu):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime here runs ONNX on CUDA")
    with pytest.raises(WeightsError, match="onnx: onnxruntime has no CUDA provider"):
        load_model(onnx_only, device="cuda")
    model = load_model(onnx_only, device="auto")
    try:
        assert (model.device, model.weight_format) == ("cpu", "onnx")
        assert "no CUDA provider" in model.not_used["cuda"]
    finally:
        model.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_and_cpu_predictions_agree(package):
    image = np.random.default_rng(2).normal(size=(1, 1, 300, 260)).astype(np.float32)
    outputs = {}
    for device in ("cuda", "cpu"):
        model = load_model(package, device=device, weights="torchscript")
        try:
            outputs[device] = predict_arrays(model, image, tile=(128, 128))["out"]
        finally:
            model.close()
    assert np.abs(outputs["cuda"] - outputs["cpu"]).max() < 1e-4
