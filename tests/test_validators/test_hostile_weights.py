"""Weights that act: TorchScript and SavedModel graphs that touch files, ONNX nodes outside the standard
domains. Found by reading the files; never run without --trust, so the marker files they would write never
appear."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.conftest import load_rdf, save_rdf, sha256
from zoo.validators import validate_source


def _replace_weights(folder: Path, weight_format: str, new_file: Path) -> None:
    rdf = load_rdf(folder)
    target = folder / rdf["weights"][weight_format]["source"]
    target.write_bytes(new_file.read_bytes())
    rdf["weights"][weight_format]["sha256"] = sha256(target)
    save_rdf(folder, rdf)


def _scripted_from_file(folder: Path, marker: Path, out: Path) -> Path:
    import torch

    inner = torch.jit.load(str(folder / load_rdf(folder)["weights"]["torchscript"]["source"]))

    class Acting(torch.nn.Module):
        def __init__(self, model, path: str):
            super().__init__()
            self.model, self.path = model, path

        def forward(self, x):
            touched = torch.from_file(self.path, shared=True, size=4, dtype=torch.uint8)
            return self.model(x) + 0 * touched[0].float()

    torch.jit.save(torch.jit.script(Acting(inner, str(marker))), str(out))
    return out


@pytest.mark.slow
def test_torchscript_that_creates_a_file_is_not_run_without_trust(package_folder, tmp_path):
    folder = package_folder()
    marker = tmp_path / "marker-torchscript"
    _replace_weights(folder, "torchscript", _scripted_from_file(folder, marker, tmp_path / "acting.pt"))
    report = validate_source(folder, isolate=False)
    [finding] = report.by_id("SAF003")
    assert finding.status == "failed"
    assert finding.details["ops"] == ["aten::from_file"]
    assert not marker.exists()
    assert "weights.torchscript" not in {f.location for f in report.by_id("REP001") if f.status == "passed"}
    assert report.status == "failed"


@pytest.mark.slow
def test_saved_model_that_writes_a_file_is_not_run_without_trust(package_folder, tmp_path):
    tf = pytest.importorskip("tensorflow")
    marker = tmp_path / "marker-tensorflow"

    class Acting(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1, None, None], tf.float32, name="input")])
        def serve(self, x):
            tf.io.write_file(str(marker), "written by a weights file")
            return {"output": tf.identity(x)}

    module = Acting()
    saved = tmp_path / "saved"
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})
    bundle = tmp_path / "acting.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for path in saved.rglob("*"):
            archive.write(path, path.relative_to(saved).as_posix())
    folder = package_folder()
    _replace_weights(folder, "tensorflow_saved_model_bundle", bundle)
    report = validate_source(folder, isolate=False)
    [finding] = report.by_id("SAF004")
    assert finding.status == "failed"
    assert "WriteFile" in finding.details["ops"]
    assert not marker.exists()


@pytest.mark.slow
def test_onnx_node_in_a_custom_domain_is_not_run_without_trust(package_folder, tmp_path):
    import onnx

    folder = package_folder()
    source = folder / load_rdf(folder)["weights"]["onnx"]["source"]
    model = onnx.load(str(source))
    model.graph.node[0].domain = "evil.example"
    model.opset_import.append(onnx.helper.make_opsetid("evil.example", 1))
    onnx.save(model, str(tmp_path / "custom.onnx"))
    _replace_weights(folder, "onnx", tmp_path / "custom.onnx")
    report = validate_source(folder, isolate=False)
    [finding] = report.by_id("SAF005")
    assert finding.status == "failed"
    assert finding.details["ops"][0].startswith("evil.example::")


@pytest.mark.slow
def test_plain_weights_pass_the_scan(package_folder):
    report = validate_source(package_folder(), isolate=False)
    assert {f.status for rule in ("SAF003", "SAF004", "SAF005") for f in report.by_id(rule)} == {"passed"}


def test_predict_refuses_acting_torchscript_without_trust(package_folder, tmp_path):
    from zoo import api
    from zoo.errors import ZooError

    folder = package_folder()
    marker = tmp_path / "marker-predict"
    _replace_weights(folder, "torchscript", _scripted_from_file(folder, marker, tmp_path / "acting.pt"))
    image = folder / load_rdf(folder)["inputs"][0]["test_tensor"]["source"]
    with pytest.raises(ZooError, match="aten::from_file"):
        api.predict(folder, [image], tmp_path / "out", weights="torchscript", device="cpu")
    assert not marker.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_trusted_acting_weights_still_run_in_the_sandbox(package_folder, tmp_path):
    """--trust lets the weights run, but in the isolated processes' sandbox: the file they create outside the
    package and the scratch folder never appears."""
    folder = package_folder()
    marker = tmp_path / "marker-trusted"
    _replace_weights(folder, "torchscript", _scripted_from_file(folder, marker, tmp_path / "acting.pt"))
    report = validate_source(folder, trust=True)
    if not (report.sandbox or {}).get("files"):
        pytest.skip(f"no sandbox on this platform: {report.sandbox}")
    assert not marker.exists()
    assert [f.status for f in report.by_id("SAF003")] == ["failed"]
    assert report.sandbox["network"] is True


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_predict_never_opens_weights_outside_the_package(package_folder, tmp_path, where):
    import shutil

    from zoo import api
    from zoo.errors import ZooError

    folder = package_folder()
    rdf = load_rdf(folder)
    outside = tmp_path / "elsewhere" / "weights.onnx"
    outside.parent.mkdir()
    shutil.copy(folder / rdf["weights"]["onnx"]["source"], outside)
    # the copy sits beside the package folder: reached by an absolute path or by `..`
    rdf["weights"]["onnx"]["source"] = str(outside) if where == "absolute" else f"../elsewhere/{outside.name}"
    save_rdf(folder, rdf)
    image = folder / rdf["inputs"][0]["test_tensor"]["source"]
    with pytest.raises(ZooError, match="not opened"):
        api.predict(folder, [image], tmp_path / "out", weights="onnx", device="cpu")
