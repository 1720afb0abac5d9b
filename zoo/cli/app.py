"""The typer application every command module registers on, with `--version` and shell completion."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help and errors: nothing is cut or boxed when the output is a file or a pipe
    context_settings={"help_option_names": ["--help", "-h"]},
    help="Train, export, package, validate and run microscopy models for bioimage.io and Fiji.\n\n"
    "Exit codes: 0 passed, 1 findings (a validation failed), 2 usage or input error, 3 not verified (nothing "
    "failed, but nothing could be verified, e.g. the only weights need --trust), 130 interrupted.",
)


def _version(value: bool) -> None:
    if value:
        from zoo.version import __version__

        typer.echo(f"zoo {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print zoo's version and exit."),
    ] = None,
) -> None:
    """Train, export, package, validate and run microscopy models for bioimage.io and Fiji."""
