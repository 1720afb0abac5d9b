"""Report writers: a ValidationReport as Markdown, as one self-contained HTML page, and as JUnit XML.

Every writer renders to a string first and then replaces the target file atomically, so a reader (a CI
step, a browser) never sees half a report. The HTML holds small images of input, expected and produced
tensors for failed reproductions (REP001) when the produced outputs were kept (`report.artifacts`); the
test tensors are read from the package itself, nothing is run again.

Every writer prints `report.verdict(target)`: the same status word, reason and finding counts as the
terminal, the JSON report and the exit code.

One module per format (`markdown`, `html`, `junit`), each with its render_* and write_* functions; a new
format is a new module here, exported below. `common` holds what the formats share, `figures` the images of
failed reproductions."""

from __future__ import annotations

from zoo.validators.report import write_text_atomic
from zoo.validators.writers.common import by_stage, counts, counts_text, display_name, performance_rows
from zoo.validators.writers.figures import PREVIEW_PIXELS, encode_png
from zoo.validators.writers.html import badge, html_page, html_text, render_error_html, render_html, write_html
from zoo.validators.writers.junit import error_testsuite, junit_testsuite, render_junit, write_junit
from zoo.validators.writers.markdown import (
    markdown_performance_lines,
    markdown_verdict_lines,
    md_code,
    md_text,
    render_markdown,
    write_markdown,
)

__all__ = [
    "PREVIEW_PIXELS",
    "badge",
    "by_stage",
    "counts",
    "counts_text",
    "display_name",
    "encode_png",
    "error_testsuite",
    "html_page",
    "html_text",
    "junit_testsuite",
    "markdown_performance_lines",
    "markdown_verdict_lines",
    "md_code",
    "md_text",
    "performance_rows",
    "render_error_html",
    "render_html",
    "render_junit",
    "render_markdown",
    "write_html",
    "write_junit",
    "write_markdown",
    "write_text_atomic",
]
