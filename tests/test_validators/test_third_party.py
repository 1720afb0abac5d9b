"""Packages as other people write them: formats 0.3/0.4, fixed batches, raw test inputs, architectures named
wrongly, files outside the package, hostile YAML. Read through zoo's one reading of the rdf (zoo.bioimage)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED, load_rdf, save_rdf, sha256
from zoo.validators import validate_source

REAL_WORLD = SHARED / "real-world" / "packages"


def _legacy_rdf(folder: Path, *, batch: int | None = 1) -> dict:
    """A format-0.4 description of the tiny package in `folder` (same weights and test tensors): axes as a
    string, the input shape a list (batch fixed at `batch`) or min/step (`batch` None), outputs by reference."""
    rdf = load_rdf(folder)
    test_input = np.load(folder / rdf["inputs"][0]["test_tensor"]["source"])
    shape = list(test_input.shape)
    input_shape = [batch, *shape[1:]] if batch else {"min": [1, *shape[1:]], "step": [0, 0, 8, 8]}
    legacy = {
        "format_version": "0.4.10",
        "type": "model",
        "name": "legacy tiny unet",
        "description": "the tiny package described in format 0.4",
        "authors": [{"name": "zoo tests"}],
        "cite": [{"text": "zoo", "doi": "10.1007/978-3-319-24574-4_28"}],
        "license": "MIT",
        "documentation": rdf["documentation"],
        "timestamp": "2024-01-01T00:00:00",
        "inputs": [
            {
                "name": "raw",
                "axes": "bcyx",
                "data_type": "float32",
                "data_range": [-1e9, 1e9],
                "shape": input_shape,
                "preprocessing": [{"name": "zero_mean_unit_variance", "kwargs": {"mode": "per_sample", "axes": "yx"}}],
            }
        ],
        "outputs": [
            {
                "name": "mask",
                "axes": "bcyx",
                "data_type": "float32",
                "data_range": [0.0, 1.0],
                "shape": {"reference_tensor": "raw", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]},
                "halo": [0, 0, 0, 0],
            }
        ],
        "test_inputs": [rdf["inputs"][0]["test_tensor"]["source"]],
        "test_outputs": [rdf["outputs"][0]["test_tensor"]["source"]],
        "weights": {
            name: {"source": entry["source"], "sha256": entry["sha256"]}
            for name, entry in rdf["weights"].items()
            if name in ("onnx", "torchscript")
        },
    }
    return legacy


def _write(folder: Path, rdf: dict) -> Path:
    save_rdf(folder, rdf)
    return folder


@pytest.mark.slow
def test_fixed_batch_of_a_format_04_shape_is_kept(package_folder):
    """The spec's 0.4 → 0.5 upgrade drops `shape: [1, ...]`'s fixed batch; no check may feed a batch of two."""
    folder = package_folder()
    report = validate_source(_write(folder, _legacy_rdf(folder, batch=1)), isolate=False)
    assert report.by_id("FMT002")[0].status == "passed"
    assert {f.status for f in report.by_id("SIZ003")} == {"skipped"}
    assert not [f for f in report.findings if f.status == "failed"]
    assert report.status == "passed"


@pytest.mark.slow
def test_free_batch_of_a_format_04_shape_is_tested(package_folder):
    folder = package_folder()
    report = validate_source(_write(folder, _legacy_rdf(folder, batch=None)), isolate=False)
    assert "passed" in {f.status for f in report.by_id("SIZ003")}


@pytest.mark.slow
def test_raw_integer_test_input_is_allowed_in_format_04(package_folder):
    folder = package_folder()
    rdf = _legacy_rdf(folder)
    source = folder / rdf["test_inputs"][0]
    image = np.load(source)
    scaled = (image - image.min()) / (np.ptp(image) or 1) * 60000
    np.save(source, scaled.astype(np.uint16))
    report = validate_source(_write(folder, rdf), isolate=False)
    assert [f.status for f in report.by_id("TEN001")] == ["passed"]


@pytest.mark.slow
def test_integer_test_input_is_still_refused_in_format_05(package_folder):
    folder = package_folder()
    rdf = load_rdf(folder)
    source = folder / rdf["inputs"][0]["test_tensor"]["source"]
    np.save(source, np.load(source).astype(np.uint16))
    rdf["inputs"][0]["test_tensor"]["sha256"] = sha256(source)
    report = validate_source(_write(folder, rdf), isolate=False)
    assert "failed" in {f.status for f in report.by_id("TEN001")}


@pytest.mark.parametrize(
    ("architecture", "status"),
    [("arch.py:UNet", "passed"), ("arch.py::UNet", "failed"), ("arch.py:Missing", "failed")],
)
def test_architecture_source_is_checked_statically(package_folder, architecture, status):
    folder = package_folder()
    (folder / "arch.py").write_text("import os\nos.makedirs('never-run')\n\nclass UNet:\n    pass\n")
    rdf = _legacy_rdf(folder)
    rdf["weights"]["pytorch_state_dict"] = {"source": rdf["weights"]["onnx"]["source"], "architecture": architecture}
    report = validate_source(_write(folder, rdf), isolate=False)
    assert [f.status for f in report.by_id("FIL004")] == [status]
    assert not (folder / "never-run").exists() and not Path("never-run").exists()


def test_missing_architecture_file_is_named_once_by_fil001(package_folder):
    folder = package_folder()
    rdf = _legacy_rdf(folder)
    source = rdf["weights"]["onnx"]["source"]
    rdf["weights"]["pytorch_state_dict"] = {"source": source, "architecture": "nofile.py:UNet"}
    report = validate_source(_write(folder, rdf), isolate=False)
    assert [f.location for f in report.by_id("FIL001") if f.status == "failed"] == [
        "weights.pytorch_state_dict.architecture"
    ]
    assert [f.status for f in report.by_id("FIL004")] == ["passed"]


@pytest.mark.slow
@pytest.mark.parametrize("source", ["../outside/weights.onnx", "/etc/hostname"])
def test_files_outside_the_package_are_refused_unread(package_folder, tmp_path, source):
    folder = package_folder()
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    rdf = load_rdf(folder)
    shutil.copy(folder / rdf["weights"]["onnx"]["source"], outside / "weights.onnx")
    rdf["weights"]["onnx"]["source"] = source if source.startswith("/") else f"../{folder.name}/{source}"
    if not source.startswith("/"):
        rdf["weights"]["onnx"]["source"] = str(Path("..") / "outside" / "weights.onnx")
    report = validate_source(_write(folder, rdf), isolate=False)
    [finding] = [f for f in report.by_id("FIL001") if f.status == "failed"]
    assert finding.location == "weights.onnx"
    assert not [f for f in report.by_id("FIL002") if f.details and f.details.get("actual")]


@pytest.mark.slow
def test_symlink_out_of_the_package_is_refused(package_folder, tmp_path):
    folder = package_folder()
    rdf = load_rdf(folder)
    weights = folder / rdf["weights"]["onnx"]["source"]
    elsewhere = tmp_path / "elsewhere.onnx"
    shutil.move(weights, elsewhere)
    weights.symlink_to(elsewhere)
    report = validate_source(folder, isolate=False)
    assert [f.location for f in report.by_id("FIL001") if f.status == "failed"] == ["weights.onnx"]


def test_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (tmp_path / "rdf.yaml").write_text("\n".join(lines) + "\ntype: model\n")
    report = validate_source(tmp_path, isolate=False)
    [finding] = report.by_id("FMT001")
    assert finding.status == "failed"
    assert report.status == "failed"


needs_real_world = pytest.mark.skipif(not REAL_WORLD.is_dir(), reason="../shared/real-world is absent")


@needs_real_world
def test_real_uint8_test_input_of_a_format_04_package_is_allowed():
    report = validate_source(REAL_WORLD / "tiktorch_dummy_tensorflow" / "rdf.yaml", isolate=False)
    assert [f.status for f in report.by_id("TEN001")] == ["passed"]


@needs_real_world
def test_real_state_dict_with_an_invalid_architecture_is_named_without_trust():
    report = validate_source(REAL_WORLD / "tiktorch_dummy" / "Dummy.model.yaml", isolate=False)
    [finding] = report.by_id("FIL004")
    assert finding.status == "failed"
    assert finding.location == "source"


def test_a_truncated_zip_is_called_damaged_and_a_text_named_zip_is_not_a_zip(tiny_package, tmp_path):
    from zoo.errors import SourceError

    data = tiny_package.read_bytes()
    truncated = tmp_path / "downloaded.zip"
    truncated.write_bytes(data[: len(data) // 2])  # the table of contents sits at the end
    with pytest.raises(SourceError, match="damaged zip archive .*fetch or copy it again"):
        validate_source(truncated, isolate=False)
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    with pytest.raises(SourceError, match="is named .zip but is not a zip archive"):
        validate_source(text, isolate=False)


def test_zip_with_two_descriptors_is_refused(package_folder, tmp_path):
    import warnings
    import zipfile

    folder = package_folder()
    archive = tmp_path / "twice.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        with zipfile.ZipFile(archive, "w") as out:
            for path in sorted(folder.iterdir()):
                out.write(path, path.name)
            out.writestr("rdf.yaml", "type: model\nname: the other one\n")
    report = validate_source(archive, isolate=False)
    assert [f.status for f in report.by_id("SAF001")] == ["failed"]


def test_folder_with_two_descriptors_is_refused(package_folder):
    from zoo.errors import SourceError

    folder = package_folder()
    (folder / "bioimageio.yaml").write_text((folder / "rdf.yaml").read_text())
    with pytest.raises(SourceError):
        validate_source(folder, isolate=False)


def test_a_folder_whose_descriptor_has_another_name_lists_its_yaml_files(package_folder):
    from zoo.errors import SourceError

    folder = package_folder()
    (folder / "rdf.yaml").rename(folder / "Dummy.model_param.yaml")
    with pytest.raises(SourceError, match=r"holds no rdf\.yaml.*but Dummy\.model_param\.yaml: .*give the path"):
        validate_source(folder, isolate=False)


@needs_real_world
def test_legacy_model_yaml_is_found_in_its_folder():
    from zoo.bioimage.source import find_rdf

    assert find_rdf(REAL_WORLD / "tiktorch_dummy_tensorflow").name == "rdf.yaml"
    assert find_rdf(REAL_WORLD / "tiktorch_unet2d_onnx").name == "UNet2DNucleiBroad.model.yaml"


@pytest.mark.slow
def test_sparse_huge_file_is_not_hashed(package_folder):
    import time

    folder = package_folder()
    rdf = load_rdf(folder)
    huge = folder / "huge.bin"
    with huge.open("wb") as f:
        f.truncate(10 * 1024**4)  # 10 TiB, sparse: no disk used
    rdf["attachments"] = [{"source": "huge.bin", "sha256": "0" * 64}]
    save_rdf(folder, rdf)
    started = time.monotonic()
    report = validate_source(folder, isolate=False)
    assert time.monotonic() - started < 300
    [finding] = [f for f in report.by_id("FIL002") if f.status == "failed"]
    assert finding.details["size"] == 10 * 1024**4


def test_zip_with_a_corrupt_member_is_a_finding(package_folder, tmp_path):
    import zipfile

    folder = package_folder()
    archive = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for path in sorted(folder.iterdir()):
            out.write(path, path.name)
    data = bytearray(archive.read_bytes())
    offset = data.index(b"NUMPY") + 200  # inside a stored .npy member: its CRC no longer matches
    data[offset] ^= 0xFF
    archive.write_bytes(bytes(data))
    report = validate_source(archive, isolate=False)
    assert [f.status for f in report.by_id("SAF001")] == ["failed"]


def test_zip_member_name_too_long_for_the_file_system_is_a_finding(package_folder, tmp_path):
    import zipfile

    folder = package_folder()
    archive = tmp_path / "long.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.iterdir()):
            out.write(path, path.name)
        out.writestr("a" * 300 + ".txt", "x")
    report = validate_source(archive, isolate=False)
    assert [f.status for f in report.by_id("SAF001")] == ["failed"]


@pytest.mark.slow
def test_one_rule_on_many_tensors_is_summarised(package_folder):
    folder = package_folder()
    rdf = load_rdf(folder)
    output = rdf["outputs"][0]
    rdf["outputs"] = [{**output, "id": f"out{i}", "test_tensor": {"source": f"missing{i}.npy"}} for i in range(200)]
    save_rdf(folder, rdf)
    report = validate_source(folder, isolate=False)
    fil001 = report.by_id("FIL001")
    assert len(fil001) == 20
    assert fil001[-1].details["more"] == 200 - 19
    assert len(report.findings) < 200


def test_child_stopped_before_reading_is_a_finding_never_a_rerun_in_the_parent(package_folder, monkeypatch):
    import zoo.validators as validators

    def never(pkg):  # the parent must not read the package itself
        raise AssertionError("the parent read the package")

    monkeypatch.setattr(validators, "load_package", never)
    report = validate_source(package_folder(), time_limit_s=0.3)
    assert [f.status for f in report.by_id("SAF006")] == ["failed"]
    assert {f.status for f in report.by_id("FMT002")} == {"skipped"}
    assert report.status == "failed"


def test_predict_refuses_a_yaml_alias_bomb_before_it_expands(tmp_path):
    import resource
    import subprocess
    import sys

    package = tmp_path / "bomb"
    package.mkdir()
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (package / "rdf.yaml").write_text("\n".join(lines) + "\ntype: model\n")
    np.save(tmp_path / "image.npy", np.zeros((64, 64), np.float32))
    zoo = Path(sys.executable).parent / "zoo"

    def limit_memory():  # expanded, the bomb needs gigabytes: refused unexpanded, it fits in 4 GB of address space
        resource.setrlimit(resource.RLIMIT_AS, (4 * 1024**3, 4 * 1024**3))

    command = [str(zoo), "predict", str(package), str(tmp_path / "image.npy"), "--out", str(tmp_path / "out")]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=limit_memory)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "alias" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()
