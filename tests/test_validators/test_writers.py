"""Report writers: JUnit XML (parsed, counted, schema-shaped), self-contained HTML with images of failed
reproductions, Markdown with the verdict lines; and `zoo validate --markdown/--html/--junit`."""

from __future__ import annotations

import base64
import dataclasses
import io
import re
import stat
import xml.etree.ElementTree as ET
import zipfile
from functools import partial

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import rehash
from zoo.cli import app
from zoo.validators import validate_source as validate_isolated
from zoo.validators import writers
from zoo.validators.registry import RULES, failed, passed, skipped
from zoo.validators.report import ValidationReport

validate_source = partial(validate_isolated, isolate=False)

# Jenkins' junit-10.xsd, the schema CI test reporters read: element -> (required, allowed attributes, children)
JUNIT_SCHEMA = {
    "testsuites": (set(), {"name", "time", "tests", "failures", "disabled", "errors"}, {"testsuite"}),
    "testsuite": (
        {"name", "tests"},
        {
            "name",
            "tests",
            "failures",
            "errors",
            "time",
            "disabled",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
            "version",
        },
        {"properties", "testcase", "system-out", "system-err"},
    ),
    "properties": (set(), set(), {"property"}),
    "property": ({"name", "value"}, {"name", "value"}, set()),
    "testcase": (
        {"name"},
        {"name", "assertions", "time", "classname", "status"},
        {"skipped", "error", "failure", "system-out", "system-err"},
    ),
    "skipped": (set(), {"message"}, set()),
    "error": (set(), {"message", "type"}, set()),
    "failure": (set(), {"message", "type"}, set()),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
}
NUMBER_ATTRIBUTES = {"tests", "failures", "errors", "skipped", "disabled"}


def assert_junit_schema(element: ET.Element) -> None:
    required, allowed, children = JUNIT_SCHEMA[element.tag]
    assert required <= set(element.attrib) <= allowed, (element.tag, element.attrib)
    for name in NUMBER_ATTRIBUTES & set(element.attrib):
        assert element.attrib[name].isdigit(), (element.tag, name, element.attrib[name])
    if "time" in element.attrib:
        float(element.attrib["time"])
    if element.tag == "testcase":
        assert len([c for c in element if c.tag in ("skipped", "error", "failure")]) <= 1
    for child in element:
        assert child.tag in children, (element.tag, child.tag)
        assert_junit_schema(child)


@pytest.fixture(scope="module")
def good_report(tiny_package):
    return validate_source(tiny_package)


@pytest.fixture(scope="module")
def broken_report(tiny_package, tmp_path_factory):
    """REP001 fails for every weight format that runs: the expected output was shifted by 0.05 (and rehashed)."""
    folder = tmp_path_factory.mktemp("broken")
    with zipfile.ZipFile(tiny_package) as archive:
        archive.extractall(folder)
    expected = np.load(folder / "test_output.npy")
    np.save(folder / "test_output.npy", (expected + 0.05).astype(np.float32))
    rehash(folder, "test_output.npy")
    return validate_source(folder, keep_artifacts=tmp_path_factory.mktemp("artifacts"))


def synthetic_report(*findings) -> ValidationReport:
    return ValidationReport(source="/somewhere/model.zip", findings=list(findings), name="synthetic")


@pytest.mark.slow
def test_junit_has_a_testcase_per_finding_and_a_failure_per_failed_check(broken_report, tmp_path):
    root = ET.parse(writers.write_junit(broken_report, tmp_path / "junit.xml")).getroot()
    assert_junit_schema(root)
    [suite] = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(broken_report.findings) == int(suite.get("tests")) == int(root.get("tests"))
    failures = suite.findall("testcase/failure")
    assert len(failures) == len(broken_report.failed()) == int(suite.get("failures")) == 3
    assert {f.get("type") for f in failures} == {"REP001"}
    failing_names = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failing_names == {f"REP001 {f.location}" for f in broken_report.failed()}
    assert (
        len(suite.findall("testcase/skipped"))
        == int(suite.get("skipped"))
        == sum(f.status == "skipped" for f in broken_report.findings)
    )
    warnings = [f for f in broken_report.findings if f.status == "warning"]
    with_output = [c for c in cases if c.find("system-out") is not None and c.find("failure") is None]
    assert len(with_output) >= len(warnings) > 0  # warnings pass, with their message in system-out
    assert {c.get("classname") for c in cases} >= {"format", "files", "reproduction"}


def test_junit_holds_control_characters_from_garbage_as_valid_xml(tmp_path):
    report = synthetic_report(failed(RULES["FMT001"], "rdf.yaml is not YAML: \x00\x01 found", "rdf.yaml"))
    root = ET.fromstring(writers.render_junit([writers.junit_testsuite(report)]).encode())
    assert_junit_schema(root)
    assert "\ufffd" in root.find("testsuite/testcase/failure").get("message")


