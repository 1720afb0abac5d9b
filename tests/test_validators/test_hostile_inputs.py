"""Hostile and broken inputs and surroundings: the input is never changed, every failure is one line and an exit
code, one package's failure never stops a collection, and no run leaves temporary folders or stray files behind."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import hanging_package, rehash
from zoo.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def tree_state(path: Path) -> dict[str, str]:
    """Every file under `path` (or `path` itself) with its sha256."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def zoo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "zoo.cli", *args]


def run_env(tmp: Path) -> dict[str, str]:
    """The test's own zoo, and a fresh temporary folder that nothing else uses."""
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}


def last_line(stderr: str) -> str:
    """The message a failed command ends with (a progress bar may come before it)."""
    return stderr.strip().splitlines()[-1]


def leftovers(tmp: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("zoo-*"))


# ------------------------------------------------------------------------------------- the input is never changed


@pytest.mark.parametrize("option", ["--json", "--markdown", "--html", "--junit", "--keep-artifacts"])
@pytest.mark.parametrize("given", ["folder", "rdf", "zip"])
def test_validate_refuses_an_output_inside_the_package(package_folder, tiny_package, tmp_path, option, given):
    folder = package_folder()
    if given == "zip":
        source = shutil.copy(tiny_package, tmp_path / "package.zip")
        output = Path(source)  # the zip itself
    else:
        source = folder if given == "folder" else folder / "rdf.yaml"
        output = folder / "rdf.yaml" if option != "--keep-artifacts" else folder / "artifacts"
    package = Path(source) if given == "zip" else folder
    before = tree_state(package)
    result = runner.invoke(app, ["validate", str(source), option, str(output)])
    assert result.exit_code == 2, result.output
    assert tree_state(package) == before
    assert not (folder / "artifacts").exists()


def test_validate_keep_artifacts_onto_a_file_is_refused(tiny_package, tmp_path):
    existing = tmp_path / "artifacts.npy"
    existing.write_bytes(b"mine")
    result = runner.invoke(app, ["validate", str(tiny_package), "--keep-artifacts", str(existing)])
    assert result.exit_code == 2, result.output
    assert existing.read_bytes() == b"mine"


def test_predict_refuses_out_inside_the_model(package_folder, tmp_path):
    folder = package_folder()
    image = tmp_path / "image.npy"
    np.save(image, np.load(folder / "test_input.npy")[0, 0])
    before = tree_state(folder)
    result = runner.invoke(app, ["predict", str(folder), str(image), "--out", str(folder / "predictions")])
    assert result.exit_code == 2, result.output
    assert tree_state(folder) == before
    assert not (folder / "predictions").exists()


def test_validate_collection_refuses_out_inside_a_package(package_folder, tmp_path):
    collection = tmp_path / "collection"
    collection.mkdir()
    folder = package_folder().rename(collection / "one")
    before = tree_state(folder)
    result = runner.invoke(app, ["validate-collection", str(collection), "--out", str(folder / "reports")])
    assert result.exit_code == 2, result.output
    assert tree_state(folder) == before
    assert not (folder / "reports").exists()


# ------------------------------------------------------------------------------ one line for file-system failures


@pytest.mark.slow
@pytest.mark.parametrize("command", ["predict", "validate-collection", "package", "train", "demo", "export"])
def test_out_that_is_an_existing_file_is_one_line_naming_it(command, tiny_package, tiny_checkpoint, tmp_path):
    out = tmp_path / "taken"
    out.write_bytes(b"mine")
    collection = tmp_path / "collection"
    collection.mkdir()
    shutil.copy(tiny_package, collection / "tiny.zip")
    image = tmp_path / "image.npy"
    np.save(image, np.zeros((48, 48), dtype=np.float32))
    args = {
        "predict": ["predict", str(tiny_package), str(image)],
        "validate-collection": ["validate-collection", str(collection)],
        "package": ["package", str(tiny_checkpoint)],
        "train": ["train", "--quick"],
        "demo": ["demo", "--quick"],
        "export": ["export", str(tiny_checkpoint)],
    }[command]
    result = subprocess.run(
        zoo_command(*args, "--out", str(out)),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=run_env(tmp_path / "tmp"),
    )
    assert result.returncode == 2, result.stderr
    assert str(out) in last_line(result.stderr), result.stderr
    assert out.read_bytes() == b"mine"
    assert not (collection / ".cache").exists() and sorted(p.name for p in collection.iterdir()) == ["tiny.zip"]


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


