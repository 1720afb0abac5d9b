"""A ValidationReport as JUnit XML: one testsuite per report, one testcase per finding."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from zoo.validators.report import ValidationReport, fails_for, write_text_atomic
from zoo.validators.writers.common import display_name

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def write_junit(report: ValidationReport, path: Path, target: str = "bioimageio") -> Path:
    return write_text_atomic(path, render_junit([junit_testsuite(report, target=target)]))


def _xml(text: object) -> str:
    """Text XML 1.0 can hold: control characters (from garbage files) become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", str(text))


def junit_testsuite(report: ValidationReport, name: str | None = None, target: str = "bioimageio") -> ET.Element:
    """One testcase per finding: failures for failed, skipped for skipped, warnings pass with system-out."""
    from zoo.version import __version__

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
