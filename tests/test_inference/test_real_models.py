"""The two bioimage.io example models in ../shared/real-models, through the CLI (skipped where absent)."""

from __future__ import annotations

import numpy as np
import tifffile
from typer.testing import CliRunner

from tests.conftest import copy_real_model
from zoo.cli import app

runner = CliRunner()


def test_unet2d_nuclei_broad_fixed_512_input_with_halo(tmp_path):
    model = copy_real_model("unet2d_nuclei_broad", tmp_path)
    test_input = np.load(model / "test_input.npy")
    image = tmp_path / "nuclei.tif"
    tifffile.imwrite(image, test_input[0, 0, :300, :400])  # smaller than the model's fixed 512: padded
    result = runner.invoke(
        app,
        [
            "predict",
            str(model),
            str(model / "test_input.npy"),
            str(image),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    out = tifffile.imread(tmp_path / "out" / "test_input_probability.tif")[0, 0]  # b, c kept from the .npy
    expected = np.load(model / "test_output.npy")[0, 0]
    assert out.shape == expected.shape and 0 <= out.min() and out.max() <= 1  # sigmoid post-processing ran
    # the test input is exactly the 512×512 the model takes: one call on it unpadded, as the test output was made
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
    assert tifffile.imread(tmp_path / "out" / "nuclei_probability.tif").shape == (300, 400)


def test_unet2d_multi_tensor_two_inputs_two_outputs(tmp_path):
    model = copy_real_model("unet2d_multi_tensor", tmp_path)
    pairs = f"input0={model / 'test_input_0.npy'},input1={model / 'test_input_1.npy'}"
    result = runner.invoke(app, ["predict", str(model), pairs, "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for i in range(2):
        out = tifffile.imread(tmp_path / "out" / f"test_input_0_output{i}.tif")
        assert np.abs(out - np.load(model / f"test_output_{i}.npy")).max() < 1e-5


def test_unet2d_multi_tensor_with_one_image_says_how_to_give_both(tmp_path):
    model = copy_real_model("unet2d_multi_tensor", tmp_path)
    result = runner.invoke(
        app, ["predict", str(model), str(model / "test_input_0.npy"), "--out", str(tmp_path / "out"), "--device", "cpu"]
    )
    assert result.exit_code == 2
    assert "input0=PATH,input1=PATH" in result.output
