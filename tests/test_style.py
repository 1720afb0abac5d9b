"""The code's form is checked by the test command: `ruff format` leaves every file as it is and `ruff check`
finds nothing (rules in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["zoo", "tests", "benchmarks"]


def _ruff() -> str:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is missing: install the dev extra (pip install -e '.[dev]')")
    return ruff


def test_ruff_format_leaves_every_file_as_it_is():
    run = subprocess.run([_ruff(), "format", "--check", *FOLDERS], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:]


def test_ruff_check_finds_nothing():
    run = subprocess.run([_ruff(), "check", *FOLDERS], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:]
