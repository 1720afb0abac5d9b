"""The collection's outputs: a JSON and HTML report per package, junit.xml (one testsuite per package),
summary.json, summary.md (the job summary) and index.html, a self-contained sortable and filterable
dashboard."""

from __future__ import annotations

import json

from zoo.validators.collection.result import PACKAGE_STATUSES, CollectionResult
from zoo.validators.report import FAILED, NOT_VERIFIED, PASSED, ValidationReport

REPORTS_FOLDER = "reports"


def write_outputs(result: CollectionResult, reports: dict[int, ValidationReport]) -> None:
    """Every output of the run into `result.out_dir`; `reports` holds the report of each entry that has one."""
    from zoo.validators import writers

    out_dir = result.out_dir
    target = result.options.target
    suites = []
    for index, entry in enumerate(result.entries):
        report = reports.get(index)
        entry.report = f"{REPORTS_FOLDER}/{entry.slug}.html"
        html_path = out_dir / entry.report
        if report is None:
            writers.write_text_atomic(html_path, writers.render_error_html(entry.path, entry.source, entry.error))
            suites.append(writers.error_testsuite(entry.path, entry.source, entry.error or ""))
            continue
        entry.report_json = f"{REPORTS_FOLDER}/{entry.slug}.json"
        report.write_json(out_dir / entry.report_json, target=target)
        writers.write_html(report, html_path, target=target)
        suites.append(writers.junit_testsuite(report, name=entry.path, target=target))
    writers.write_text_atomic(result.junit_path, writers.render_junit(suites, name="zoo validate-collection"))
    writers.write_text_atomic(result.summary_path, json.dumps(result.to_dict(), indent=2) + "\n")
    writers.write_text_atomic(result.markdown_path, render_collection_markdown(result))
    writers.write_text_atomic(result.index_path, render_dashboard(result))


STATUS_ICONS = {PASSED: "✅", FAILED: "❌", NOT_VERIFIED: "⚠️"}


def render_collection_markdown(result: CollectionResult) -> str:
    """The job summary: counts, then one table row per package."""
    from zoo.validators.writers import md_code, md_text

    lines = [
        "# zoo validate-collection",
        "",
        f"**Verdict: {result.status}** ({result.counts_text()}; {result.duration_s:.1f} s)",
        "",
        "| package | status | deepImageJ (Fiji) | failed rules | s |",
        "|---|---|---|---|---|",
    ]
    for entry in result.entries:
        icon = STATUS_ICONS[entry.status]
        rules = ", ".join(entry.failed_rules) or md_text(entry.reason)
        lines.append(
            f"| {md_code(entry.path)} | {icon} {entry.status} | {entry.deepimagej or 'not checked'} | "
            f"{rules} | {entry.duration_s:.1f}{' (cached)' if entry.cache_hit else ''} |"
        )
    return "\n".join(lines) + "\n"


DASHBOARD_CSS = """
.controls{display:flex;gap:14px;align-items:center;flex-wrap:wrap;margin:12px 0}
.controls label{font-weight:600}
th{cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
td.num{text-align:right}
"""

DASHBOARD_SCRIPT = """
(function () {
  var table = document.getElementById("packages"), body = table.tBodies[0], heads = table.tHead.rows[0].cells;
  var status = document.getElementById("status-filter"), rule = document.getElementById("rule-filter");
  var text = document.getElementById("text-filter"), shown = document.getElementById("shown");
  var sorted = null;
  function apply() {
    var n = 0, query = text.value.toLowerCase();
    Array.prototype.forEach.call(body.rows, function (row) {
      var ok = (!status.value || row.dataset.status === status.value) &&
        (!rule.value || row.dataset.rules.split(" ").indexOf(rule.value) >= 0) &&
        (!query || row.textContent.toLowerCase().indexOf(query) >= 0);
      row.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
    remember();
  }
  function value(row, i) {
    var cell = row.cells[i];
    return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  }
  function sortBy(i, ascending) {
    var th = heads[i], numeric = th.dataset.type === "number";
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, i), y = value(b, i);
      var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return ascending ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    sorted = [th.dataset.key, ascending ? "asc" : "desc"];
    remember();
  }
  function remember() {  /* the view in the address: a filtered, sorted dashboard can be linked to */
    var parts = [];
    if (status.value) { parts.push("status=" + encodeURIComponent(status.value)); }
    if (rule.value) { parts.push("rule=" + encodeURIComponent(rule.value)); }
    if (text.value) { parts.push("q=" + encodeURIComponent(text.value)); }
    if (sorted) { parts.push("sort=" + sorted[0], "order=" + sorted[1]); }
    try {
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
    } catch (e) { /* some browsers refuse it for file:// pages; the view still works */ }
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.addEventListener("click", function () { sortBy(i, th.getAttribute("aria-sort") !== "ascending"); });
  });
  status.addEventListener("change", apply);
  rule.addEventListener("change", apply);
  text.addEventListener("input", apply);
  var wanted = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (part) {
    var kv = part.split("=");
    if (kv[0]) { wanted[kv[0]] = decodeURIComponent(kv[1] || ""); }
  });
  if (wanted.status) { status.value = wanted.status; }
  if (wanted.rule) { rule.value = wanted.rule; }
  if (wanted.q) { text.value = wanted.q; }
  Array.prototype.forEach.call(heads, function (th, i) {
    if (th.dataset.key === wanted.sort) { sortBy(i, wanted.order !== "desc"); }
  });
  apply();
  document.body.setAttribute("data-ready", "1");
})();
"""


