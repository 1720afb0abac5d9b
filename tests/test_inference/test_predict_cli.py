"""`zoo predict`: exit 0 when every image was predicted, 1 when one failed, 2 for unusable arguments."""

from __future__ import annotations

import numpy as np
import tifffile
from typer.testing import CliRunner

from zoo.cli import app

runner = CliRunner()


def image(path, shape=(60, 70)):
    rng = np.random.default_rng(0)
    tifffile.imwrite(path, (rng.random(shape) * 200).astype(np.float32))
    return path


def test_predict_writes_one_file_per_input_and_output_and_exits_0(tiny_package, tmp_path):
    result = runner.invoke(
        app,
        [
            "predict",
            str(tiny_package),
            str(image(tmp_path / "a.tif")),
            str(image(tmp_path / "b.tif", (40, 90))),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "--tile",
            "48,48",
            "--batch-size",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert tifffile.imread(tmp_path / "out" / "a_probability.tif").shape == (60, 70)
    assert tifffile.imread(tmp_path / "out" / "b_probability.tif").shape == (40, 90)


def test_one_failing_image_exits_1_and_the_others_are_written(tiny_package, tmp_path, monkeypatch):
    from zoo.inference.axes import MappedImage

    real_read = MappedImage.read

    def fail_on_b(self, region):
        if self.image.path.name == "b.tif":
            raise OSError("unreadable strip")
        return real_read(self, region)

    monkeypatch.setattr(MappedImage, "read", fail_on_b)
    result = runner.invoke(
        app,
        [
            "predict",
            str(tiny_package),
            str(image(tmp_path / "a.tif")),
            str(image(tmp_path / "b.tif")),
            str(image(tmp_path / "c.tif")),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 1
    assert "unreadable strip" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_probability.tif", "c_probability.tif"]


def test_bad_arguments_exit_2_with_one_line_and_no_traceback(tiny_package, tmp_path):
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((30, 30, 3), dtype=np.uint8), photometric="rgb")
    cases = [
        [str(tiny_package), str(rgb)],
        [str(tiny_package), str(tmp_path / "missing.tif")],
        [str(tmp_path / "no-package"), str(rgb)],
        [str(tiny_package), str(rgb), "--tile", "12"],
        [str(tiny_package), str(rgb), "--weights", "keras_hdf5"],
        [str(tiny_package), str(rgb), "--weights", "pytorch_state_dict"],
        [str(tiny_package), str(rgb), "--memory-limit", "lots"],
    ]
    for arguments in cases:
        result = runner.invoke(app, ["predict", *arguments, "--out", str(tmp_path / "out"), "--device", "cpu"])
        assert result.exit_code == 2, (arguments, result.output)
        assert "Traceback" not in result.output
        if arguments == cases[0]:
            assert "rgb.tif: 3 channels (RGB)" in result.output
    assert not (tmp_path / "out").exists()
