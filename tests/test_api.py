"""The notebook API: `import zoo` and call the stages with keywords and arrays."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import zoo
from zoo.errors import InputError


def test_import_zoo_exposes_the_stages_and_loads_no_framework():
    code = "import sys, zoo; print(callable(zoo.train), callable(zoo.predict), 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["True", "True", "False"], result.stderr
    assert {"train", "package", "validate", "predict", "info"} <= set(dir(zoo))


def test_train_takes_keywords_and_a_bad_value_is_one_line(tmp_path):
    with pytest.raises(InputError) as raised:
        zoo.train(trainer="care2d", out=tmp_path, epochs=0)
    assert "--epochs 0" in str(raised.value) and "\n" not in str(raised.value)
    config = zoo.api.training_config("care2d", out=tmp_path, epochs=3, data=tmp_path / "mine")
    assert (config.trainer, config.epochs, config.data.folder) == ("care2d", 3, tmp_path / "mine")


def test_predict_takes_an_array_and_returns_an_array(tiny_package):
    image = np.random.default_rng(0).random((64, 72)).astype(np.float32)
    with zipfile.ZipFile(tiny_package) as archive:
        test_input = np.load(archive.open("test_input.npy"))
        expected = np.load(archive.open("test_output.npy"))
    mask = zoo.predict(tiny_package, image)
    assert isinstance(mask, np.ndarray) and mask.shape[-2:] == (64, 72)
    again = zoo.predict(tiny_package, test_input[0, 0])
    np.testing.assert_allclose(np.squeeze(again), np.squeeze(expected), atol=1e-4)


def test_a_report_writes_every_format_by_its_suffix(tiny_package, tmp_path):
    report = zoo.validate(tiny_package, progress=False)
    for name in ("r.json", "r.md", "r.html", "r.xml"):
        report.write(tmp_path / name)
    assert json.loads((tmp_path / "r.json").read_text())["status"] == report.status
    assert (tmp_path / "r.md").read_text().startswith("#")
    assert "<html" in (tmp_path / "r.html").read_text().lower()
    assert "<testsuite" in (tmp_path / "r.xml").read_text()
    with pytest.raises(ValueError, match="report format"):
        report.write(tmp_path / "r.txt")


def test_info_describes_a_package_without_running_it(tiny_package):
    facts = zoo.info(tiny_package)
    assert [t.id for t in facts.inputs] and [t.id for t in facts.outputs]
    assert {"torchscript", "onnx"} <= set(facts.weight_formats)
    assert "IoU" in facts.recorded_quality
    assert facts.deepimagej in ("runs", "runs with risks", "cannot judge")
    text = facts.text()
    assert "halo" in text and "pre-processing" in text


def test_info_names_the_parent_and_the_base_of_a_fine_tuning(package_folder):
    from tests.conftest import load_rdf, save_rdf

    folder = package_folder()
    assert zoo.info(folder).lineage == ""
    rdf = load_rdf(folder)
    rdf["parent"] = {"id": "affable-shark", "version": "1.2"}
    rdf.setdefault("config", {}).setdefault("zoo", {})["finetune"] = {
        "base": {"name": "Shark nuclei", "rdf_sha256": "ab" * 32, "weights": "torchscript"},
        "data": {"folder_name": "my-images", "n_files": 24},
    }
    save_rdf(folder, rdf)
    facts = zoo.info(folder)
    assert facts.lineage == (
        "parent affable-shark (version 1.2); fine-tuned with zoo from 'Shark nuclei' (its rdf's sha256 abababababab…), "
        "its torchscript weights, on 24 files of my-images"
    )
    assert f"lineage: {facts.lineage}" in facts.text()


@pytest.mark.slow
def test_package_result_points_at_files_that_exist(tiny_checkpoint, tmp_path):
    """The export happens in a temporary folder that is gone afterwards: the result names files in the zip."""
    result = zoo.package(tiny_checkpoint, tmp_path / "out", name="tiny api package", license="MIT", progress=False)
    assert result.exported.weights
    for weights in result.exported.weights:
        assert weights.path.exists() and weights.path.read_bytes()
    assert result.zip_path.is_file() and result.report.status == "passed"
