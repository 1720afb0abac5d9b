"""zoo validate, zoo validate-collection, zoo rules, zoo fix-deepimagej, zoo info."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from zoo.cli import common, show
from zoo.cli.app import app
from zoo.cli.common import (
    Device,
    MemoryLimit,
    Target,
    Trust,
    Verbose,
    parse_size,
    run_api,
    setup_logging,
)

Source = Annotated[
    Path, typer.Argument(help="Package folder, rdf.yaml or .zip (never modified: no output may point into it).")
]
TimeLimit = Annotated[float, typer.Option(help="Seconds the model runs of one package may take.", min=1)]


@app.command()
def validate(
    source: Source,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON here.")] = None,
    markdown_path: Annotated[
        Optional[Path], typer.Option("--markdown", help="Write the report as Markdown here.")
    ] = None,
    html_path: Annotated[
        Optional[Path], typer.Option("--html", help="Write the report as one self-contained HTML page here.")
    ] = None,
    junit_path: Annotated[
        Optional[Path], typer.Option("--junit", help="Write JUnit XML here (one testcase per check), for CI systems.")
    ] = None,
    trust: Trust = False,
    device: Device = "auto",
    keep_artifacts: Annotated[
        Optional[Path], typer.Option(help="Save produced output tensors in this folder (outside the package).")
    ] = None,
    target: Target = "bioimageio",
    time_limit: TimeLimit = 900,
    memory_limit: MemoryLimit = "8GB",
    verbose: Verbose = False,
) -> None:
    """Validate a bioimage.io model package: format, files, test tensors, reproduction per weight format,
    recorded quality, and whether Fiji's deepImageJ runs it."""
    setup_logging(verbose)
    import tempfile

    from zoo import api

    outputs = {
        "--json": json_path,
        "--markdown": markdown_path,
        "--html": html_path,
        "--junit": junit_path,
        "--keep-artifacts": keep_artifacts,
    }
    run_api(lambda: _refuse_outputs_inside(source, outputs))
    memory_mb = parse_size(memory_limit) / 2**20

    # the HTML shows produced outputs of failed reproductions: keep them for as long as it takes to write it
    with tempfile.TemporaryDirectory(prefix="zoo-artifacts-") as scratch:
        artifacts = keep_artifacts or (Path(scratch) if html_path is not None else None)
        report = run_api(
            lambda: api.validate(
                source,
                trust=trust,
                device=device,
                keep_artifacts=artifacts,
                time_limit_s=time_limit,
                memory_limit_mb=memory_mb,
                progress=common.progress(),
            )
        )
        show.print_report(report, target, verbose=verbose)
        for path, kind in (
            (json_path, "json"),
            (markdown_path, "markdown"),
            (html_path, "html"),
            (junit_path, "junit"),
        ):
            if path is not None:
                run_api(lambda path=path, kind=kind: report.write(path, target=target, kind=kind))
                common.console.print(f"report: {path}")
    raise typer.Exit(report.verdict(target).exit_code)


def _refuse_outputs_inside(source: Path, outputs: dict[str, Path | None]) -> None:
    """Before any work: no output may land in the package under validation, and --keep-artifacts is a folder."""
    from zoo.bioimage.source import refuse_output_inside
    from zoo.errors import InputError

    for option, path in outputs.items():
        if path is not None:
            refuse_output_inside(option, path, source)
    artifacts = outputs.get("--keep-artifacts")
    if artifacts is not None and artifacts.exists() and not artifacts.is_dir():
        raise InputError(f"--keep-artifacts {artifacts} is a file, not a folder: give a new or existing folder")


