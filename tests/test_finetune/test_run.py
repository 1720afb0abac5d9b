"""A fine-tuning run: refusals before any work, the metric before and after, kept only when it improved, resume; and
the new package through the CLI as a user runs it (a fresh folder, output to a file), with its parent link, every
format proven and `zoo validate` passing."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import load_rdf
from zoo import api
from zoo.errors import DataError, InputError
from zoo.finetune.run import FinetuneResult

QUICK = dict(epochs=2, batch_size=2, patch_size=48)
FAST = dict(lr=1e-12, batch_size=2, patch_size=32, device="cpu")  # nothing learnt: no package is built


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def result_with(before: float, after: float) -> FinetuneResult:
    return FinetuneResult(
        source=None, weights="torchscript", why="", loss="bce-dice", loss_why="", metric="IoU", frozen="",
        normalisation="",
        data={"split": {"test": 2}}, before={"IoU": before}, after={"IoU": after}, history=[], steps_per_epoch=16,
        batch_size=4, best_epoch=1,
        stopped_early=False, resumed_from=0, duration_s=0.0, device="cpu", run_folder=None,
    )  # fmt: skip


def test_kept_only_when_the_metric_improved():
    assert result_with(0.5, 0.6).kept and result_with(0.5, 0.6).verdict.startswith("kept: IoU 0.5 → 0.6")
    for after in (0.5, 0.4):
        worse = result_with(0.5, after)
        assert not worse.kept and worse.exit_code == 1 and worse.verdict.startswith("not kept")
    assert result_with(0.5, 0.6).exit_code == 1  # improved, but no package was written (yet)


def test_no_improvement_writes_no_package(tiny_package, target_folder, tmp_path):
    before = sha(tiny_package)
    result = api.finetune(tiny_package, target_folder, tmp_path / "out", epochs=1, **FAST)
    assert result.after["IoU"] == pytest.approx(result.before["IoU"], abs=1e-6)
    assert not result.kept and result.zip_path is None and result.exit_code == 1
    assert list((tmp_path / "out").glob("*.zip")) == []
    assert (tmp_path / "out" / "training" / "train_state.pt").is_file()
    assert sha(tiny_package) == before  # the input is never modified


def test_resume_continues_the_run_and_refuses_other_terms(tiny_package, target_folder, tmp_path):
    out = tmp_path / "out"
    first = api.finetune(tiny_package, target_folder, out, epochs=1, **FAST)
    assert first.resumed_from == 0 and len(first.history) == 1
    with pytest.raises(InputError, match="--resume"):
        api.finetune(tiny_package, target_folder, out, epochs=2, **FAST)
    resumed = api.finetune(tiny_package, target_folder, out, epochs=2, resume=True, **FAST)
    assert resumed.resumed_from == 1 and [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[0] == first.history[0]
    with pytest.raises(InputError, match="freeze"):
        api.finetune(tiny_package, target_folder, out, epochs=3, freeze="encoder", resume=True, **FAST)


def test_refused_before_any_work(tiny_package, target_folder, one_format, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="--trust"):
        api.finetune(one_format("pytorch_state_dict"), target_folder, out, **QUICK)
    assert not out.exists()
    existing = out / "zoo-u-net-2d-nuclei-segmentation-fine-tuned.zip"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"mine")
    with pytest.raises(InputError, match="--overwrite"):
        api.finetune(tiny_package, target_folder, out, **QUICK)
    assert existing.read_bytes() == b"mine" and not (out / "training").exists()
    with pytest.raises(InputError, match="inside"):
        api.finetune(one_format("torchscript"), target_folder, tmp_path / "package-torchscript" / "out", **QUICK)
    classes = tmp_path / "classes"
    for name in ("a", "b"):
        (classes / name).mkdir(parents=True)
    with pytest.raises(DataError) as caught:
        api.finetune(tiny_package, classes, tmp_path / "other", **QUICK)
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match="--freeze"):
        api.finetune(tiny_package, target_folder, tmp_path / "other", freeze="decoder")


def test_an_image_classifier_is_refused_in_one_line(target_folder, tmp_path):
    import numpy as np
    import torch

    from tests import packages as rp

    classifier = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Softmax(dim=1)
    )
    package = rp.write_package(
        tmp_path / "classifier",
        classifier,
        np.random.default_rng(0).standard_normal((1, 1, 32, 32)),
        rp.image_axes("yx", 32),
        [rp.batch(), rp.channel("a", "b", "c")],
    )
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"the output has axes bc \(no y, x\).*not image classifiers") as caught:
        api.finetune(package, target_folder, out, **QUICK)
    assert "\n" not in str(caught.value) and not out.exists()


def run_zoo(*args: str, log) -> int:
    with open(log, "w") as stream:
        return subprocess.run(
            [sys.executable, "-m", "zoo", *args], stdout=stream, stderr=subprocess.STDOUT, timeout=1200
        ).returncode


@pytest.mark.slow
def test_torchscript_through_the_cli_into_a_fresh_folder(tiny_package, target_folder, tmp_path):
    out, log = tmp_path / "new" / "finetuned", tmp_path / "log.txt"
    code = run_zoo("finetune", str(tiny_package), "--data", str(target_folder), "--out", str(out), "--epochs", "20",
                   "--device", "cpu", log=log)  # fmt: skip
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "…" not in text  # no cut tables in a file
    assert "fine-tuning torchscript: " in text and "epoch 1 done" in text
    (zip_path,) = out.glob("*.zip")
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(zip_path).extractall(folder)
    rdf = load_rdf(folder)
    base = load_rdf_of_zip(tiny_package, tmp_path / "base")
    assert rdf["format_version"].startswith("0.5") and rdf["parent"]["id"] == base["id"]
    assert set(rdf["weights"]) == {"torchscript", "onnx", "tensorflow_saved_model_bundle"}
    assert "parent" not in rdf["weights"]["torchscript"] and rdf["weights"]["onnx"]["parent"] == "torchscript"
    finetune = rdf["config"]["zoo"]["finetune"]
    assert finetune["base"]["weights"] == "torchscript" and finetune["base"]["rdf_sha256"]
    assert finetune["metrics"]["after"]["IoU"] > finetune["metrics"]["before"]["IoU"]
    assert finetune["halo"]["halo"] == rdf["outputs"][0]["axes"][2]["halo"]
    report = api.validate(zip_path)
    assert report.status == "passed" and report.deepimagej_verdict == "runs"
    again = run_zoo("finetune", str(tiny_package), "--data", str(target_folder), "--out", str(out), log=log)
    assert again == 2 and "--overwrite" in log.read_text()


def load_rdf_of_zip(path, folder):
    zipfile.ZipFile(path).extractall(folder)
    return load_rdf(folder)


@pytest.mark.slow
@pytest.mark.parametrize("formats", [("pytorch_state_dict",), ("onnx",)])
def test_state_dict_with_trust_and_onnx_only(one_format, target_folder, tmp_path, formats):
    source = one_format(*formats)
    trust = formats == ("pytorch_state_dict",)
    result = api.finetune(source, target_folder, tmp_path / "out", epochs=20, lr=5e-3, trust=trust, device="cpu")
    assert result.weights == formats[0] and result.kept and result.exit_code == 0
    rdf = load_rdf_of_zip(result.zip_path, tmp_path / "unzipped")
    expected = {"pytorch_state_dict", "torchscript", "onnx", "tensorflow_saved_model_bundle"} if trust else {
        "onnx", "tensorflow_saved_model_bundle",
    }  # fmt: skip
    assert set(rdf["weights"]) == expected
    assert rdf["parent"]["id"] == load_rdf(source)["id"]
    assert all(w.agreement.passed for w in result.lineage.exported.weights)
    assert api.validate(result.zip_path, trust=trust).status == "passed"


@pytest.mark.slow
def test_keras_through_its_onnx_export(tiny_keras_package, target_folder, tmp_path):
    result = api.finetune(
        tiny_keras_package, target_folder, tmp_path / "out", weights="keras_v3", trust=True, epochs=15, lr=2e-2,
        device="cpu",
    )  # fmt: skip
    assert result.weights == "keras_v3" and result.kept and result.exit_code == 0
    assert "onnx" in [w.weight_format for w in result.lineage.exported.weights]
    assert result.lineage.report.status == "passed"


@pytest.mark.slow
def test_a_third_party_package_from_its_onnx(tmp_path):
    """unet2d_nuclei_broad: fixed 512×512 input with batch 1, ONNX at opset 20, a sigmoid in its post-processing."""
    from tests.conftest import copy_real_model
    from zoo.data.shifted import write_image_mask_folder
    from zoo.data.synthetic import make_nuclei

    package = copy_real_model("unet2d_nuclei_broad", tmp_path)
    data = write_image_mask_folder(tmp_path / "data", *make_nuclei(8, (512, 512), seed=3))
    result = api.finetune(package, data, tmp_path / "out", weights="onnx", epochs=2, device="cpu")
    assert result.weights == "onnx" and result.loss == "bce-dice" and "post-processing" in result.loss_why
    assert result.kept and result.exit_code == 0, result.verdict
    assert result.lineage.halo == {"declared": 32, "halo": 32, "how": result.lineage.halo["how"]}
    rdf = load_rdf_of_zip(result.zip_path, tmp_path / "unzipped")
    assert "parent" not in rdf  # the base has no bioimage.io id: its rdf's sha256 is the link
    assert rdf["config"]["zoo"]["finetune"]["base"]["rdf_sha256"] == sha(package / "rdf.yaml")
    assert rdf["weights"]["onnx"]["opset_version"] == 17
    assert result.lineage.report.status == "passed" and result.lineage.report.deepimagej_verdict == "runs"
