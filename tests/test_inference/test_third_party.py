"""Other people's packages, as `zoo predict` meets them: each real package's test input, through the API and
through the CLI, reproduces its test output (bioimageio.spec's tolerance, or the model's own); format 0.4 packages
that bioimageio.spec cannot upgrade to 0.5 are predicted in their own format; a fixed batch is fed one sample per
call. The real packages live in ../shared (skipped where absent); the 0.4 packages are built here."""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from tests.conftest import SHARED, save_rdf
from zoo import api
from zoo.cli import app
from zoo.errors import SourceError
from zoo.inference.model import load_model
from zoo.inference.predict import predict_arrays

runner = CliRunner()
REAL_MODELS = SHARED / "real-models"
REAL_WORLD = SHARED / "real-world" / "packages"
RTOL, ATOL = 1e-3, 1e-3  # bioimageio.spec's defaults for reproducing a test output


def _package(folder: Path, tmp_path: Path) -> Path:
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present (a user's clone)")
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return target


def _tolerance(rdf_path: Path, output_id: str) -> tuple[float, float]:
    """The model's reproducibility_tolerance for this output (format 0.5 config), else the spec's defaults."""
    from zoo.bioimage.rdf import read_rdf

    config = read_rdf(rdf_path).get("config") or {}
    for entry in (config.get("bioimageio") or {}).get("reproducibility_tolerance") or []:
        ids = entry.get("output_ids") or []
        if not ids or output_id in ids:
            return float(entry.get("relative_tolerance", RTOL)), float(entry.get("absolute_tolerance", ATOL))
    return RTOL, ATOL


def _assert_reproduces(got: np.ndarray, expected: np.ndarray, tolerance: tuple[float, float]) -> None:
    got = np.asarray(got, dtype=np.float64).reshape(expected.shape)  # files keep b and c of size 1
    np.testing.assert_allclose(got, expected, rtol=tolerance[0], atol=tolerance[1])


def _add_type_and_true_checksums(rdf_path: Path) -> None:
    """The tiktorch U-Nets lack `type: model` and their weights' sha256 is not the file's: repair both."""
    text = rdf_path.read_text()
    for match in re.finditer(r"sha256: ([0-9a-f]{64})\s*\n\s*source: \./(\S+)", text):
        actual = hashlib.sha256((rdf_path.parent / match.group(2)).read_bytes()).hexdigest()
        text = text.replace(match.group(1), actual)
    rdf_path.write_text(text + "type: model\n")


def _core_output(rdf_path: Path) -> dict[str, np.ndarray]:
    """bioimageio.core's own prediction of the test input, as its test run makes it (one call, no padding)."""
    from bioimageio.core import create_prediction_pipeline
    from bioimageio.core.digest_spec import get_test_input_sample
    from bioimageio.spec import load_description

    descr = load_description(rdf_path, perform_io_checks=False, format_version="discover")
    with create_prediction_pipeline(descr, devices=["cpu"]) as pipeline:
        out = pipeline.predict_sample_without_blocking(
            get_test_input_sample(descr), skip_input_padding=True, skip_output_cropping=True
        )
    return {str(k): v.data.to_numpy() for k, v in out.members.items()}


# name -> (folder in ../shared, rdf inside it or None, {input id: test input}, {output id: test output}, needs)
REAL = {
    "unet2d_nuclei_broad": (
        REAL_MODELS / "unet2d_nuclei_broad",
        None,
        {"raw": "test_input.npy"},
        {"probability": "test_output.npy"},
        "torch",
    ),
    "unet2d_multi_tensor": (
        REAL_MODELS / "unet2d_multi_tensor",
        None,
        {"input0": "test_input_0.npy", "input1": "test_input_1.npy"},
        {"output0": "test_output_0.npy", "output1": "test_output_1.npy"},
        "torch",
    ),
    "tiktorch_dummy_tensorflow": (
        REAL_WORLD / "tiktorch_dummy_tensorflow",
        None,
        {"input0": "test_input.npy"},
        {"output0": "test_output.npy"},
        "tensorflow",
    ),
    "tiktorch_unet2d_torchscript": (
        REAL_WORLD / "tiktorch_unet2d_torchscript",
        "UNet2DNucleiBroad.model.yaml",
        {"raw": "test_input.npy"},
        {"probability": "test_output.npy"},
        "torch",
    ),
}


def _needs(runtime: str) -> None:
    pytest.importorskip(runtime)
    if runtime == "tensorflow" and "keras" in sys.modules:
        import keras

        if keras.backend.backend() != "tensorflow":
            pytest.skip(f"Keras was imported with the {keras.backend.backend()} backend by an earlier test")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REAL))