@pytest.mark.slow
def test_a_report_over_the_file_size_limit_is_one_line_naming_it(tmp_path):
    package = tmp_path / "package"
    package.mkdir()
    (package / "rdf.yaml").write_text("type: model\nname: broken\nformat_version: 0.5.3\n")
    report = tmp_path / "out" / "report.json"
    result = subprocess.run(
        zoo_command("validate", str(package), "--json", str(report)),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=run_env(tmp_path / "tmp"),
        preexec_fn=_limit_file_size,
    )
    assert result.returncode == 2, result.stderr
    assert str(report) in last_line(result.stderr), result.stderr
    assert list(report.parent.iterdir()) == []  # no half-written report, no temporary file


# ------------------------------------------------------------- a collection: every package gets an entry, always


ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefghi", "bcdefghij")
)


@pytest.mark.slow
def test_collection_validates_every_package_whatever_the_others_do(package_folder, tiny_package, tmp_path):
    collection = tmp_path / "collection"
    collection.mkdir()
    package_folder().rename(collection / "good")
    (collection / "bomb").mkdir()
    (collection / "bomb" / "rdf.yaml").write_text(ALIAS_BOMB)
    data = bytearray(Path(tiny_package).read_bytes())
    data[len(data) // 3 : len(data) // 3 + 4096] = bytes(4096)  # members' data destroyed, the directory intact
    (collection / "corrupt.zip").write_bytes(bytes(data))
    out = collection / "reports"  # a new folder in the collection, beside the packages: allowed, not searched
    result = runner.invoke(app, ["validate-collection", str(collection), "--out", str(out)])
    assert result.exit_code == 1, result.output
    summary = json.loads((out / "summary.json").read_text())
    statuses = {entry["path"]: entry["status"] for entry in summary["packages"]}
    assert statuses == {"good": "passed", "bomb": "failed", "corrupt.zip": "failed"}


@pytest.mark.slow
def test_collection_entry_of_a_package_whose_child_was_stopped(tiny_package, tmp_path):
    collection = tmp_path / "collection"
    collection.mkdir()
    shutil.copy(tiny_package, collection / "tiny.zip")
    result = runner.invoke(
        app, ["validate-collection", str(collection), "--out", str(tmp_path / "out"), "--time-limit", "1", "--no-cache"]
    )
    assert result.exit_code == 1, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [(e["path"], e["status"]) for e in summary["packages"]] == [("tiny.zip", "failed")]


# ----------------------------------------------------------------------------------------- nothing left behind


@pytest.mark.slow
@pytest.mark.parametrize("case", ["passed", "failed", "time limit"])
def test_validate_leaves_nothing_behind(case, tiny_package, package_folder, tmp_path):
    source = tiny_package
    args = []
    if case == "failed":
        source = package_folder()
        np.save(source / "test_output.npy", np.load(source / "test_output.npy") + 0.1)
        rehash(source, "test_output.npy")
    if case == "time limit":
        args = ["--time-limit", "1"]
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    result = subprocess.run(
        zoo_command("validate", str(source), "--html", str(tmp_path / "report.html"), *args),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=run_env(tmp),
    )
    assert result.returncode == {"passed": 0, "failed": 1, "time limit": 1}[case], result.stderr
    assert leftovers(tmp) == []
    assert list(cwd.iterdir()) == []


@pytest.mark.slow
def test_validate_leaves_nothing_behind_when_the_child_is_killed_mid_run(package_folder, tmp_path):
    folder = hanging_package(package_folder)
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    result = subprocess.run(
        zoo_command("validate", str(folder), "--trust", "--time-limit", "30"),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=run_env(tmp),
    )
    assert result.returncode == 1, result.stderr
    assert leftovers(tmp) == []
    assert list(cwd.iterdir()) == []


@pytest.mark.slow
def test_validate_leaves_nothing_behind_after_ctrl_c(package_folder, tmp_path):
    folder = hanging_package(package_folder)
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    process = subprocess.Popen(
        zoo_command("validate", str(folder), "--trust", "--html", str(tmp_path / "r.html")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        env=run_env(tmp),
    )
    try:
        deadline = time.monotonic() + 180
        while not list(tmp.rglob("zoo-probe-*")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, "the validation ended before the model was built"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert leftovers(tmp) == []
    assert list(cwd.iterdir()) == []
