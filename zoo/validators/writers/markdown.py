"""A ValidationReport as Markdown: the verdict lines, then one line per finding under a heading per stage."""

from __future__ import annotations

import re
from pathlib import Path

from zoo.validators.registry import Finding
from zoo.validators.report import ValidationReport, write_text_atomic
from zoo.validators.report import counts_text as _counts_text
from zoo.validators.writers.common import by_stage, display_name, performance_rows

STATUS_ICONS = {"passed": "✅", "failed": "❌", "warning": "⚠️", "skipped": "⏭️"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_<>\[\]|])")


def write_markdown(report: ValidationReport, path: Path, target: str = "bioimageio") -> Path:
    return write_text_atomic(path, render_markdown(report, target=target))


def md_text(text: object) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def md_code(text: object) -> str:
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def markdown_verdict_lines(report: ValidationReport, target: str = "bioimageio") -> list[str]:
    verdict = report.verdict(target)
    lines = [f"**Verdict: {verdict.status}** ({_counts_text(verdict.counts)}; {report.duration_s:.1f} s)"]
    if verdict.reason:
        lines.append(md_text(verdict.reason))
    if verdict.deepimagej is not None:
        lines.append(f"**deepImageJ (Fiji): {verdict.deepimagej}**")
    return lines


def render_markdown(report: ValidationReport, target: str = "bioimageio", level: int = 1) -> str:
    """One line per finding under a heading per stage, after the verdict lines."""
    from zoo.version import __version__

    heading = "#" * level
    lines = [f"{heading} Validation of {md_text(display_name(report))}", ""]
    lines += [line + "  " for line in markdown_verdict_lines(report, target)]
    meta = [f"source {md_code(report.source)}", f"zoo {__version__}", f"target {target}"]
    if report.format_version:
        meta.append(f"format {report.format_version}")
    if report.weight_formats:
        meta.append("weights " + ", ".join(report.weight_formats))
    lines += ["", " · ".join(meta), ""]
    for stage, findings in by_stage(report.findings):
        lines += [f"{heading}# {md_text(stage)}", ""]
        lines += [_markdown_line(finding) for finding in findings]
        lines.append("")
        if stage == "performance":
            lines += markdown_performance_lines(report)
    return "\n".join(lines)


def markdown_performance_lines(report: ValidationReport) -> list[str]:
    """The performance table (under the performance stage's findings)."""
    headers, rows, method = performance_rows(report)
    if not rows:
        return []
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_text(cell) for cell in row) + " |" for row in rows]
    return lines + ["", f"Memory: {md_text(method)}.", ""]


def _markdown_line(finding: Finding) -> str:
    parts = [f"- {STATUS_ICONS.get(finding.status, '')} **{finding.status}** {md_code(finding.id)}"]
    if finding.location:
        parts.append(md_code(finding.location))
    parts.append(md_text(finding.message))
    line = " ".join(parts)
    if finding.status in ("failed", "warning"):
        line += f" — fix: {md_text(finding.rule.fix)}"
    return line