def test_real_package_test_input_reproduces_test_output_through_api_and_cli(name, tmp_path):
    folder, rdf_name, inputs, outputs, runtime = REAL[name]
    _needs(runtime)
    package = _package(folder, tmp_path)
    source = package / rdf_name if rdf_name else package
    if rdf_name:
        _add_type_and_true_checksums(source)
    rdf_path = source if rdf_name else package / "rdf.yaml"
    paths = {k: package / v for k, v in inputs.items()}
    item = paths if len(paths) > 1 else next(iter(paths.values()))
    result = api.predict(source, [item], tmp_path / "api", device="cpu")
    assert not result.failed, result.failed[0].error
    assert result.tiles == 1  # the test input is a size the model takes: one call
    for output_id, expected in outputs.items():
        got = tifffile.imread(result.items[0].outputs[output_id])
        _assert_reproduces(got, np.load(package / expected), _tolerance(rdf_path, output_id))

    argument = ",".join(f"{k}={v}" for k, v in paths.items()) if len(paths) > 1 else str(item)
    cli = runner.invoke(app, ["predict", str(source), argument, "--out", str(tmp_path / "cli"), "--device", "cpu"])
    assert cli.exit_code == 0, cli.output
    stem = next(iter(paths.values())).stem
    for output_id, expected in outputs.items():
        got = tifffile.imread(tmp_path / "cli" / f"{stem}_{output_id}.tif")
        _assert_reproduces(got, np.load(package / expected), _tolerance(rdf_path, output_id))


def test_onnx_unet_whose_weights_miss_its_own_test_output_gives_what_bioimageio_core_gives(tmp_path):
    """tiktorch_unet2d_onnx's weights do not reproduce its test output (bioimageio.core misses it by 0.23 too):
    predict must give bioimageio.core's numbers, not the test output."""
    pytest.importorskip("onnxruntime")
    package = _package(REAL_WORLD / "tiktorch_unet2d_onnx", tmp_path)
    rdf_path = package / "UNet2DNucleiBroad.model.yaml"
    _add_type_and_true_checksums(rdf_path)
    result = api.predict(rdf_path, [package / "test_input.npy"], tmp_path / "out", device="cpu")
    assert not result.failed and result.tiles == 1
    got = tifffile.imread(result.items[0].outputs["probability"])
    _assert_reproduces(got, _core_output(rdf_path)["probability"], (RTOL, ATOL))


@pytest.mark.parametrize("name", ["tiktorch_unet2d_onnx", "tiktorch_unet2d_torchscript"])
def test_rdf_the_spec_rejects_is_refused_naming_the_field(name, tmp_path):
    package = REAL_WORLD / name
    if not package.is_dir():
        pytest.skip(f"{package} is not present (a user's clone)")
    rdf_path = package / "UNet2DNucleiBroad.model.yaml"
    with pytest.raises(SourceError, match=r"type: Missing field 'type'.*run `zoo validate`"):
        api.predict(rdf_path, [package / "test_input.npy"], tmp_path / "api", device="cpu")
    cli = runner.invoke(
        app,
        ["predict", str(rdf_path), str(package / "test_input.npy"), "--out", str(tmp_path / "cli"), "--device", "cpu"],
    )
    assert cli.exit_code == 2 and "type" in cli.output and "zoo validate" in cli.output
    assert not (tmp_path / "cli").exists() or not any((tmp_path / "cli").iterdir())


# --- format 0.4 packages that bioimageio.spec cannot upgrade to 0.5 -------------------------------------------


