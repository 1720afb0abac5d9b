"""Report writers: a ValidationReport as Markdown, as one self-contained HTML page, and as JUnit XML.

Every writer renders to a string first and then replaces the target file atomically, so a reader (a CI
step, a browser) never sees half a report. The HTML holds small images of input, expected and produced
tensors for failed reproductions (REP001) when the produced outputs were kept (`report.artifacts`); the
test tensors are read from the package itself, nothing is run again.

Every writer prints `report.verdict(target)`: the same status word, reason and finding counts as the
terminal, the JSON report and the exit code."""

from __future__ import annotations

import base64
import html
import logging
import math
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from zoo.validators.registry import Finding
from zoo.validators.report import (
    COUNT_LABELS,
    ValidationReport,
    count_findings,
    fails_for,
    write_text_atomic,
)
from zoo.validators.report import counts_text as _counts_text

logger = logging.getLogger(__name__)

STATUS_ICONS = {"passed": "✅", "failed": "❌", "warning": "⚠️", "skipped": "⏭️"}
PREVIEW_PIXELS = 128  # longest side of an image in the HTML report
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_<>\[\]|])")
_REPRODUCTION_LOCATION = re.compile(r"^weights\.(?P<weights>[^/]+)/outputs\[(?P<output>.+)\]$")


def write_markdown(report: ValidationReport, path: Path, target: str = "bioimageio") -> Path:
    return write_text_atomic(path, render_markdown(report, target=target))


def write_html(report: ValidationReport, path: Path, target: str = "bioimageio") -> Path:
    return write_text_atomic(path, render_html(report, target=target))


def write_junit(report: ValidationReport, path: Path, target: str = "bioimageio") -> Path:
    return write_text_atomic(path, render_junit([junit_testsuite(report, target=target)]))


# ---------------------------------------------------------------------------------------------------- grouping


def counts(report: ValidationReport, target: str = "bioimageio") -> dict[str, int]:
    """The verdict's finding counts (report.count_findings): the same in every output."""
    return report.verdict(target).counts


