"""The CLI contract: exit codes, the JSON report, and no traceback for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import rehash
from zoo.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_validate_good_package_exits_0_and_writes_the_json_contract(tiny_package, tmp_path):
    result = runner.invoke(app, ["validate", str(tiny_package), "--json", str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "passed"
    assert {"id", "status", "severity", "message"} <= set(report["checks"][0])
    assert {c["status"] for c in report["checks"]} <= {"passed", "failed", "skipped", "warning"}
    assert "REP001" in {c["id"] for c in report["checks"]}


@pytest.mark.slow
def test_validate_altered_output_exits_1_naming_the_check(package_folder, tmp_path):
    folder = package_folder()
    np.save(folder / "test_output.npy", np.load(folder / "test_output.npy") + 0.1)
    rehash(folder, "test_output.npy")
    result = runner.invoke(app, ["validate", str(folder), "--json", str(tmp_path / "report.json")])
    assert result.exit_code == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "failed"
    failed = {c["id"] for c in report["checks"] if c["status"] == "failed" and c["target"] == "bioimageio"}
    assert failed == {"REP001"}


def test_validate_missing_source_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "validate", str(tmp_path / "nope.zip")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_validate_garbage_file_exits_2(tmp_path):
    garbage = tmp_path / "model.bin"
    garbage.write_bytes(b"\x00\x01 not a package")
    result = runner.invoke(app, ["validate", str(garbage)])
    assert result.exit_code == 2


def test_unknown_trainer_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["train", "--trainer", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown" in result.output and "unet2d" in result.output


def test_export_of_a_non_checkpoint_is_a_usage_error(tmp_path):
    bogus = tmp_path / "checkpoint.pt"
    bogus.write_bytes(b"not a checkpoint")
    result = runner.invoke(app, ["export", str(bogus), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "checkpoint.pt" in result.output


def test_rules_lists_every_registered_rule():
    from zoo.validators.registry import RULES

    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 0
    assert all(rule_id in result.output for rule_id in RULES)


@pytest.mark.slow
def test_demo_quick_end_to_end_passes_zoo_and_the_reference(tmp_path):
    """`zoo demo --quick`, then bioimage.io's own `bioimageio test` on the package it leaves."""
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "demo", "--quick", "--out", str(out), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [package] = list(out.glob("*.zip"))
    report = json.loads((out / "validation.json").read_text())
    assert report["status"] == "passed"
    assert report["source"] == str(package)

    from bioimageio.core import test_description

    summary = test_description(package)
    assert summary.status == "passed", summary.format()


def test_docs_rules_md_is_generated_from_the_registry():
    """docs/rules.md must be regenerated (`zoo rules --markdown > docs/rules.md`) when a rule changes."""
    from pathlib import Path

    from zoo.validators.registry import rules_markdown

    docs = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
    assert docs.read_text(encoding="utf-8") == rules_markdown()
    result = runner.invoke(app, ["rules", "--markdown"])
    assert result.exit_code == 0 and result.output == rules_markdown()
