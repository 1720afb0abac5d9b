"""One consistent CLI: the same option names, units and defaults in every command, help for every option, one
line for every bad value, `--version`, completion, and output that is never cut when piped."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from zoo.cli import app

runner = CliRunner()


def run_zoo(*args: str, **options) -> subprocess.CompletedProcess:
    """The installed command as a user runs it, output piped."""
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, **options)


def options_of_every_command() -> dict[str, dict[str, object]]:
    group = typer.main.get_command(app)
    found = {}
    for name, command in group.commands.items():
        found[name] = {param.opts[0]: param for param in command.params if param.opts[0].startswith("--")}
    return found


def test_version_and_completion():
    result = run_zoo("--version")
    assert result.returncode == 0 and result.stdout.startswith("zoo ")
    assert "--install-completion" in run_zoo("--help").stdout


def test_every_option_has_help_and_the_shared_ones_agree():
    commands = options_of_every_command()
    missing = [f"{name} {opt}" for name, opts in commands.items() for opt, p in opts.items() if not p.help]
    assert missing == []
    devices = {name: opts["--device"].default for name, opts in commands.items() if "--device" in opts}
    assert set(devices.values()) == {"auto"} and len(devices) >= 6, devices
    targets = {name: opts["--target"].default for name, opts in commands.items() if "--target" in opts}
    assert set(targets.values()) == {"bioimageio"} and {"package", "validate"} <= set(targets), targets
    limits = {name: opts["--memory-limit"].default for name, opts in commands.items() if "--memory-limit" in opts}
    assert {"predict", "validate", "validate-collection"} <= set(limits)
    assert all(str(value).endswith("GB") for value in limits.values()), limits  # one unit, written out
    dask = {name for name, opts in commands.items() if "--workers" in opts and "--scheduler" in opts}
    assert dask == {"predict", "validate-collection"}
    overwrite = {name for name, opts in commands.items() if "--overwrite" in opts}
    assert {"demo", "train", "export", "package", "predict"} <= overwrite


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["train", "--device", "gpu"], "'gpu'"),
        (["train", "--device", "cuda:1"], "CUDA_VISIBLE_DEVICES"),
        (["train", "--lr", "0"], "--lr"),
        (["validate", "x.zip", "--memory-limit", "lots"], "'lots'"),
        (["predict", "m", "i.tif", "--out", "o", "--memory-limit", "0GB"], "'0GB'"),
        (["validate", "x.zip", "--target", "fiji"], "'fiji'"),
        (["nonsense"], "nonsense"),
    ],
)
def test_a_bad_option_value_is_one_line_and_exit_2(args, named):
    result = run_zoo(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "pydantic" not in result.stderr


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path):
    image = tmp_path / "some_image.tif"
    image.write_bytes(b"II*\x00" + bytes(64))
    result = run_zoo("package", str(image), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "some_image.tif" in result.stderr and "checkpoint" in result.stderr
    assert "Unpickl" not in result.stderr and "Traceback" not in result.stderr


def test_rules_are_concise_and_nothing_is_cut_when_piped():
    import zoo.validators.checks  # noqa: F401
    from zoo.validators.registry import RULES

    short = run_zoo("rules")
    assert short.returncode == 0
    assert len(short.stdout.splitlines()) == len(RULES) + 1  # one line a rule, one summary line
    verbose = run_zoo("rules", "--verbose").stdout
    flat = " ".join(verbose.split())
    longest = max(RULES.values(), key=lambda r: len(r.fix))
    assert " ".join(longest.fix.split()) in flat  # the whole fix, not cut at 80 columns
    assert all(" ".join(rule.title.split()) in flat for rule in RULES.values())
    from zoo.trainers import TRAINERS, get_trainer

    trainers = " ".join(run_zoo("trainers").stdout.split())
    assert all(" ".join(get_trainer(name).description.split()) in trainers for name in TRAINERS)


def test_a_bad_licence_is_one_line_before_any_export(tiny_checkpoint, tmp_path):
    result = run_zoo("package", str(tiny_checkpoint), "--out", str(tmp_path / "out"), "--license", "CC-BY-4")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--license CC-BY-4" in result.stderr and "CC-BY-4.0" in result.stderr
    assert "exporting" not in result.stderr and not (tmp_path / "out").exists()
