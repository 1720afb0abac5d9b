"""`zoo package SOURCE --sample IMAGE` for models zoo did not train: each kind of source becomes a package whose
probed sizes, output relation and halo are what the model truly does, that passes `zoo validate` and the reference
`bioimageio test`, and bad input is one line before anything is written."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests import foreign_models
from tests.conftest import one_torch_thread
from zoo import api
from zoo.cli import app
from zoo.errors import InputError

runner = CliRunner()


@pytest.fixture(autouse=True)
def one_thread():
    """Probing runs the model many times on tiny inputs: threads only contend on the 2 shared cores."""
    with one_torch_thread():
        yield


def write_sample(path: Path, shape: tuple[int, ...], seed: int = 0) -> Path:
    import tifffile

    rng = np.random.default_rng(seed)
    tifffile.imwrite(path, (rng.random(shape) * 1000).astype(np.uint16))
    return path


def torchscript(model: torch.nn.Module, example_shape: tuple[int, ...], path: Path) -> Path:
    with torch.no_grad():
        torch.jit.trace(model, torch.randn(*example_shape), check_trace=False).save(str(path))
    return path


def onnx_file(model: torch.nn.Module, example_shape: tuple[int, ...], path: Path, opset: int = 17) -> Path:
    dynamic = {0: "batch", **{i: f"s{i}" for i in range(2, len(example_shape))}}
    torch.onnx.export(
        model,
        (torch.randn(*example_shape),),
        str(path),
        dynamo=False,
        opset_version=opset,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": dynamic, "y": dynamic},
    )
    return path


def rdf_of(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as archive:
        return yaml.safe_load(archive.read("rdf.yaml"))


def spatial_sizes(rdf: dict, tensor: str = "inputs") -> dict[str, dict]:
    return {a["id"]: a["size"] for a in rdf[tensor][0]["axes"] if a.get("type") == "space"}


def reference_test(zip_path: Path) -> None:
    from bioimageio.core import test_description

    summary = test_description(zip_path)
    assert summary.status == "passed", summary.format()


def accepts(model: torch.nn.Module, size: int, dims: int = 2) -> bool:
    try:
        with torch.no_grad():
            out = model(torch.zeros((1, 1) + (size,) * dims))
    except RuntimeError:
        return False
    return tuple(out.shape[2:]) == (size,) * dims


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_small_torchscript_model_becomes_a_valid_package(tmp_path):
    """Fast lane: a 3-channel TorchScript network, probed, exported to TorchScript, validated; the inputs stay."""
    model_file = torchscript(foreign_models.multichannel_net(3), (1, 3, 32, 32), tmp_path / "net.pt")
    sample = write_sample(tmp_path / "rgb.tif", (48, 40, 3))
    before = (sha256(model_file), sha256(sample))
    result = api.package(
        model_file, tmp_path / "out", "torchscript", sample=sample, preprocessing="zero_mean_unit_variance"
    )
    assert result.report.status == "passed"
    assert result.zip_path.name == "net-model.zip"
    probe = result.probe
    assert (probe.layout, probe.channels, probe.output_channels, probe.relation) == ("bcyx", 3, 2, "same")
    rdf = rdf_of(result.zip_path)
    assert rdf["format_version"].startswith("0.5")
    assert list(rdf["weights"]) == ["torchscript"]
    assert "parent" not in rdf["weights"]["torchscript"]
    assert [a.get("type") for a in rdf["inputs"][0]["axes"]] == ["batch", "channel", "space", "space"]
    assert "zero_mean_unit_variance" in [p["id"] for p in rdf["inputs"][0]["preprocessing"]]
    assert rdf["config"]["zoo"]["training"] == "not recorded"
    assert rdf["config"]["zoo"]["source"]["sha256"] == before[0]
    assert np.load(zipfile.Path(result.zip_path, "test_input.npy").open("rb")).shape[1] == 3
    assert (sha256(model_file), sha256(sample)) == before


def test_a_model_in_train_mode_is_one_line_asking_for_eval(tmp_path):
    model_file = torchscript(foreign_models.with_dropout(), (1, 1, 32, 32), tmp_path / "dropout.pt")
    sample = write_sample(tmp_path / "s.tif", (64, 64))
    result = runner.invoke(app, ["package", str(model_file), "--sample", str(sample), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "eval()" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_sample_smaller_than_the_smallest_tile_names_the_sizes(tmp_path):
    model_file = torchscript(foreign_models.unet_four_poolings(), (1, 1, 32, 32), tmp_path / "unet.pt")
    sample = write_sample(tmp_path / "small.tif", (64, 64))
    with pytest.raises(InputError, match=r"16 \+ n·16") as error:
        api.package(model_file, tmp_path / "o", sample=sample)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "o").exists()


def state_dict_alone(folder: Path) -> Path:
    torch.save(foreign_models.valid_convolutions().state_dict(), folder / "sd.pt")
    return folder / "sd.pt"


def a_package(folder: Path) -> Path:
    (folder / "pkg").mkdir()
    (folder / "pkg" / "rdf.yaml").write_text("{}")
    return folder / "pkg"


def not_a_model(folder: Path) -> Path:
    (folder / "x.bin").write_bytes(b"\0" * 64)
    return folder / "x.bin"


@pytest.mark.parametrize(
    ("make", "hint"),
    [(state_dict_alone, "--weights"), (a_package, "zoo convert"), (not_a_model, "--sample")],
    ids=["state-dict-alone", "a-package", "not-a-model"],
)
def test_what_is_not_a_model_file_is_one_line_saying_what_to_give(tmp_path, make, hint):
    source = make(tmp_path)
    sample = write_sample(tmp_path / "s.tif", (64, 64))
    args = ["package", str(source), "--out", str(tmp_path / "o")] + (
        ["--sample", str(sample)] if hint != "--sample" else []
    )
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert hint in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_python_architecture_is_refused_without_trust_before_any_work(tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save(foreign_models.unet_four_poolings().state_dict(), weights)
    sample = write_sample(tmp_path / "s.tif", (128, 128))
    architecture = Path(foreign_models.__file__)
    args = ["package", f"{architecture}:_UNet", "--weights", str(weights), "--sample", str(sample)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "--trust" in result.output
    assert not (tmp_path / "o").exists()


def test_an_existing_package_is_refused_before_any_work(tmp_path):
    model_file = torchscript(foreign_models.multichannel_net(3), (1, 3, 32, 32), tmp_path / "net.pt")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "net-model.zip").write_bytes(b"kept")
    with pytest.raises(InputError, match="--overwrite"):
        api.package(model_file, tmp_path / "o", sample=tmp_path / "does-not-matter.tif")
    assert (tmp_path / "o" / "net-model.zip").read_bytes() == b"kept"


@pytest.mark.slow
def test_unet_with_four_poolings_gets_the_sizes_and_halo_it_truly_has(tmp_path):
    model = foreign_models.unet_four_poolings()
    model_file = torchscript(model, (1, 1, 64, 64), tmp_path / "unet.pt")
    sample = write_sample(tmp_path / "s.tif", (150, 170))
    result = api.package(model_file, tmp_path / "out", "torchscript,onnx", sample=sample)
    probe = result.probe
    for size in range(8, 81):
        assert probe.valid(size) == accepts(model, size), size
    assert (probe.min_size, probe.step) == (16, 16)
    measurement = probe.halo_measurement
    assert measurement.max_abs <= 1e-5 < measurement.max_abs_below  # the halo suffices, one step less does not
    rdf = rdf_of(result.zip_path)
    assert spatial_sizes(rdf)["y"] == {"min": probe.tile_min_size, "step": 16}
    halos = {a["id"]: a.get("halo") for a in rdf["outputs"][0]["axes"] if a.get("type") == "space"}
    assert halos == {"y": probe.halo, "x": probe.halo}
    assert rdf["weights"]["onnx"]["parent"] == "torchscript"
    assert result.report.deepimagej_verdict == "runs"
    reference_test(result.zip_path)


@pytest.mark.slow
def test_onnx_with_valid_convolutions_declares_the_offset(tmp_path):
    model_file = onnx_file(foreign_models.valid_convolutions(), (1, 1, 32, 32), tmp_path / "valid.onnx", opset=20)
    sample = write_sample(tmp_path / "s.tif", (64, 60))
    # JDLL reads an output offset twice (DIJ21): the package is for bioimage.io, the verdict says Fiji fails
    result = api.package(model_file, tmp_path / "out", sample=sample, target="bioimageio")
    assert result.report.deepimagej_verdict == "will not run"
    assert (result.probe.relation, result.probe.offset) == ("offset", -6)
    rdf = rdf_of(result.zip_path)
    sizes = spatial_sizes(rdf, "outputs")
    assert sizes["y"]["offset"] == -6 and sizes["x"]["offset"] == -6
    assert rdf["weights"]["onnx"]["opset_version"] == 17  # down-converted from 20 for deepImageJ
    assert rdf["weights"]["tensorflow_saved_model_bundle"]["parent"] == "onnx"
    test_output = np.load(zipfile.Path(result.zip_path, "test_output.npy").open("rb"))
    assert test_output.shape[2:] == (64 - 6, 60 - 6)
    reference_test(result.zip_path)


@pytest.mark.slow
def test_upsampling_network_declares_the_scale(tmp_path):
    model_file = torchscript(foreign_models.upsampling_x2(), (1, 1, 32, 32), tmp_path / "up.pt")
    sample = write_sample(tmp_path / "s.tif", (40, 48))
    result = api.package(model_file, tmp_path / "out", sample=sample, target="deepimagej")
    assert (result.probe.relation, result.probe.scale) == ("scaled", 2)
    rdf = rdf_of(result.zip_path)
    # input scale 4, output scale 2: the spec's size (in · 4 / 2) and JDLL's (in · 2) agree
    inputs = {a["id"]: a for a in rdf["inputs"][0]["axes"] if a.get("type") == "space"}
    outputs = {a["id"]: a for a in rdf["outputs"][0]["axes"] if a.get("type") == "space"}
    assert (inputs["y"]["scale"], outputs["y"]["scale"]) == (4, 2)
    assert result.report.deepimagej_verdict == "runs"
    assert "tensorflow_saved_model_bundle" in rdf["weights"]  # Resize is translated
    reference_test(result.zip_path)


@pytest.mark.slow
def test_3d_network_and_fixed_size_classifier(tmp_path):
    model_3d = foreign_models.unet3d_two_poolings()
    result = api.package(
        torchscript(model_3d, (1, 1, 16, 16, 16), tmp_path / "unet3d.pt"),
        tmp_path / "out",
        "torchscript",
        sample=write_sample(tmp_path / "v.tif", (64, 64, 64)),
    )
    assert (result.probe.layout, result.probe.step) == ("bczyx", 4)
    for size in (4, 6, 8, 12, 14):
        assert result.probe.valid(size) == accepts(model_3d, size, dims=3)
    reference_test(result.zip_path)

    result = api.package(
        torchscript(foreign_models.classifier_fixed(32, 3), (1, 1, 32, 32), tmp_path / "classifier.pt"),
        tmp_path / "out",
        sample=write_sample(tmp_path / "c.tif", (40, 36)),
    )
    rdf = rdf_of(result.zip_path)
    assert spatial_sizes(rdf) == {"y": 32, "x": 32}
    assert [a.get("type") for a in rdf["outputs"][0]["axes"]] == ["batch", "channel"]
    assert result.report.deepimagej_verdict == "runs"
    reference_test(result.zip_path)


@pytest.mark.slow
def test_keras_model_is_packaged_with_keras_tensorflow_and_onnx(tmp_path):
    import keras

    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.UpSampling2D()(x)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    model_file = tmp_path / "small.keras"
    keras.Model(inputs, outputs).save(model_file)
    result = api.package(model_file, tmp_path / "out", sample=write_sample(tmp_path / "s.tif", (64, 64)))
    assert (result.probe.layout, result.probe.step) == ("byxc", 2)
    rdf = rdf_of(result.zip_path)
    assert set(rdf["weights"]) == {"keras_v3", "tensorflow_saved_model_bundle", "onnx"}
    assert result.report.deepimagej_verdict == "runs"
    reference_test(result.zip_path)


@pytest.mark.slow
def test_python_architecture_with_state_dict_and_trust(tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save(foreign_models.unet_four_poolings().state_dict(), weights)
    result = api.package(
        f"{Path(foreign_models.__file__)}:_UNet",
        tmp_path / "out",
        "state_dict,torchscript,onnx",
        sample=write_sample(tmp_path / "s.tif", (128, 128)),
        weights=weights,
        kwargs={"dims": 2, "depth": 4, "channels": 1, "width": 4},
        trust=True,
    )
    rdf = rdf_of(result.zip_path)
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript", "onnx"}
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["callable"] == "_UNet"
    assert rdf["weights"]["torchscript"]["parent"] == "pytorch_state_dict"
    reference_test(result.zip_path)


@pytest.mark.slow
def test_keras_lambda_layer_needs_trust_before_any_work(tmp_path):
    import keras

    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(keras.layers.Conv2D(1, 3, padding="same")(inputs))
    model_file = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(model_file)
    sample = write_sample(tmp_path / "s.tif", (32, 32))
    with pytest.raises(InputError, match="Lambda.*--trust"):
        api.package(model_file, tmp_path / "o", sample=sample)
    assert not (tmp_path / "o").exists()


class OneImageAtATime(torch.nn.Module):
    """Reshapes to a batch of exactly one: a batch of two fails."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        y = torch.sigmoid(self.conv(x))
        return y.reshape(1, 1, y.shape[-2], y.shape[-1])


