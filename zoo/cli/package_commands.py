"""zoo export, zoo package: a checkpoint to proven weight files, and to a validated package in the user's words."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo.cli import common, show
from zoo.cli.app import app
from zoo.cli.common import EXIT_FINDINGS, EXIT_PASSED, Overwrite, Target, Verbose, run_api, setup_logging

Checkpoint = Annotated[Path, typer.Argument(help="checkpoint.pt written by `zoo train` (or `zoo demo`).")]


@app.command()
def export(
    checkpoint: Checkpoint,
    out: Annotated[Path, typer.Option(help="Folder for the weight files.")] = Path("exported"),
    formats: Annotated[
        Optional[str],
        typer.Option(help="Comma-separated weight formats, e.g. torchscript,onnx. [default: every format]"),
    ] = None,
    overwrite: Overwrite = False,
    verbose: Verbose = False,
) -> None:
    """Export a checkpoint to weight formats, each proven against the trained model."""
    setup_logging(verbose)
    from zoo import api

    result = run_api(lambda: api.export(checkpoint, out, formats, common.progress(), overwrite=overwrite))
    show.print_exported(result)
    raise typer.Exit(EXIT_FINDINGS if result.failures else EXIT_PASSED)


@app.command()
def package(
    checkpoint: Checkpoint,
    out: Annotated[Path, typer.Option(help="Folder for the package zip.")] = Path("packages"),
    formats: Annotated[
        Optional[str], typer.Option(help="Comma-separated weight formats. [default: every format]")
    ] = None,
    name: Annotated[Optional[str], typer.Option(help="Model name. [default: the trainer's]")] = None,
    description: Annotated[
        Optional[str], typer.Option(help="One or two sentences: what the model does, on which images.")
    ] = None,
    tags: Annotated[Optional[str], typer.Option(help="Comma-separated tags, e.g. nuclei,fluorescence,2d.")] = None,
    author: Annotated[
        Optional[list[str]], typer.Option(help="Author name; repeat the option for several authors.")
    ] = None,
    license_id: Annotated[
        Optional[str], typer.Option("--license", help="SPDX licence id, e.g. CC-BY-4.0 or MIT (checked first).")
    ] = None,
    cite: Annotated[
        Optional[list[str]], typer.Option(help="A DOI or URL to cite; repeat the option for several.")
    ] = None,
    documentation: Annotated[
        Optional[Path], typer.Option(help="Markdown file describing the model, put into the package's README.")
    ] = None,
    metadata: Annotated[
        Optional[Path],
        typer.Option(help="YAML file with any of name, description, tags, authors, license, cite, documentation."),
    ] = None,
    target: Target = "bioimageio",
    overwrite: Overwrite = False,
    verbose: Verbose = False,
) -> None:
    """Export, describe and zip a checkpoint as a validated bioimage.io package for Fiji and Python."""
    setup_logging(verbose)
    from zoo import api

    words = {
        "name": name,
        "description": description,
        "tags": [t.strip() for t in tags.split(",") if t.strip()] if tags else None,
        "authors": author or None,
        "license": license_id,
        "cite": cite or None,
        "documentation": documentation,
    }
    settings = run_api(lambda: api.package_settings(metadata, target=target, **words))
    result = run_api(
        lambda: api.package(checkpoint, out, formats, settings, common.progress(), overwrite=overwrite),
        interrupted=f"nothing was written to {out}",
    )
    show.print_exported(result.exported)
    for warning in getattr(result, "warnings", None) or []:
        common.console.print(f"[yellow]warning[/yellow]: {warning}", highlight=False)
    show.print_report(result.report, target, verbose=verbose)
    common.console.print(f"package: {result.zip_path}")
