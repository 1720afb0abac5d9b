"""zoo convert: add weight formats to a package someone already made, each proven against the weights it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from zoo.cli import common, show
from zoo.cli.app import app
from zoo.cli.common import Overwrite, Trust, Verbose, run_api, setup_logging

RESULT_STYLE = {"added": "green", "re-written": "green", "kept": "dim", "not made": "yellow"}


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="Package folder, rdf.yaml or .zip (never modified).")],
    formats: Annotated[
        Optional[str],
        typer.Option(
            help="Comma-separated weight formats to add, e.g. torchscript,onnx,tensorflow. "
            "[default: torchscript,onnx,tensorflow]"
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the converted zip.")] = Path("converted"),
    trust: Trust = False,
    overwrite: Overwrite = False,
    verbose: Verbose = False,
) -> None:
    """Add weight formats to a bioimage.io package (e.g. TorchScript and ONNX for Fiji to a package with only a
    state dict), each made from the package's best loadable weights and proven against them; the result is
    validated before it is written."""
    setup_logging(verbose)
    from zoo import api

    result = run_api(
        lambda: api.convert(source, out, formats, trust=trust, overwrite=overwrite, progress=common.progress()),
        interrupted=f"nothing was written to {out}",
    )
    print_conversion(result)
    if result.report is not None:
        show.print_report(result.report, verbose=verbose)
    if result.not_written:
        common.console.print(f"[red]not written[/red]: {escape(result.not_written)}", highlight=False)
    else:
        common.console.print(f"package: {result.zip_path}")
    raise typer.Exit(result.exit_code)


def print_conversion(result) -> None:
    """One row per requested format: what it was made from, its largest difference to that, and what became of it."""
    common.console.print(
        f"made from: [bold]{result.parent.weight_format}[/bold] ({escape(result.parent.why)})", highlight=False
    )
    table = Table("format", "made from", "max |Δ|", "result", title="weights")
    for outcome in result.outcomes:
        style = RESULT_STYLE[outcome.status]
        shipped = {"added": "shipped", "re-written": "shipped, re-written"}.get(outcome.status, outcome.status)
        note = "" if outcome.status == "added" else f": {outcome.why}"
        difference = f"{outcome.max_abs:.2e}" if outcome.max_abs is not None else "-"
        table.add_row(
            outcome.weight_format,
            outcome.made_from or "-",
            difference,
            f"[{style}]{shipped}[/{style}]{escape(note)}",
        )
    common.console.print(table)