@app.command("validate-collection")
def validate_collection(
    source: Annotated[
        Path,
        typer.Argument(
            help="Folder searched recursively for packages (folders with an rdf, .zip files), or a text file of "
            "package paths."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for summary.json, summary.md, junit.xml, index.html and reports/; it may lie in SOURCE "
            "(it is not searched) but not inside a package, which is never changed."
        ),
    ],
    workers: Annotated[
        Optional[int],
        typer.Option(min=1, help="Local Dask worker processes to spread the work over. [default: none, in turn]"),
    ] = None,
    scheduler: Annotated[
        Optional[str],
        typer.Option(help="Address of a running Dask scheduler (its workers must see the same paths)."),
    ] = None,
    target: Target = "bioimageio",
    trust: Trust = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Validate every package again, even unchanged ones.")
    ] = False,
    cache_dir: Annotated[
        Optional[Path], typer.Option("--cache", help="Cache folder. [default: OUT/.cache]", show_default=False)
    ] = None,
    device: Device = "auto",
    time_limit: TimeLimit = 900,
    memory_limit: MemoryLimit = "8GB",
    verbose: Verbose = False,
) -> None:
    """Validate every package of a collection, each in isolation, in parallel if asked; write a dashboard."""
    setup_logging(verbose)
    from zoo import api

    memory_mb = parse_size(memory_limit) / 2**20
    result = run_api(
        lambda: api.validate_collection(
            source,
            out,
            workers=workers,
            scheduler=scheduler,
            target=target,
            trust=trust,
            device=device,
            use_cache=not no_cache,
            cache_dir=cache_dir,
            time_limit_s=time_limit,
            memory_limit_mb=memory_mb,
            progress=common.progress(),
        )
    )
    show.print_collection(result, source)
    raise typer.Exit(result.exit_code)


@app.command()
def rules(
    markdown: Annotated[bool, typer.Option(help="Print docs/rules.md (Markdown) instead.")] = False,
    verbose: Verbose = False,
) -> None:
    """List every validation rule: ID, severity and title (--verbose: stage and fix too)."""
    import zoo.validators.checks  # noqa: F401
    from zoo.validators.registry import RULES, rules_markdown

    if markdown:
        import sys

        sys.stdout.write(rules_markdown())
        return
    ordered = sorted(RULES.values(), key=lambda r: r.id)
    if not verbose:
        for rule in ordered:
            common.console.print(f"{rule.id:7} {rule.severity:8} {escape(rule.title)}", highlight=False)
        common.console.print(f"{len(ordered)} rules; --verbose adds each rule's stage and fix")
        return
    table = Table("id", "severity", "stage", "title", "fix")
    for rule in ordered:
        table.add_row(rule.id, rule.severity, rule.stage, escape(rule.title), escape(rule.fix))
    common.console.print(table)


@app.command("fix-deepimagej")
def fix_deepimagej(
    source: Annotated[Path, typer.Argument(help="Package folder, rdf.yaml or .zip (never modified).")],
    out: Annotated[Path, typer.Option(help="Folder for the fixed zip.")] = Path("fixed"),
    device: Device = "auto",
    verbose: Verbose = False,
) -> None:
    """Rewrite a package for Fiji's deepImageJ: fix what can be fixed mechanically, re-validate, list the rest."""
    setup_logging(verbose)
    from zoo import api

    result = run_api(lambda: api.fix_deepimagej(source, out, device=device, progress=common.progress()))
    for fix in result.fixed:
        common.console.print(f"fixed {fix.rule_id or '-':6} {escape(fix.what)}")
    for rule_id, messages in sorted(result.not_fixed.items()):
        for message in messages:
            common.console.print(f"[red]not fixed[/red] {rule_id} {escape(message)}")
    common.console.print(f"deepImageJ: {result.verdict}\npackage: {result.zip_path}")
    raise typer.Exit(result.exit_code)


@app.command()
def info(
    source: Source,
    verbose: Verbose = False,
) -> None:
    """What a package is, without running it: tensors, axes, sizes, halo, weight formats, pre- and
    post-processing, recorded quality and the deepImageJ verdict."""
    setup_logging(verbose)
    from zoo import api

    facts = run_api(lambda: api.info(source))
    common.console.print(facts.text(), highlight=False)