def _build_v04(folder: Path, defect: str) -> Path:
    """A 0.4 package: a 3×3 convolution (zero padding at the image's border) between per-sample normalisation
    over c, y and x and a sigmoid, on exactly 1×1×64×64 (batch fixed at 1). `defect`: what makes the upgrade to
    0.5 fail while the package is valid 0.4: an output of fixed size with a halo, or a `cite` URL that is none."""
    import torch

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    module = torch.nn.Conv2d(1, 1, 3, padding=1).eval()
    rng = np.random.default_rng(1)
    test_input = (rng.normal(100, 20, (1, 1, 64, 64))).astype(np.float32)
    normalised = (test_input - test_input.mean()) / (test_input.std() + 1e-6)
    with torch.no_grad():
        test_output = torch.sigmoid(module(torch.from_numpy(normalised))).numpy()
    torch.jit.save(torch.jit.trace(module, torch.from_numpy(normalised)), str(folder / "weights.pt"))
    np.save(folder / "test_input.npy", test_input)
    np.save(folder / "test_output.npy", test_output)
    (folder / "README.md").write_text("# a 0.4 package\n")
    output_shape = (
        [1, 1, 64, 64]
        if defect == "fixed_output_with_halo"
        else {"reference_tensor": "input0", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]}
    )
    rdf = {
        "format_version": "0.4.10",
        "type": "model",
        "name": "conv 0.4",
        "description": "a 0.4 package whose upgrade to 0.5 fails",
        "authors": [{"name": "zoo tests"}],
        "cite": [{"text": "zoo", "url": "pass" if defect == "invalid_cite_url" else "https://bioimage.io"}],
        "license": "MIT",
        "documentation": "README.md",
        "tags": ["test"],
        "timestamp": "2024-01-01T00:00:00",
        "inputs": [
            {
                "name": "input0",
                "axes": "bcyx",
                "data_type": "float32",
                "data_range": [-1e9, 1e9],
                "shape": [1, 1, 64, 64],
                "preprocessing": [{"name": "zero_mean_unit_variance", "kwargs": {"mode": "per_sample", "axes": "cyx"}}],
            }
        ],
        "outputs": [
            {
                "name": "output0",
                "axes": "bcyx",
                "data_type": "float32",
                "data_range": [0, 1],
                "shape": output_shape,
                "halo": [0, 0, 4, 4],
                "postprocessing": [{"name": "sigmoid"}],
            }
        ],
        "test_inputs": ["test_input.npy"],
        "test_outputs": ["test_output.npy"],
        "weights": {
            "torchscript": {
                "source": "weights.pt",
                "sha256": hashlib.sha256((folder / "weights.pt").read_bytes()).hexdigest(),
                "pytorch_version": "2.0",
            }
        },
    }
    save_rdf(folder, rdf)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("defect", ["fixed_output_with_halo", "invalid_cite_url"])
def test_v04_package_the_spec_cannot_upgrade_is_predicted_in_its_own_format(defect, tmp_path):
    from bioimageio.spec import InvalidDescr, load_description
    from bioimageio.spec.model import v0_4

    pytest.importorskip("torch")
    package = _build_v04(tmp_path / "package", defect)
    rdf_path = package / "rdf.yaml"
    assert isinstance(load_description(rdf_path, perform_io_checks=False, format_version="latest"), InvalidDescr)
    assert isinstance(load_description(rdf_path, perform_io_checks=True, format_version="discover"), v0_4.ModelDescr)
    result = api.predict(package, [package / "test_input.npy"], tmp_path / "out", device="cpu")
    assert not result.failed and result.tiles == 1
    got = tifffile.imread(result.items[0].outputs["output0"])
    _assert_reproduces(got, np.load(package / "test_output.npy"), (1e-4, 1e-5))


def test_v04_fixed_batch_is_fed_one_sample_per_call(tmp_path):
    pytest.importorskip("torch")
    package = _build_v04(tmp_path / "package", "fixed_output_with_halo")
    model = load_model(package, device="cpu")
    calls = []
    run = model.backend.predict

    def spy(*arrays):
        calls.append(arrays[0].shape)
        return run(*arrays)

    model.backend.predict = spy
    try:
        assert model.geometry.batch_fixed
        test_input = np.load(package / "test_input.npy")[0, 0]
        stack = np.stack([test_input, test_input[::-1], 2 * test_input])[:, None]  # 3 samples
        out = predict_arrays(model, stack, batch_size=3)["output0"]
        one = predict_arrays(model, stack[1:2])["output0"]
    finally:
        model.close()
    assert calls and all(shape[0] == 1 for shape in calls)
    assert out.shape == (3, 1, 64, 64)
    _assert_reproduces(out[:1], np.load(package / "test_output.npy"), (1e-4, 1e-5))
    np.testing.assert_allclose(out[1:2], one, rtol=1e-5, atol=1e-6)