def test_failed_deepimagej_rule_fails_junit_only_for_the_deepimagej_target():
    import zoo.validators.checks  # noqa: F401

    dij = next(r for r in RULES.values() if r.target == "deepimagej" and r.severity == "error")
    report = synthetic_report(passed(RULES["FMT001"], "parsed"), failed(dij, "Fiji cannot load it", "weights"))
    plain = writers.junit_testsuite(report, target="bioimageio")
    fiji = writers.junit_testsuite(report, target="deepimagej")
    assert (plain.get("failures"), fiji.get("failures")) == ("0", "1")
    assert plain.find("testcase/system-out") is not None
    assert fiji.find("testcase/failure").get("type") == dij.id


@pytest.mark.slow
def test_html_holds_every_rule_and_both_verdicts_without_external_assets(good_report, tmp_path):
    page = writers.write_html(good_report, tmp_path / "report.html").read_text()
    for finding in good_report.findings:
        assert f">{finding.id}<" in page
    assert re.search(r"bioimage\.io <span[^>]*>passed</span>", page)
    assert re.search(rf"deepImageJ \(Fiji\) <span[^>]*>{good_report.deepimagej_verdict}</span>", page)
    assert not re.search(
        r"<(script|img|link|iframe|source|video|audio)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//", page, re.IGNORECASE
    )
    assert not re.search(r"url\(\s*[\"']?(https?:)?//|@import", page, re.IGNORECASE)
    assert "<style>" in page and "data:image" not in page  # nothing failed to reproduce: no images


def test_html_shows_input_expected_produced_and_difference_for_failed_reproductions(broken_report, tmp_path):
    page = writers.write_html(broken_report, tmp_path / "report.html").read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4 * len(broken_report.failed())
    captions = [alt for alt, _ in images[:4]]
    assert captions[0].startswith("input ") and captions[1] == "expected probability"
    assert captions[2].startswith("produced by ") and captions[3] == "|produced − expected|"
    for _, data in images:
        pixels = iio.imread(io.BytesIO(base64.b64decode(data)), extension=".png")
        assert pixels.dtype == np.uint8 and pixels.ndim == 2 and max(pixels.shape) <= writers.PREVIEW_PIXELS
    difference = iio.imread(io.BytesIO(base64.b64decode(images[3][1])), extension=".png")
    assert difference.min() > 200  # every element is off by 0.05: a uniformly bright difference


def test_html_without_kept_outputs_shows_only_the_package_tensors(broken_report):
    page = writers.render_html(dataclasses.replace(broken_report, artifacts=None))
    assert len(re.findall(r"<img ", page)) == 2 * len(broken_report.failed())


def test_markdown_has_the_verdict_lines_and_one_line_per_finding_grouped_by_stage(broken_report, tmp_path):
    text = writers.write_markdown(broken_report, tmp_path / "report.md").read_text()
    lines = text.splitlines()
    failed_count = broken_report.verdict().counts["failed"]  # failing for the target: deepImageJ's own counted apart
    assert failed_count == len(broken_report.failed()) == 3
    assert f"**Verdict: failed** ({failed_count} failed," in text
    assert f"**deepImageJ (Fiji): {broken_report.deepimagej_verdict}**" in text
    findings = [line for line in lines if line.startswith("- ")]
    assert len(findings) == len(broken_report.findings)
    assert sum("**failed** `REP001`" in line and "fix:" in line for line in findings) == 3
    stages = [line[3:] for line in lines if line.startswith("## ")]
    assert stages[:3] == ["safety", "format", "files"] and "reproduction" in stages


def test_writers_replace_files_atomically_and_readably(good_report, tmp_path):
    for write, name in (
        (writers.write_markdown, "r.md"),
        (writers.write_html, "r.html"),
        (writers.write_junit, "r.xml"),
    ):
        (tmp_path / name).write_text("old")
        write(good_report, tmp_path / name)
        assert (tmp_path / name).read_text() != "old"
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    good_report.write_json(tmp_path / "r.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json", "r.md", "r.xml"]


def test_report_round_trips_through_its_json(broken_report):
    data = broken_report.to_dict()
    again = ValidationReport.from_dict(data)
    assert again.to_dict() == data
    assert [f.rule for f in again.findings] == [f.rule for f in broken_report.findings]


def test_skipped_only_deepimagej_rules_give_no_deepimagej_verdict():
    import zoo.validators.checks  # noqa: F401

    dij = next(r for r in RULES.values() if r.target == "deepimagej")
    report = synthetic_report(skipped(dij, "not run: the rdf could not be read"))
    assert report.deepimagej_verdict is None
    assert "deepImageJ" not in writers.render_markdown(report)


@pytest.mark.slow
def test_cli_validate_writes_markdown_html_and_junit(broken_report, monkeypatch, tmp_path):
    import zoo.validators

    monkeypatch.setattr(zoo.validators, "validate_source", validate_source)  # in-process model runs: fast
    source = broken_report.source
    result = CliRunner().invoke(
        app,
        [
            "validate",
            source,
            "--markdown",
            str(tmp_path / "r.md"),
            "--html",
            str(tmp_path / "r.html"),
            "--junit",
            str(tmp_path / "r.xml"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "**Verdict: failed**" in (tmp_path / "r.md").read_text()
    assert int(ET.parse(tmp_path / "r.xml").getroot().get("failures")) == 3
    page = (tmp_path / "r.html").read_text()
    assert page.count("data:image/png") == 12  # the produced outputs were kept for the page, then removed