def by_stage(findings: Iterable[Finding]) -> list[tuple[str, list[Finding]]]:
    """Findings grouped by their rule's stage, in the order the validator runs the stages."""
    from zoo.validators import STAGES

    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.rule.stage, []).append(finding)
    order = {stage: i for i, stage in enumerate(STAGES)}
    return sorted(groups.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def counts_text(report: ValidationReport, target: str = "bioimageio") -> str:
    return _counts_text(counts(report, target))


def display_name(report: ValidationReport) -> str:
    return report.name or Path(report.source).name


# ---------------------------------------------------------------------------------------------------- Markdown


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
    from zoo import __version__

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


# ---------------------------------------------------------------------------------------------------- JUnit XML


def _xml(text: object) -> str:
    """Text XML 1.0 can hold: control characters (from garbage files) become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", str(text))


def junit_testsuite(report: ValidationReport, name: str | None = None, target: str = "bioimageio") -> ET.Element:
    """One testcase per finding: failures for failed, skipped for skipped, warnings pass with system-out."""
    from zoo import __version__

    verdict = report.verdict(target)
    suite = ET.Element(
        "testsuite",
        {
            "name": _xml(name or display_name(report)),
            "tests": str(len(report.findings)),
            "failures": str(verdict.counts["failed"]),
            "errors": "0",
            "skipped": str(verdict.counts["skipped"]),
            "time": f"{report.duration_s:.3f}",
        },
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("source", report.source),
        ("verdict", verdict.status),
        ("exit_code", str(verdict.exit_code)),
        ("reason", verdict.reason),
        ("deepimagej", verdict.deepimagej or "not checked"),
        ("target", target),
        ("format_version", report.format_version or ""),
        ("zoo_version", __version__),
    ):
        ET.SubElement(properties, "property", {"name": key, "value": _xml(value)})
    for finding in report.findings:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _xml(finding.rule.stage),
                "name": _xml(f"{finding.id} {finding.location}".strip()),
                "time": "0",
            },
        )
        if fails_for(finding, target):
            failure = ET.SubElement(
                case,
                "failure",
                {
                    "message": _xml(finding.message.splitlines()[0] if finding.message else finding.rule.title),
                    "type": finding.id,
                },
            )
            failure.text = _xml(f"{finding.message}\nfix: {finding.rule.fix}")
        elif finding.status == "skipped":
            ET.SubElement(case, "skipped", {"message": _xml(finding.message)})
        elif finding.status in ("warning", "failed"):  # a warning, or a deepImageJ finding the target ignores
            out = ET.SubElement(case, "system-out")
            out.text = _xml(
                f"{finding.status} {finding.id} ({finding.rule.target}): {finding.message}\nfix: {finding.rule.fix}"
            )
    return suite


def error_testsuite(name: str, source: str, message: str) -> ET.Element:
    """The testsuite of a package that could not be opened at all: one failing testcase."""
    suite = ET.Element(
        "testsuite", {"name": _xml(name), "tests": "1", "failures": "1", "errors": "0", "skipped": "0", "time": "0.000"}
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "source", "value": _xml(source)})
    case = ET.SubElement(suite, "testcase", {"classname": "source", "name": "open", "time": "0"})
    failure = ET.SubElement(
        case, "failure", {"message": _xml(message.splitlines()[0] if message else "unreadable"), "type": "SourceError"}
    )
    failure.text = _xml(message)
    return suite


def render_junit(suites: list[ET.Element], name: str = "zoo validate") -> str:
    totals = {key: sum(int(s.get(key, "0")) for s in suites) for key in ("tests", "failures", "errors")}
    time_s = sum(float(s.get("time", "0")) for s in suites)
    root = ET.Element("testsuites", {"name": name, **{k: str(v) for k, v in totals.items()}, "time": f"{time_s:.3f}"})
    root.extend(suites)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------------------- HTML

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
    from zoo import __version__

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
    figures = _reproduction_figures(report)
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


# ---------------------------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class _TestTensorFile:
    source: str  # path inside the package
    axes: list[str] | None


def _reproduction_figures(report: ValidationReport) -> dict[int, list[tuple[str, str, str]]]:
    """id(finding) -> [(caption, data URI, value range)] for each failed REP001 finding with details."""
    wanted = [
        f
        for f in report.findings
        if f.id == "REP001" and f.status == "failed" and f.details and _REPRODUCTION_LOCATION.match(f.location)
    ]
    if not wanted:
        return {}
    try:
        with _PackageFiles(Path(report.source)) as package:
            inputs, outputs = _test_tensor_files(package.rdf())
            first_input = next(iter(inputs.items()), None)
            input_image = None
            if first_input is not None:
                input_id, tensor = first_input
                plane = _plane(package.load_npy(tensor.source), tensor.axes)
                input_image = (f"input {input_id}", *_image(plane, *_value_range([plane])))
            figures = {}
            for finding in wanted:
                match = _REPRODUCTION_LOCATION.match(finding.location)
                weights, output_id = match["weights"], match["output"]
                tensor = outputs.get(output_id)
                if tensor is None:
                    continue
                expected = _plane(package.load_npy(tensor.source), tensor.axes)
                produced = _load_produced(report.artifacts, weights, output_id)
                produced = _plane(produced, tensor.axes) if produced is not None else None
                images = [input_image] if input_image else []
                planes = [expected] + ([produced] if produced is not None else [])
                low, high = _value_range(planes)
                images.append((f"expected {output_id}", *_image(expected, low, high)))
                if produced is not None and produced.shape == expected.shape:
                    images.append((f"produced by {weights}", *_image(produced, low, high)))
                    difference = np.abs(produced.astype(np.float64) - expected.astype(np.float64))
                    images.append(("|produced − expected|", *_image(difference, 0.0, _value_range([difference])[1])))
                figures[id(finding)] = images
            return figures
    except Exception:  # images are a courtesy: the report is complete without them
        logger.debug("no reproduction images for %s", report.source, exc_info=True)
        return {}


def _load_produced(artifacts: str | None, weights: str, output_id: str) -> np.ndarray | None:
    if not artifacts:
        return None
    path = Path(artifacts) / f"{weights}_{output_id}.npy"
    return np.load(path, allow_pickle=False) if path.is_file() else None


def _test_tensor_files(rdf: dict) -> tuple[dict[str, _TestTensorFile], dict[str, _TestTensorFile]]:
    """Test tensors per tensor id from the raw rdf, format 0.5 (`test_tensor`) or 0.4 (`test_inputs`)."""
    found: list[dict[str, _TestTensorFile]] = []
    for kind in ("inputs", "outputs"):
        tensors: dict[str, _TestTensorFile] = {}
        old_style = rdf.get(f"test_{kind}") or []
        for i, tensor in enumerate(rdf.get(kind) or []):
            if not isinstance(tensor, dict):
                continue
            test_tensor = tensor.get("test_tensor")
            source = test_tensor.get("source") if isinstance(test_tensor, dict) else None
            if source is None and i < len(old_style):
                source = old_style[i]
            if isinstance(source, str):
                tensor_id = str(tensor.get("id") or tensor.get("name") or i)
                tensors[tensor_id] = _TestTensorFile(source, _axis_names(tensor.get("axes")))
        found.append(tensors)
    return found[0], found[1]


def _axis_names(axes) -> list[str] | None:
    if isinstance(axes, str):  # format 0.4: "bcyx"
        return list(axes)
    if isinstance(axes, list):
        names = []
        for axis in axes:
            if not isinstance(axis, dict):
                return None
            names.append(
                str(
                    axis.get("id")
                    or {"batch": "b", "channel": "c", "index": "i", "time": "t"}.get(axis.get("type"), "?")
                )
            )
        return names
    return None


def _plane(array: np.ndarray, axes: list[str] | None) -> np.ndarray:
    """A 2D (y, x) plane to show: first batch/channel/index, middle z."""
    array = np.asarray(array)
    if axes is not None and len(axes) == array.ndim and "y" in axes and "x" in axes:
        index = tuple(
            slice(None) if name in ("y", "x") else (array.shape[i] // 2 if name == "z" else 0)
            for i, name in enumerate(axes)
        )
        plane = array[index]
        return plane.T if axes.index("x") < axes.index("y") else plane
    plane = np.squeeze(array)
    while plane.ndim > 2:
        plane = plane[0]
    return np.atleast_2d(plane)


def _value_range(planes: list[np.ndarray]) -> tuple[float, float]:
    finite = [p[np.isfinite(p)] for p in (np.asarray(p, dtype=np.float64) for p in planes)]
    finite = [f for f in finite if f.size]
    if not finite:
        return 0.0, 1.0
    return float(min(f.min() for f in finite)), float(max(f.max() for f in finite))


def _image(plane: np.ndarray, low: float, high: float) -> tuple[str, str]:
    """(data URI of a greyscale PNG scaled from [low, high], "low … high")."""
    values = np.asarray(plane, dtype=np.float64)
    step = max(1, math.ceil(max(values.shape) / PREVIEW_PIXELS))
    values = np.nan_to_num(values[::step, ::step], nan=low, posinf=high, neginf=low)
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    grey = np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)
    uri = "data:image/png;base64," + base64.b64encode(encode_png(grey)).decode("ascii")
    return uri, f"{low:.4g} … {high:.4g}"


def encode_png(grey: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG, written by imageio (a dependency already)."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", np.ascontiguousarray(grey, dtype=np.uint8), extension=".png")


class _PackageFiles:
    """Reads files of a package (folder, rdf yaml or zip) without extracting it; never leaves it."""

    def __init__(self, source: Path) -> None:
        from zoo.bioimage.source import RDF_NAMES, find_rdf

        self._zip: zipfile.ZipFile | None = None
        if source.is_dir():
            self._root, self._rdf = source, find_rdf(source).name
        elif zipfile.is_zipfile(source):
            self._zip = zipfile.ZipFile(source)
            names = set(self._zip.namelist())
            candidates = [n for n in RDF_NAMES if n in names] or sorted(
                n for n in names if "/" not in n and n.endswith(".bioimageio.yaml")
            )
            if not candidates:
                raise FileNotFoundError(f"{source} holds no rdf")
            self._root, self._rdf = None, candidates[0]
        else:
            self._root, self._rdf = source.parent, source.name

    def read(self, name: str) -> bytes:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or "://" in name:
            raise ValueError(f"{name!r} is not a file inside the package")
        if self._zip is not None:
            return self._zip.read(relative.as_posix())
        return (self._root / relative).read_bytes()

    def rdf(self) -> dict:
        from ruyaml import YAML

        rdf = YAML(typ="safe").load(self.read(self._rdf).decode("utf-8"))
        if not isinstance(rdf, dict):
            raise ValueError("the rdf is not a mapping")
        return rdf

    def load_npy(self, name: str) -> np.ndarray:
        import io

        return np.load(io.BytesIO(self.read(name)), allow_pickle=False)

    def __enter__(self) -> _PackageFiles:
        return self

    def __exit__(self, *exc) -> None:
        if self._zip is not None:
            self._zip.close()


__all__ = [
    "error_testsuite",
    "junit_testsuite",
    "render_html",
    "render_junit",
    "render_markdown",
    "write_html",
    "write_junit",
    "write_markdown",
    "write_text_atomic",
]
