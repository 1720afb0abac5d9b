"""zoo convert: weight formats added to packages someone else made (a CAREamics-like state-dict-only package, an ONNX
at opset 20, a format that cannot be made), each proven against the format it came from; the input is never
modified and nothing half-written lands in the output folder."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests import packages as rp
from tests.conftest import load_rdf, save_rdf
from zoo import api
from zoo.cli import app
from zoo.errors import InputError
from zoo.packaging.agreement import AGREEMENT_ATOL
from zoo.packaging.convert import DEFAULT_FORMATS, choose_parent, parse_convert_formats, proof_inputs

runner = CliRunner()

UNET = '''
import torch
from torch import nn


class TinyUNet(nn.Module):
    """One level down and up, with a skip connection."""

    def __init__(self, in_channels=1, out_channels=1, base=4):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(in_channels, base, 3, padding=1), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.middle = nn.Sequential(nn.Conv2d(base, 2 * base, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(2 * base, 2 * base, 2, stride=2)
        self.out = nn.Conv2d(3 * base, out_channels, 1)

    def forward(self, x):
        skip = self.down(x)
        return self.out(torch.cat([skip, self.up(self.middle(self.pool(skip)))], dim=1))
'''
SIZES = {"min": 16, "step": 8}
ALL = ("torchscript", "onnx", "tensorflow_saved_model_bundle")


def raw_image() -> np.ndarray:
    """Raw intensities far from zero mean and unit variance: the pre-processing matters."""
    return (np.random.default_rng(0).standard_normal((1, 1, 64, 64)) * 10 + 100).astype(np.float32)


def tiny_unet():
    import torch

    namespace: dict = {}
    exec(UNET, namespace)
    torch.manual_seed(0)
    return namespace["TinyUNet"](base=4).eval()


@pytest.fixture(scope="module")
def state_dict_package(tmp_path_factory) -> Path:
    """Like a CAREamics export: format 0.5, pytorch_state_dict only, zero-mean unit-variance pre-processing."""
    folder = tmp_path_factory.mktemp("careamics-like") / "package"
    return rp.write_state_dict_package(
        folder, UNET, "TinyUNet", {"base": 4}, raw_image(), rp.image_axes("yx", SIZES), rp.output_axes("yx")
    )


@pytest.fixture(scope="module")
def onnx_package(tmp_path_factory):
    """ONNX-only packages (format 0.5) at the opset asked for."""
    made: dict[int, Path] = {}

    def make(opset: int) -> Path:
        if opset not in made:
            folder = tmp_path_factory.mktemp(f"onnx-{opset}") / "package"
            image = np.random.default_rng(1).standard_normal((1, 1, 64, 64)).astype(np.float32)
            made[opset] = rp.write_onnx_package(
                folder,
                tiny_unet(),
                image,
                rp.image_axes("yx", SIZES),
                rp.output_axes("yx"),
                opset=opset,
                ir_version=9 if opset > 17 else 8,
            )
        return made[opset]

    return make


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256(p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_zip_rdf(zip_path: Path) -> dict:
    from ruyaml import YAML

    with zipfile.ZipFile(zip_path) as archive:
        return YAML(typ="safe").load(archive.read("rdf.yaml"))


def onnx_versions(zip_path: Path, name: str) -> tuple[int, int]:
    import onnx

    with zipfile.ZipFile(zip_path) as archive:
        proto = onnx.load_from_string(archive.read(name))
    return max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), proto.ir_version


# ---------------------------------------------------------------------------------------------- fast


def test_parse_formats_takes_aliases_and_refuses_unknown_names():
    assert parse_convert_formats("torchscript,onnx,tensorflow") == list(ALL)
    assert parse_convert_formats(None) == list(DEFAULT_FORMATS) == list(ALL)
    assert parse_convert_formats(["onnx", "onnx", "state_dict"]) == ["onnx", "pytorch_state_dict"]
    with pytest.raises(InputError, match="keras_js"):
        parse_convert_formats("onnx,keras_js")


def test_without_trust_a_state_dict_package_is_refused_before_anything_is_written(state_dict_package, tmp_path):
    before = tree_digest(state_dict_package)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["convert", str(state_dict_package), "--formats", "torchscript,onnx", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "--trust" in result.output
    assert not out.exists()
    assert tree_digest(state_dict_package) == before


def test_the_parent_is_the_best_format_that_loads_here(tmp_path):
    """pytorch_state_dict comes first, but only with trust; without it the TorchScript is the parent."""
    import torch

    from zoo.bioimage.rdf import read_rdf
    from zoo.bioimage.source import open_source

    folder = rp.write_package(
        tmp_path / "package", torch.nn.Conv2d(1, 1, 3, padding=1), raw_image(), rp.image_axes(), rp.output_axes()
    )
    (folder / "architecture.py").write_text(UNET)
    torch.save(tiny_unet().state_dict(), folder / "weights_state_dict.pt")
    rdf = load_rdf(folder)
    rdf["weights"]["pytorch_state_dict"] = {
        "source": "weights_state_dict.pt",
        "architecture": {"source": "architecture.py", "callable": "TinyUNet", "kwargs": {"base": 4}},
        "pytorch_version": "2.4.0",
    }
    save_rdf(folder, rdf)
    with open_source(folder) as opened:
        untrusted = choose_parent(opened, read_rdf(opened.rdf_path), trust=False)
        trusted = choose_parent(opened, read_rdf(opened.rdf_path), trust=True)
    assert untrusted.weight_format == "torchscript"
    assert set(untrusted.passed_over) == {"pytorch_state_dict"}
    assert trusted.weight_format == "pytorch_state_dict" and trusted.passed_over == {}


def test_proof_inputs_keep_a_fixed_batch_of_one():
    from zoo.bioimage.tensors import tensor_specs

    axes = [{"type": "batch", "size": 1}, rp.channel("raw"), rp.space_in("y", (16, 8)), rp.space_in("x", (16, 8))]
    [spec], _ = tensor_specs({"format_version": "0.5.4", "inputs": [{"id": "raw", "axes": axes}], "outputs": []})
    example = np.zeros((1, 1, 32, 32), np.float32)
    inputs = proof_inputs(example, spec, "bcyx")
    assert {x.shape for x in inputs.values()} == {(1, 1, 32, 32), (1, 1, 16, 16), (1, 1, 24, 40)}
    free = proof_inputs(
        example, tensor_specs({"inputs": [{"id": "raw", "axes": rp.image_axes("yx", SIZES)}]})[0][0], "bcyx"
    )
    assert (2, 1, 32, 32) in {x.shape for x in free.values()}


def test_an_existing_output_is_refused_without_overwrite_and_kept(onnx_package, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "tiny-onnx-model.zip"
    existing.write_bytes(b"an earlier conversion")
    result = runner.invoke(app, ["convert", str(onnx_package(17)), "--formats", "onnx", "--out", str(out)])
    assert result.exit_code == 2
    assert "--overwrite" in result.output
    assert existing.read_bytes() == b"an earlier conversion"
    assert sorted(p.name for p in out.iterdir()) == [existing.name]

    result = runner.invoke(
        app, ["convert", str(onnx_package(17)), "--formats", "onnx", "--out", str(out), "--overwrite"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [existing.name]
    assert set(read_zip_rdf(existing)["weights"]) == {"onnx"}


def test_a_format_that_cannot_be_made_is_listed_and_the_others_ship(onnx_package, tmp_path):
    """TorchScript cannot be made from ONNX: not made, with the reason; the ONNX (at opset 17 already) is kept."""
    result = api.convert(onnx_package(17), tmp_path / "out", "torchscript,onnx")
    assert {o.weight_format: o.status for o in result.outcomes} == {"torchscript": "not made", "onnx": "kept"}
    assert set(result.failures) == {"torchscript"} and result.kept == ["onnx"]
    assert result.exit_code == 1
    assert result.report.status == "passed"
    assert result.zip_path == tmp_path / "out" / "tiny-onnx-model.zip"
    rdf = read_zip_rdf(result.zip_path)
    assert set(rdf["weights"]) == {"onnx"} and str(rdf["format_version"]).startswith("0.5")


def test_a_changed_weights_file_is_named_and_no_output_folder_is_left(package_folder, tmp_path):
    folder = package_folder()
    (folder / "weights_torchscript.pt").write_bytes(b"not the file the rdf's sha256 describes")
    out = tmp_path / "new" / "out"
    result = runner.invoke(app, ["convert", str(folder), "--formats", "onnx", "--out", str(out)])
    assert result.exit_code == 2
    message = result.output.strip().splitlines()[-1]
    assert "weights.torchscript" in message and "SHA256 mismatch" in message and "zoo validate" in message
    assert not out.exists()


def test_a_model_with_two_inputs_is_refused_in_one_line(tmp_path):
    from tests.conftest import copy_real_model

    folder = copy_real_model("unet2d_multi_tensor", tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", str(folder), "--formats", "onnx", "--out", str(out)])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_a_state_dict_package_gets_every_format_and_passes_zoo_and_the_reference(state_dict_package, tmp_path):
    before = tree_digest(state_dict_package)
    out = tmp_path / "out"
    result = api.convert(state_dict_package, out, "torchscript,onnx,tensorflow", trust=True)

    assert result.exit_code == 0 and result.failures == {}
    assert result.parent.weight_format == "pytorch_state_dict"
    assert {w.weight_format for w in result.added} == set(ALL)
    for weights in result.added:
        assert weights.agreement.passed and weights.agreement.max_abs <= AGREEMENT_ATOL
        assert len(weights.agreement.cases) == 4
    assert result.made_from == dict.fromkeys(ALL, "pytorch_state_dict")
    assert sorted(p.name for p in out.iterdir()) == [result.zip_path.name]
    assert tree_digest(state_dict_package) == before

    rdf = read_zip_rdf(result.zip_path)
    assert str(rdf["format_version"]).startswith("0.5")
    weights = rdf["weights"]
    assert set(weights) == {"pytorch_state_dict", *ALL}
    assert "parent" not in weights["pytorch_state_dict"]
    assert weights["torchscript"]["parent"] == weights["onnx"]["parent"] == "pytorch_state_dict"
    assert weights["tensorflow_saved_model_bundle"]["parent"] in ("pytorch_state_dict", "onnx")
    assert weights["onnx"]["opset_version"] == 17 and onnx_versions(result.zip_path, weights["onnx"]["source"]) == (
        17,
        8,
    )
    with zipfile.ZipFile(result.zip_path) as archive:
        for entry in weights.values():
            assert sha256(archive.read(entry["source"])) == entry["sha256"]

    assert result.report.status == "passed" and result.report.deepimagej_verdict == "runs"
    validated = runner.invoke(app, ["validate", str(result.zip_path), "--trust", "--device", "cpu"])
    assert validated.exit_code == 0, validated.output
    from bioimageio.core import test_description

    summary = test_description(result.zip_path)
    assert summary.status == "passed", summary.format()


@pytest.mark.slow
def test_an_onnx_at_opset_20_is_rewritten_at_17_and_gets_tensorflow(onnx_package, tmp_path):
    """Format 0.4 and an ONNX deepImageJ cannot read: the ONNX re-written from its own graph, TF made from it, both
    proven against the opset-20 original; TorchScript cannot be made from ONNX and the others still ship."""
    folder = tmp_path / "package"
    shutil.copytree(onnx_package(20), folder)
    rp.to_format_0_4(folder)
    result = api.convert(folder, tmp_path / "out", "torchscript,onnx,tensorflow")

    assert result.parent.weight_format == "onnx"
    statuses = {o.weight_format: o.status for o in result.outcomes}
    assert statuses == {"onnx": "re-written", "torchscript": "not made", "tensorflow_saved_model_bundle": "added"}
    assert result.made_from == {"onnx": "onnx", "tensorflow_saved_model_bundle": "onnx"}
    assert all(w.agreement.max_abs <= AGREEMENT_ATOL for w in result.added)
    assert result.exit_code == 1  # torchscript was asked for and not made
    assert result.report.status == "passed" and result.report.deepimagej_verdict == "runs"

    rdf = read_zip_rdf(result.zip_path)
    assert str(rdf["format_version"]).startswith("0.5")
    weights = rdf["weights"]
    assert set(weights) == {"onnx", "tensorflow_saved_model_bundle"}
    assert weights["onnx"]["opset_version"] == 17 and "parent" not in weights["onnx"]
    assert onnx_versions(result.zip_path, weights["onnx"]["source"]) == (17, 8)
    assert weights["tensorflow_saved_model_bundle"]["parent"] == "onnx"
