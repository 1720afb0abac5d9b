"""Every trainer's `zoo demo --quick` through the CLI on a folder that does not exist yet, as a new user runs it,
with output to a pipe (as under a job scheduler): progress arrives as lines while it runs, the verdict says the
model is a smoke test, and a second run into the same folder is refused without --overwrite."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zoo.trainers import TRAINERS


def run_zoo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_quick_demo_on_a_fresh_folder_through_the_cli(trainer, tmp_path):
    out = tmp_path / "new" / "demo"  # neither folder exists
    result = run_zoo("demo", "--trainer", trainer, "--quick", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    progress = result.stderr.splitlines()
    assert any("epoch 1 done" in line and "remaining" in line for line in progress), result.stderr
    assert any(line.startswith("exporting: ") for line in progress)
    assert "smoke test" in result.stdout
    report = json.loads((out / "validation.json").read_text())
    assert report["status"] == "passed" and "--quick" in report["quality"]
    assert len(list(out.glob("*.zip"))) == 1

    again = run_zoo("demo", "--trainer", trainer, "--quick", "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr
