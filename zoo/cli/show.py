"""How results look in the terminal: concise by default (the verdict, counts, what failed or warns), every row
with --verbose. Tables are never cut when the output is a file or a pipe (zoo.cli.common.WIDE)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from zoo.cli import common
from zoo.cli.common import plural

STATUS_STYLE = {"passed": "green", "failed": "red", "warning": "yellow", "skipped": "dim", "not verified": "yellow"}
DEEPIMAGEJ_STYLE = {"runs": "green", "runs with risks": "yellow", "cannot judge": "yellow"}


def headline(metrics: dict[str, float]) -> str:
    """The test-split metrics a trainer reports first (per-class values are in the model card)."""
    shown = [(k, v) for k, v in metrics.items() if k.startswith("test_")][:3]
    return ", ".join(f"{k.removeprefix('test_').replace('_', ' ')} [bold]{v:.3f}[/bold]" for k, v in shown)


def print_training(result, trainer: str, quick: bool) -> None:
    common.console.print(
        f"trained [bold]{trainer}[/bold] on {result.device} in {result.duration_s:.0f} s "
        f"({plural(result.epochs_run, 'epoch')}): {headline(result.metrics) or 'no test metrics'}"
    )
    from zoo.model_cards import card_for, diagnose

    diagnosis = diagnose(result.history or [])
    common.console.print(f"training curves: [bold]{diagnosis.verdict}[/bold]. {escape(diagnosis.explanation)}")
    for name, floor in card_for(trainer).quality_floor.items():
        value = result.metrics.get(name)
        if value is not None and value < floor:
            common.console.print(
                f"[yellow]poor quality[/yellow]: {name.removeprefix('test_').replace('_', ' ')} {value:.3f} is below "
                f"the floor {floor:g} of {trainer}: the model has not learned its task; do not share it"
            )
    for warning in result.extra.get("data_warnings", []):
        common.console.print(f"[yellow]warning[/yellow]: {escape(str(warning))}", highlight=False)
    if quick:
        common.console.print("[yellow]--quick[/yellow]: a smoke test of the chain; the model is not meant to be used")


def print_probe(probe) -> None:
    """What running the model showed (zoo.packaging.probe.Probe.rows)."""
    table = Table(title=f"probed by running the model ({probe.calls} runs, {probe.seconds:.1f} s)")
    table.add_column("property")
    table.add_column("found")
    for name, value in probe.rows():
        table.add_row(escape(name), escape(value))
    common.console.print(table)


def print_exported(result) -> None:
    table = Table("weights", "file", "max |Δ| to source", "max rel", "over 1e-4", title="exported")
    for weights in result.weights:
        a = weights.agreement
        table.add_row(
            weights.weight_format, weights.path.name, f"{a.max_abs:.2e}", f"{a.max_rel:.2e}", str(a.mismatched)
        )
    common.console.print(table)
    for weight_format, reason in result.failures.items():
        common.console.print(f"[yellow]not shipped[/yellow] {weight_format}: {escape(reason)}", highlight=False)


def print_report(report, target: str = "bioimageio", verbose: bool = False) -> None:
    """The findings that failed or warn (every finding with `verbose`), then the verdict line, why, and the
    recorded quality."""
    shown = report.findings if verbose else [f for f in report.findings if f.status in ("failed", "warning")]
    if shown:
        title = f"validation of {Path(report.source).name}" + ("" if verbose else ": failures and warnings")
        table = Table("rule", "status", "where", "message", title=title)
        for finding in shown:
            style = STATUS_STYLE[finding.status]
            table.add_row(
                finding.id, f"[{style}]{finding.status}[/{style}]", escape(finding.location), escape(finding.message)
            )
        common.console.print(table)
    from zoo.validators.report import counts_text

    verdict = report.verdict(target)
    style = STATUS_STYLE[verdict.status]
    common.console.print(
        f"verdict: [bold {style}]{verdict.status}[/bold {style}] "
        f"({counts_text(verdict.counts)}; {report.duration_s:.1f} s)" + ("" if verbose else "; --verbose: every row")
    )
    if verdict.reason:
        common.console.print(escape(verdict.reason), highlight=False)
    recorded = [f for f in report.by_id("QUA001") if f.status == "passed"]
    if recorded:
        quality = recorded[0].message.removeprefix("recorded: ")
        common.console.print(f"quality as recorded by the package: {escape(quality)}")
    if verdict.deepimagej is not None:
        style = DEEPIMAGEJ_STYLE.get(verdict.deepimagej, "red")
        common.console.print(f"deepImageJ (Fiji): [bold {style}]{verdict.deepimagej}[/bold {style}]")
    sandbox = report.sandbox or {}
    if sandbox and not (sandbox.get("files") and sandbox.get("network")):  # said, never assumed
        common.console.print(f"sandbox: [yellow]{escape(sandbox.get('summary', ''))}[/yellow]", highlight=False)


def print_prediction(result) -> None:
    table = Table(
        "input", "outputs", "tiles", "seconds", title=f"{result.model}: {result.weight_format} on {result.device}"
    )
    for item in result.items:
        names = ", ".join(p.name for p in item.inputs.values())
        if item.error:
            table.add_row(
                escape(names), f"[red]failed[/red]: {escape(item.error)}", str(item.tiles), f"{item.duration_s:.1f}"
            )
            continue
        tiles = f"{item.tiles}" + (f" (+{item.resumed_tiles} resumed)" if item.resumed_tiles else "")
        table.add_row(
            escape(names), escape(", ".join(p.name for p in item.outputs.values())), tiles, f"{item.duration_s:.1f}"
        )
    common.console.print(table)
    for message in result.warnings:
        common.console.print(f"[yellow]warning[/yellow]: {escape(message)}", highlight=False)
    rate = result.tiles / result.duration_s if result.duration_s else 0.0
    nan = [item for item in result.items if any(item.nan_share.values())]
    nan_note = f", {len(nan)} with NaN in an output ({len(result.nan_items)} NaN throughout)" if nan else ""
    common.console.print(
        f"{len(result.items) - len(result.failed)} of {plural(len(result.items), 'image')} predicted{nan_note}, "
        f"{plural(result.tiles, 'tile')} in {result.duration_s:.1f} s ({rate:.1f} tiles/s)"
    )


def print_collection(result, source: Path) -> None:
    entries = result.entries
    if entries:
        table = Table("package", "status", "deepImageJ (Fiji)", "failed rules", "s", title=f"collection {source}")
        for entry in entries:
            style = STATUS_STYLE.get(entry.status, "red")
            problems = ", ".join(entry.failed_rules) or entry.reason
            seconds = f"{entry.duration_s:.1f}" + (" (cached)" if entry.cache_hit else "")
            table.add_row(
                escape(entry.path),
                f"[{style}]{entry.status}[/{style}]",
                entry.deepimagej or "not checked",
                escape(problems),
                seconds,
            )
        common.console.print(table)
    style = STATUS_STYLE[result.status]
    common.console.print(
        f"verdict: [bold {style}]{result.status}[/bold {style}] ({result.counts_text()}) in {result.duration_s:.1f} s"
    )
    common.console.print(
        f"dashboard: {result.index_path}\nsummary:   {result.summary_path}\njunit:     {result.junit_path}"
    )