def test_a_model_that_takes_one_image_at_a_time_gets_a_batch_of_one(tmp_path):
    torch.manual_seed(0)
    model_file = torchscript(OneImageAtATime().eval(), (1, 1, 32, 32), tmp_path / "single.pt")
    result = api.package(
        model_file,
        tmp_path / "out",
        "torchscript",
        sample=write_sample(tmp_path / "s.tif", (40, 40)),
        target="bioimageio",
    )
    assert result.probe.batch_independent is False
    rdf = rdf_of(result.zip_path)
    assert (rdf["inputs"][0]["axes"][0]["type"], rdf["inputs"][0]["axes"][0]["size"]) == ("batch", 1)
    assert result.report.status == "passed"
    assert all(case.shape[0] == 1 for case in result.exported.weights[0].agreement.cases)


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["tiktorch_unet2d_torchscript/weights.pt", "tiktorch_unet2d_onnx/weights.onnx"])
def test_a_real_third_party_unet_file_is_packaged_with_every_format(tmp_path, weights):
    """The weight files of real third-party packages, packaged as a user would bring them: the probe finds what they
    accept (the TorchScript 8 + n·8, where its rdf declared only 512; the ONNX graph fixes 512 and batch 1), and TF
    is translated from both (Floor; the legacy Upsample)."""
    from tests.conftest import SHARED

    source = SHARED / "real-world" / "packages" / weights
    if not source.is_file():
        pytest.skip("../shared/real-world is not present (a user's clone)")
    sample = tmp_path / "sample.npy"
    np.save(sample, np.load(source.parent / "test_input.npy")[0, 0])
    result = api.package(
        source, tmp_path / "out", sample=sample, preprocessing="zero_mean_unit_variance", target="bioimageio"
    )
    probe = result.probe
    expected = (8, 8) if source.suffix == ".pt" else (512, 0)
    assert (probe.min_size, probe.step) == expected
    rdf = rdf_of(result.zip_path)
    assert "tensorflow_saved_model_bundle" in rdf["weights"]
    assert result.report.status == "passed" and result.report.deepimagej_verdict == "runs"
