"""A run folder: nothing in it replaced without --overwrite, an interrupted run says how to resume, and
`zoo train --resume --out RUN` continues with the settings RUN recorded (paths compared resolved)."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from tests.test_trainers.test_zoo_trainers import StopAtEpoch, tiny
from zoo import api
from zoo.cli import app
from zoo.cli.train_commands import interrupted_note
from zoo.errors import InputError
from zoo.trainers.checkpoint import load_checkpoint
from zoo.trainers.loop import changed_settings
from zoo.trainers.runs import describe_changes, recorded_settings, resumed_config


def test_a_second_run_into_the_same_folder_is_refused_and_the_first_kept(tmp_path):
    first = api.train(tiny("care2d", tmp_path, epochs=1))
    before = first.checkpoint.read_bytes()
    with pytest.raises(InputError, match="--overwrite"):
        api.train(tiny("care2d", tmp_path, epochs=1, seed=1))
    assert first.checkpoint.read_bytes() == before
    again = api.train(tiny("care2d", tmp_path, epochs=1, seed=1), overwrite=True)
    assert again.checkpoint.read_bytes() != before


def test_an_interrupted_run_says_how_to_resume_and_resumes_from_out_alone(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        api.train(tiny("care2d", run, epochs=2), StopAtEpoch(2))
    note = interrupted_note(run)
    assert "train_state.pt" in note and f"--resume --out {run}" in note
    assert recorded_settings(run)["trainer"] == "care2d"
    with pytest.raises(InputError, match="--resume"):  # not silently restarted over the saved state
        api.train(tiny("care2d", run, epochs=2))

    result = CliRunner().invoke(app, ["train", "--resume", "--out", str(run)])  # no --trainer: care2d recorded
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    assert checkpoint.trainer == "care2d"
    assert [h["epoch"] for h in checkpoint.history] == [1, 2]
    assert checkpoint.environment["resumed_after_epoch"] == "1"


def test_the_same_folder_given_relative_or_absolute_is_the_same_setting(tmp_path):
    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        (tmp_path / "data").mkdir()
        saved = {"out": "run", "lr": 0.002, "data": {"folder": "data", "seed": 0}}
        now = {"out": str(tmp_path / "run"), "lr": 0.002, "data": {"folder": str(tmp_path / "data"), "seed": 0}}
        assert changed_settings(saved, now) == []
    finally:
        os.chdir(here)


def test_a_changed_setting_names_the_values_not_whole_dicts():
    saved = {"lr": 0.002, "data": {"folder": "/a", "seed": 0, "n_images": 240}}
    now = {"lr": 0.001, "data": {"folder": "/b", "seed": 0, "n_images": 240}}
    text = describe_changes(saved, now, changed_settings(saved, now))
    assert "lr: 0.002 then, 0.001 now" in text
    assert "data.folder: '/a' then, '/b' now" in text
    assert "n_images" not in text and "{" not in text


def test_resumed_config_takes_more_epochs_over_the_recorded_settings(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        api.train(tiny("care2d", tmp_path, epochs=2), StopAtEpoch(2))
    config = resumed_config(tmp_path, epochs=3)
    assert (config.trainer, config.epochs, config.resume) == ("care2d", 3, True)
    assert resumed_config(tmp_path / "empty") is None