def render_dashboard(result: CollectionResult) -> str:
    """index.html: a sortable, filterable table of the packages linking to their reports; no external asset."""
    from zoo.validators.writers import badge, html_page, html_text
    from zoo.version import __version__

    rules = sorted({r for e in result.entries for r in e.failed_rules + e.deepimagej_rules})
    rows = []
    for entry in result.entries:
        entry_rules = sorted(set(entry.failed_rules + entry.deepimagej_rules))
        problems = ", ".join(entry.failed_rules) or entry.reason
        numbers = entry.counts
        rows.append(
            f'<tr data-status="{html_text(entry.status)}" data-rules="{html_text(" ".join(entry_rules))}">'
            f'<td><a href="{html_text(entry.report)}">{html_text(entry.path)}</a></td>'
            f"<td>{html_text(entry.name or '')}</td>"
            f'<td data-sort="{html_text(entry.status)}">{badge(entry.status)}</td>'
            f'<td data-sort="{html_text(entry.deepimagej or "")}">{badge(entry.deepimagej or "not checked")}</td>'
            f"<td>{html_text(problems)}</td>"
            f'<td class="num" data-sort="{entry.failures}">{entry.failures}</td>'
            f'<td class="num" data-sort="{numbers.get("warning", 0)}">{numbers.get("warning", 0)}</td>'
            f'<td class="num" data-sort="{entry.duration_s:.3f}">{entry.duration_s:.1f}</td>'
            f"<td>{'yes' if entry.cache_hit else 'no'}</td></tr>"
        )
    options = "".join(f'<option value="{html_text(r)}">{html_text(r)}</option>' for r in rules)
    statuses = "".join(f'<option value="{html_text(s)}">{html_text(s)}</option>' for s in reversed(PACKAGE_STATUSES))
    body = f"""<header><h1>zoo validate-collection</h1>
<div class="muted mono">{html_text(result.source)}</div>
<p>{badge(result.status, big=True)} {html_text(result.counts_text())}</p>
<div class="meta muted">zoo {html_text(__version__)} · target {html_text(result.options.target)} · trust
{"yes" if result.options.trust else "no"} · {result.duration_s:.1f} s</div></header>
<main><div class="controls">
<label for="status-filter">status</label><select id="status-filter"><option value="">all</option>{statuses}</select>
<label for="rule-filter">rule</label><select id="rule-filter"><option value="">all</option>{options}</select>
<label for="text-filter">search</label><input id="text-filter" type="search" placeholder="package or name">
<span class="muted">showing <span id="shown">{len(result.entries)}</span> of {len(result.entries)}</span></div>
<table id="packages"><thead><tr><th data-key="package">package</th><th data-key="name">name</th>
<th data-key="status">status</th><th data-key="deepimagej">deepImageJ (Fiji)</th><th data-key="rules">failed rules</th>
<th data-key="failed" data-type="number">failed</th><th data-key="warnings" data-type="number">warnings</th>
<th data-key="seconds" data-type="number">seconds</th><th data-key="cached">cached</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p class="muted">Files: <a href="summary.json">summary.json</a> · <a href="junit.xml">junit.xml</a> ·
<a href="summary.md">summary.md</a></p></main>"""
    return html_page("zoo validate-collection", body, DASHBOARD_SCRIPT, DASHBOARD_CSS)
