"""`zoo finetune` on the command line: the defaults its help names are FinetuneConfig's, bad values and inputs that
cannot be used are one line and exit 2, before any work."""

from __future__ import annotations

from typer.testing import CliRunner

from zoo.cli import app
from zoo.finetune import FinetuneConfig

runner = CliRunner()


def test_help_names_the_defaults_of_the_settings():
    text = " ".join(runner.invoke(app, ["finetune", "--help"], terminal_width=200).output.split())
    defaults = FinetuneConfig()
    for option, value in (("epochs", defaults.epochs), ("lr", defaults.lr), ("batch-size", defaults.batch_size)):
        assert f"[default: {value}]" in text, option
    assert f"[default: {defaults.patch_size}]" in text


def test_unusable_input_is_one_line_and_exit_2(one_format, target_folder, tmp_path):
    out = tmp_path / "out"
    state_dict_only = one_format("pytorch_state_dict")
    result = runner.invoke(app, ["finetune", str(state_dict_only), "--data", str(target_folder), "--out", str(out)])
    assert result.exit_code == 2 and "--trust" in result.output and "Traceback" not in result.output
    assert not out.exists()
    bad = runner.invoke(app, ["finetune", str(state_dict_only), "--data", str(target_folder), "--freeze", "decoder"])
    assert bad.exit_code == 2 and "decoder" in bad.output
