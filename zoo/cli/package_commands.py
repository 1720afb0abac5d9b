"""zoo export, zoo package: a checkpoint to proven weight files, and to a validated package in the user's words."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo.cli import common, show
from zoo.cli.app import app
from zoo.cli.common import EXIT_FINDINGS, EXIT_PASSED, Overwrite, Target, Trust, Verbose, run_api, setup_logging

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
    checkpoint: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="checkpoint.pt written by `zoo train`; or a model zoo did not train (needs --sample): a TorchScript, "
            "ONNX or Keras (.keras, .h5) file, or FILE.py:ClassName with --weights.",
        ),
    ],
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
    sample: Annotated[
        Optional[Path],
        typer.Option(
            help="An image the model takes (TIFF, PNG, .npy): the test input and cover of a model zoo did not train."
        ),
    ] = None,
    weights: Annotated[
        Optional[Path], typer.Option(help="State dict of the PyTorch architecture given as FILE.py:ClassName.")
    ] = None,
    model_kwargs: Annotated[
        Optional[str], typer.Option("--kwargs", help="JSON keyword arguments of ClassName, e.g. '{\"depth\": 4}'.")
    ] = None,
    axes: Annotated[
        Optional[str],
        typer.Option(help="The model's input axes without batch, e.g. cyx, yxc, czyx. [default: found by probing]"),
    ] = None,
    preprocessing: Annotated[
        str,
        typer.Option(help="What the model expects done to its input: none, zero_mean_unit_variance or scale_range."),
    ] = "none",
    trust: Trust = False,
    target: Target = "bioimageio",
    overwrite: Overwrite = False,
    verbose: Verbose = False,
) -> None:
    """Export, describe and zip a model as a validated bioimage.io package for Fiji and Python: a zoo checkpoint,
    or a model trained elsewhere (probed by running it on --sample)."""
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
    foreign = {
        "sample": sample,
        "weights": weights,
        "kwargs": run_api(lambda: common.parse_json_object(model_kwargs, "--kwargs")),
        "axes": axes,
        "preprocessing": preprocessing,
        "trust": trust,
    }
    result = run_api(
        lambda: api.package(checkpoint, out, formats, settings, common.progress(), overwrite=overwrite, **foreign),
        interrupted=f"nothing was written to {out}",
    )
    if result.probe is not None:
        show.print_probe(result.probe)
    show.print_exported(result.exported)
    for warning in getattr(result, "warnings", None) or []:
        common.console.print(f"[yellow]warning[/yellow]: {warning}", highlight=False)
    show.print_report(result.report, target, verbose=verbose)
    common.console.print(f"package: {result.zip_path}")
