"""What every report format shares: the verdict's counts, findings grouped by stage, the report's name and
the rows of the performance table."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from zoo.validators.registry import Finding
from zoo.validators.report import ValidationReport
from zoo.validators.report import counts_text as _counts_text


def counts(report: ValidationReport, target: str = "bioimageio") -> dict[str, int]:
    """The verdict's finding counts (report.count_findings): the same in every output."""
    return report.verdict(target).counts


def by_stage(findings: Iterable[Finding]) -> list[tuple[str, list[Finding]]]:
    """Findings grouped by their rule's stage, in the order the validator runs the stages."""
    from zoo.validators.registry import STAGES

    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.rule.stage, []).append(finding)
    order = {stage: i for i, stage in enumerate(STAGES)}
    return sorted(groups.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def counts_text(report: ValidationReport, target: str = "bioimageio") -> str:
    return _counts_text(counts(report, target))


def display_name(report: ValidationReport) -> str:
    return report.name or Path(report.source).name


PERFORMANCE_COLUMNS = (
    ("weights", "weight_format", "{}"),
    ("device", "device", "{}"),
    ("input", "input_shape", "{}"),
    ("load s", "load_s", "{:.2f}"),
    ("first inference s", "first_inference_s", "{:.3f}"),
    ("inference s", "inference_s", "{:.3f}"),
    ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
    ("+MB during inference", "inference_increase_mb", "{:.0f}"),
    ("GPU peak MB", "gpu_peak_mb", "{:.0f}"),
)


def performance_rows(report: ValidationReport) -> tuple[list[str], list[list[str]], str]:
    """(headers, rows, how memory was measured) of the performance table; no rows when nothing was measured."""
    entries = report.performance
    columns = [c for c in PERFORMANCE_COLUMNS if c[1] != "gpu_peak_mb" or any(e.get("gpu_peak_mb") for e in entries)]
    rows = [
        [fmt.format(entry[key]) if entry.get(key) is not None else "—" for _, key, fmt in columns] for entry in entries
    ]
    method = next((e.get("memory_method", "") for e in entries), "")
    return [header for header, _, _ in columns], rows, method
