from __future__ import annotations

import zipfile

import numpy as np
import pytest
from ruyaml import YAML

from zoo import api
from zoo.errors import PackageError


def read_rdf_text(zip_path) -> str:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.read("rdf.yaml").decode()


def test_zip_has_rdf_at_root_and_every_file_it_names(tiny_package):
    with zipfile.ZipFile(tiny_package) as archive:
        names = set(archive.namelist())
    assert "rdf.yaml" in names
    assert all("/" not in name for name in names)
    assert {
        "test_input.npy",
        "test_output.npy",
        "sample_input.tif",
        "cover.png",
        "README.md",
        "unet2d.py",
        "weights.pt",
        "weights_torchscript.pt",
        "weights.onnx",
        "tf_saved_model_bundle.zip",
    } <= names


def test_rdf_writes_axis_ids_and_quoted_versions(tiny_package):
    text = read_rdf_text(tiny_package)
    rdf = YAML(typ="safe").load(text)
    for tensor in rdf["inputs"] + rdf["outputs"]:
        assert [axis["id"] for axis in tensor["axes"]] == ["batch", "channel", "y", "x"]
    assert 'format_version: "0.5.' in text
    assert rdf["documentation"] == "README.md"  # a string: deepImageJ drops models whose documentation is not
    assert 'pytorch_version: "' in text
    assert rdf["weights"]["onnx"]["opset_version"] <= 17


def test_rdf_declares_parameterized_sizes_halo_and_deepimagej_processing(tiny_package):
    rdf = YAML(typ="safe").load(read_rdf_text(tiny_package))
    y_in = rdf["inputs"][0]["axes"][2]["size"]
    assert y_in["min"] % y_in["step"] == 0
    y_out = rdf["outputs"][0]["axes"][2]
    assert y_out["size"] == {"tensor_id": "raw", "axis_id": "y"}
    assert 0 < 2 * y_out["halo"] < y_in["min"]
    ops = [op["id"] for op in rdf["inputs"][0]["preprocessing"]]
    assert "zero_mean_unit_variance" in ops
    assert set(ops) <= {"zero_mean_unit_variance", "ensure_dtype", "scale_range"}


def test_rdf_records_agreement_metrics_and_citation(tiny_package):
    rdf = YAML(typ="safe").load(read_rdf_text(tiny_package))
    agreement = rdf["config"]["zoo"]["agreement"]
    assert set(agreement) == {"pytorch_state_dict", "torchscript", "onnx", "tensorflow_saved_model_bundle"}
    assert all(entry["max_abs"] <= 1e-4 for entry in agreement.values())
    assert "max |Δ|" in rdf["weights"]["onnx"]["comment"]
    assert rdf["cite"][0]["doi"] == "10.1007/978-3-319-24574-4_28"
    assert 0.0 <= rdf["config"]["zoo"]["metrics"]["test_iou"] <= 1.0
    assert "synthetic" in rdf["config"]["bioimageio"]["training"]["data"]["description"].lower()
    assert "training_data" not in rdf  # a dataset without a public URL draws bioimageio.spec warnings


def test_readme_has_a_validation_section(tiny_package):
    with zipfile.ZipFile(tiny_package) as archive:
        readme = archive.read("README.md").decode()
    assert "\n## Validation\n" in readme
    assert "| onnx |" in readme


def test_test_output_is_the_model_on_the_test_input(tiny_package, tiny_checkpoint):
    import torch

    from zoo.trainers.checkpoint import load_checkpoint
    from zoo.trainers.datasets import normalize_image

    with zipfile.ZipFile(tiny_package) as archive:
        with archive.open("test_input.npy") as f:
            test_input = np.load(f)
        with archive.open("test_output.npy") as f:
            test_output = np.load(f)
    model = load_checkpoint(tiny_checkpoint).build_model()
    with torch.no_grad():
        expected = model(torch.from_numpy(normalize_image(test_input[0, 0])[None, None])).numpy()
    np.testing.assert_allclose(test_output, expected, atol=1e-6)


@pytest.mark.slow
def test_failed_validation_leaves_nothing_behind(tiny_checkpoint, tmp_path, monkeypatch):
    from zoo.validators import registry
    from zoo.validators.checks import reproduction

    def always_fails(pkg):
        yield registry.failed(reproduction.check_reproduces_test_outputs.rule, "forced failure")

    monkeypatch.setitem(registry.CHECKS, "REP001", always_fails)
    out = tmp_path / "out"
    with pytest.raises(PackageError, match="REP001: forced failure"):
        api.package(tiny_checkpoint, out)
    assert not out.exists()  # made for the package, removed again with nothing in it


@pytest.mark.slow
def test_target_deepimagej_refuses_a_package_fiji_would_not_run(tiny_checkpoint, tmp_path, monkeypatch):
    from zoo.config import PackageConfig
    from zoo.validators import registry
    from zoo.validators.checks import deepimagej  # noqa: F401

    rule = registry.RULES["DIJ13"]

    def onnx_too_new(pkg):
        yield registry.failed(rule, "forced: opset 20")

    monkeypatch.setitem(registry.CHECKS, "DIJ13", onnx_too_new)
    out = tmp_path / "out"
    with pytest.raises(PackageError, match="DIJ13: forced: opset 20"):
        api.package(tiny_checkpoint, out, "onnx", PackageConfig(target="deepimagej"))
    assert not out.exists()
    written = api.package(tiny_checkpoint, out, "onnx", PackageConfig(target="bioimageio"))
    assert written.zip_path.exists() and written.report.deepimagej_verdict == "will not run"
