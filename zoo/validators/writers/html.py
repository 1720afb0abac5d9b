"""A ValidationReport as one self-contained HTML page (inline CSS, images as data URIs): the verdicts, then a
table per stage; images of input, expected and produced tensors for failed reproductions."""

from __future__ import annotations

import html
from pathlib import Path

from zoo.validators.report import COUNT_LABELS, ValidationReport, count_findings, write_text_atomic
from zoo.validators.report import counts_text as _counts_text
from zoo.validators.writers.common import by_stage, display_name, performance_rows
from zoo.validators.writers.figures import reproduction_figures


def write_html(report: ValidationReport, path: Path, target: str = "bioimageio") -> Path:
    return write_text_atomic(path, render_html(report, target=target))


CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--skip:#6e7781;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;
--head:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0 auto;
max-width:1280px;padding:24px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:16px;margin:0;display:inline}
code,.mono{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.muted{color:var(--muted)}.meta{margin:6px 0 14px}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;color:#fff;
background:var(--skip);white-space:nowrap}
.big{font-size:14px;padding:3px 12px;margin-right:8px}
.ok{background:var(--ok)}.bad{background:var(--bad)}.warn{background:var(--warn)}.skip{background:var(--skip)}
table{border-collapse:collapse;width:100%;margin-top:8px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
tr.failed td{background:#ffebe9}tr.warning td{background:#fff8c5}
details{margin:14px 0;border:1px solid var(--line);border-radius:6px;padding:8px 12px}
summary{cursor:pointer}
.fix{color:var(--muted);margin-top:2px}
figure{display:inline-block;margin:6px 14px 6px 0;text-align:center;vertical-align:top}
figure img{width:128px;height:auto;image-rendering:pixelated;border:1px solid var(--line);display:block}
figcaption{font-size:12px;max-width:160px}
"""

_VERDICT_CLASS = {
    "passed": "ok",
    "runs": "ok",
    "failed": "bad",
    "will not run": "bad",
    "runs but gives different numbers": "bad",
    "runs with risks": "warn",
    "not verified": "warn",
    "cannot judge": "warn",
    "warning": "warn",
    "skipped": "skip",
}


def html_text(text: object) -> str:
    return html.escape(str(text), quote=True)


def badge(text: str, big: bool = False) -> str:
    classes = ["badge", _VERDICT_CLASS.get(text, "skip")] + (["big"] if big else [])
    return f'<span class="{" ".join(classes)}">{html_text(text)}</span>'


def html_page(title: str, body: str, script: str = "", css: str = "") -> str:
    """A complete page with inline CSS (and script): no external asset."""
    script_tag = f"<script>{script}</script>" if script else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html_text(title)}</title>'
        f"<style>{CSS}{css}</style></head>\n<body>\n{body}\n{script_tag}</body></html>\n"
    )


def render_html(report: ValidationReport, target: str = "bioimageio") -> str:
    """The report as one page: verdicts, then a table per stage; images for failed reproductions."""
    from zoo.version import __version__

    verdict = report.verdict(target)
    dij = verdict.deepimagej
    meta = [f"zoo {__version__}", f"target {target}", f"{report.duration_s:.1f} s", _counts_text(verdict.counts)]
    if report.format_version:
        meta.insert(1, f"format {report.format_version}")
    if report.weight_formats:
        meta.insert(2, "weights " + ", ".join(report.weight_formats))
    parts = [
        f"<header><h1>{html_text(display_name(report))}</h1>",
        f'<div class="muted mono">{html_text(report.source)}</div>',
        f"<p>bioimage.io {badge(verdict.status, big=True)} deepImageJ (Fiji) "
        f"{badge(dij or 'not checked', big=True)}</p>",
        f'<p class="reason">{html_text(verdict.reason)}</p>' if verdict.reason else "",
        f'<div class="meta muted">{html_text(" · ".join(meta))}</div></header><main>',
    ]
    figures = reproduction_figures(report)
    for stage, findings in by_stage(report.findings):
        problems = sum(f.status in ("failed", "warning") for f in findings)
        stage_counts = ", ".join(f"{n} {COUNT_LABELS[key]}" for key, n in count_findings(findings, target).items() if n)
        parts.append(
            f'<details id="stage-{html_text(stage)}"{" open" if problems else ""}><summary>'
            f'<h2>{html_text(stage)}</h2> <span class="muted">{html_text(stage_counts)}</span></summary>'
        )
        parts.append("<table><thead><tr><th>status</th><th>rule</th><th>where</th><th>finding</th></tr></thead><tbody>")
        for finding in findings:
            fix = (
                f'<div class="fix">Fix: {html_text(finding.rule.fix)}</div>'
                if finding.status in ("failed", "warning")
                else ""
            )
            parts.append(
                f'<tr class="{html_text(finding.status)}"><td>{badge(finding.status)}</td>'
                f'<td><code title="{html_text(finding.rule.title)}">{html_text(finding.id)}</code></td>'
                f'<td class="mono">{html_text(finding.location)}</td>'
                f"<td>{html_text(finding.message)}{fix}</td></tr>"
            )
            images = figures.get(id(finding))
            if images:
                figures_html = "".join(
                    f'<figure><img alt="{html_text(caption)}" src="{uri}"><figcaption>{html_text(caption)}<br>'
                    f'<span class="muted">{html_text(note)}</span></figcaption></figure>'
                    for caption, uri, note in images
                )
                parts.append(f'<tr class="figures"><td></td><td colspan="3">{figures_html}</td></tr>')
        parts.append("</tbody></table>" + (_performance_html(report) if stage == "performance" else "") + "</details>")
    parts.append("</main>")
    return html_page(f"zoo validation: {display_name(report)}", "\n".join(parts))


def _performance_html(report: ValidationReport) -> str:
    headers, rows, method = performance_rows(report)
    if not rows:
        return ""
    head = "".join(f"<th>{html_text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html_text(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        f'<table id="performance"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f'<div class="fix">One inference per weight format on the test input. Memory: {html_text(method)}.</div>'
    )


def render_error_html(name: str, source: str, message: str) -> str:
    """The page of a package that could not be opened."""
    body = (
        f'<header><h1>{html_text(name)}</h1><div class="muted mono">{html_text(source)}</div>'
        f"<p>bioimage.io {badge('failed', big=True)}</p></header>"
        f"<main><p>The package could not be opened:</p><pre>{html_text(message)}</pre></main>"
    )
    return html_page(f"zoo validation: {name}", body)
