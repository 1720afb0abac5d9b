"""Verdicts that mean what they say: one status, exit code and set of counts in the terminal, JSON, Markdown,
HTML, JUnit and the collection's summary and dashboard; "not verified" when no model ran; deepImageJ's
"cannot judge" when the files its rules need are absent; a cache keyed on the rules, not on zoo's version."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

import zoo.validators.checks  # noqa: F401  (registers the rules)
from tests.conftest import copy_real_model, load_rdf, save_rdf
from tests.test_validators.runtime_packages import only_weights
from zoo import api
from zoo.cli import app
from zoo.validators import collection, writers
from zoo.validators import validate_source as validate_isolated
from zoo.validators.registry import RULES, failed, passed, skipped
from zoo.validators.report import EXIT_CODES, ValidationReport, counts_text

validate_source = partial(validate_isolated, isolate=False)
FORMATS = ("json", "markdown", "html", "junit")


def dij_rule(severity: str):
    return next(
        r for r in sorted(RULES.values(), key=lambda r: r.id) if r.target == "deepimagej" and r.severity == severity
    )


def report_of(*findings) -> ValidationReport:
    return ValidationReport(source="/somewhere/model.zip", findings=list(findings), name="synthetic")


def reproduced(weight_format: str = "onnx"):
    return passed(RULES["REP001"], "reproduced", f"weights.{weight_format}/outputs[y]")


def run_cli(tmp_path: Path, source: Path | str, *options: str) -> tuple[int, str, dict]:
    """`zoo validate` writing every report; (exit code, terminal output, {format: what it says})."""
    paths = {kind: tmp_path / f"report.{kind}" for kind in FORMATS}
    arguments = ["validate", str(source), *options]
    for kind, path in paths.items():
        arguments += [f"--{kind}", str(path)]
    result = CliRunner().invoke(app, arguments)
    assert "Traceback" not in result.output, result.output
    data = json.loads(paths["json"].read_text())
    junit = ET.parse(paths["junit"]).getroot().find("testsuite")
    said = {
        "json": data,
        "markdown": paths["markdown"].read_text(),
        "html": paths["html"].read_text(),
        "junit": junit,
        "junit_properties": {p.get("name"): p.get("value") for p in junit.iter("property")},
    }
    return result.exit_code, result.output, said


def assert_everywhere(exit_code: int, output: str, said: dict, status: str) -> None:
    """The same status, exit code and counts in the terminal and in every report file."""
    data = said["json"]
    assert (data["status"], data.get("exit_code"), exit_code) == (status, EXIT_CODES[status], EXIT_CODES[status])
    properties = said["junit_properties"]
    assert (properties["verdict"], properties.get("exit_code")) == (status, str(EXIT_CODES[status]))
    numbers = counts_text(data["counts"])
    assert sum(data["counts"].values()) == len(data["checks"])
    assert int(said["junit"].get("failures")) == data["counts"]["failed"]
    assert int(said["junit"].get("skipped")) == data["counts"]["skipped"]
    assert f"verdict: {status} ({numbers};" in " ".join(output.split())
    assert f"**Verdict: {status}** ({numbers};" in said["markdown"]
    assert re.search(rf"bioimage\.io <span[^>]*>{status}</span>", said["html"])
    assert numbers in said["html"]


@pytest.fixture
def fake_validate(monkeypatch):
    """`zoo validate` on a prepared report (nothing is opened or run)."""

    def use(report: ValidationReport) -> None:
        monkeypatch.setattr(api, "validate", lambda source, **options: report)

    return use


@pytest.fixture
def in_process(monkeypatch):
    import zoo.validators

    monkeypatch.setattr(zoo.validators, "validate_source", validate_source)  # in-process model runs: fast


# ---------------------------------------------------------------------------------------------------- target


def test_target_deepimagej_says_failed_wherever_it_exits_1(fake_validate, tmp_path):
    fake_validate(
        report_of(
            passed(RULES["FMT001"], "parsed"),
            reproduced(),
            failed(dij_rule("error"), "Fiji cannot load it", "weights.onnx"),
        )
    )
    assert_everywhere(*run_cli(tmp_path / "dij", "model.zip", "--target", "deepimagej"), status="failed")
    assert_everywhere(*run_cli(tmp_path / "bio", "model.zip"), status="passed")  # Fiji's finding does not fail it


@pytest.mark.slow
def test_real_model_with_target_deepimagej_says_failed_wherever_it_exits_1(tmp_path, in_process):
    folder = copy_real_model("unet2d_nuclei_broad", tmp_path)
    exit_code, output, said = run_cli(tmp_path / "dij", folder, "--target", "deepimagej")
    assert said["json"]["deepimagej"]["verdict"] == "will not run"  # ONNX opset 20, axes without ids
    assert_everywhere(exit_code, output, said, status="failed")


@pytest.mark.slow
def test_counts_are_the_same_in_the_terminal_and_every_report(tmp_path, in_process):
    """The real model fails deepImageJ rules only: the terminal said 0 failed where the HTML said 4."""
    folder = copy_real_model("unet2d_nuclei_broad", tmp_path)
    exit_code, output, said = run_cli(tmp_path / "bio", folder)
    assert_everywhere(exit_code, output, said, status="passed")
    counts = said["json"]["counts"]
    dij_failed = sum(c["status"] == "failed" and c["target"] == "deepimagej" for c in said["json"]["checks"])
    assert (counts["failed"], counts["failed_other_target"]) == (0, dij_failed) and dij_failed > 0


def test_one_count_for_every_writer_of_a_synthetic_report():
    report = report_of(
        passed(RULES["FMT001"], "parsed"),
        failed(RULES["FIL001"], "absent", "weights.onnx"),
        failed(dij_rule("error"), "Fiji cannot load it"),
        skipped(RULES["REP001"], "not run"),
    )
    for target, expected in (("bioimageio", (1, 1)), ("deepimagej", (2, 0))):
        verdict = report.verdict(target)
        assert (verdict.counts["failed"], verdict.counts["failed_other_target"]) == expected
        assert sum(verdict.counts.values()) == len(report.findings)
        assert report.to_dict(target)["counts"] == writers.counts(report, target) == verdict.counts
        assert int(writers.junit_testsuite(report, target=target).get("failures")) == verdict.counts["failed"]
        for text in (writers.render_markdown(report, target=target), writers.render_html(report, target=target)):
            assert counts_text(verdict.counts) in text


# ---------------------------------------------------------------------------------------------------- not verified


def test_nothing_run_is_not_verified_with_its_cause():
    trust = report_of(
        passed(RULES["FMT001"], "parsed"), skipped(RULES["REP001"], "not run", "weights.pytorch_state_dict")
    )
    absent = report_of(
        failed(RULES["FIL001"], "absent", "weights.onnx"), skipped(RULES["REP001"], "not run", "weights.onnx")
    )
    ran = report_of(reproduced("torchscript"), skipped(RULES["REP001"], "not run", "weights.pytorch_state_dict"))
    assert (trust.status, trust.exit_code) == ("not verified", 3)
    assert trust.verdict().unverified == {"pytorch_state_dict": "needs_trust"}
    assert (absent.status, absent.exit_code) == ("failed", 1)  # a missing file is a failing finding first
    remote = report_of(
        failed(RULES["FIL003"], "a URL", "weights.onnx"),  # a warning: named, never fetched
        skipped(RULES["REP001"], "not run", "weights.onnx"),
    )
    assert (remote.status, remote.verdict().unverified) == ("not verified", {"onnx": "only_at_url"})
    assert (ran.status, ran.exit_code) == ("passed", 0)  # one format ran and reproduced
    assert report_of(passed(RULES["FMT001"], "parsed")).verdict().unverified == {"": "no_model_run"}


@pytest.mark.slow
def test_weights_that_need_trust_are_not_verified_everywhere(tiny_package, tmp_path, in_process):
    with zipfile.ZipFile(tiny_package) as archive:
        archive.extractall(tmp_path / "state-dict")
    folder = only_weights(tmp_path / "state-dict", "pytorch_state_dict")
    exit_code, output, said = run_cli(tmp_path / "untrusted", folder)
    assert_everywhere(exit_code, output, said, status="not verified")
    assert said["json"]["unverified"] == {"pytorch_state_dict": "needs_trust"}
    assert_everywhere(*run_cli(tmp_path / "trusted", folder, "--trust"), status="passed")


@pytest.mark.slow
def test_weights_only_at_a_url_are_not_verified(tiny_package, tmp_path, in_process):
    with zipfile.ZipFile(tiny_package) as archive:
        archive.extractall(tmp_path / "remote")
    folder = only_weights(tmp_path / "remote", "onnx")
    rdf = load_rdf(folder)
    rdf["weights"]["onnx"]["source"] = "https://example.invalid/weights.onnx"
    save_rdf(folder, rdf)
    exit_code, output, said = run_cli(tmp_path / "report", folder)
    assert_everywhere(exit_code, output, said, status="not verified")
    assert said["json"]["unverified"] == {"onnx": "only_at_url"}


# ---------------------------------------------------------------------------------------------------- cannot judge


def test_deepimagej_cannot_judge_when_its_files_are_absent(tmp_path):
    absent = skipped(
        dij_rule("error"), "weights.onnx is absent", "weights.onnx", cannot_judge=True, missing=["weights.onnx"]
    )
    report = report_of(passed(RULES["FMT001"], "parsed"), reproduced(), passed(dij_rule("risk"), "fine"), absent)
    assert report.deepimagej_verdict == "cannot judge"
    assert (report.verdict("bioimageio").status, report.verdict("deepimagej").status) == ("passed", "not verified")
    assert report.exit_code_for("deepimagej") == 3
    assert report.to_dict("deepimagej")["deepimagej"]["verdict"] == "cannot judge"
    junit = writers.junit_testsuite(report, target="deepimagej")
    assert junit.find("properties/property[@name='deepimagej']").get("value") == "cannot judge"
    assert "**deepImageJ (Fiji): cannot judge**" in writers.render_markdown(report)
    assert re.search(r"deepImageJ \(Fiji\) <span[^>]*>cannot judge</span>", writers.render_html(report))
    proven = dataclasses.replace(report, findings=[*report.findings, failed(dij_rule("error"), "two inputs")])
    assert proven.deepimagej_verdict == "will not run"  # a failed rule is a proof, files or not
    unread = report_of(skipped(dij_rule("error"), "not run: the rdf could not be read"))
    assert unread.deepimagej_verdict is None  # a skip without cannot_judge judges nothing


def test_lone_rdf_without_its_weight_files_cannot_be_judged_by_deepimagej(tiny_package, tmp_path, in_process):
    folder = tmp_path / "lone"
    folder.mkdir()
    with zipfile.ZipFile(tiny_package) as archive:
        (folder / "rdf.yaml").write_bytes(archive.read("rdf.yaml"))
    exit_code, output, said = run_cli(tmp_path / "dij", folder, "--target", "deepimagej")
    assert_everywhere(exit_code, output, said, status="failed")  # FIL001: the files the rdf names are absent
    assert said["json"]["deepimagej"]["verdict"] == said["junit_properties"]["deepimagej"] == "cannot judge"
    assert "**deepImageJ (Fiji): cannot judge**" in said["markdown"]
    assert re.search(r"deepImageJ \(Fiji\) <span[^>]*>cannot judge</span>", said["html"])


# ---------------------------------------------------------------------------------------------------- collection


@pytest.mark.slow
def test_collection_statuses_counts_and_exit_codes_match_the_reports(tiny_package, tmp_path):
    models = tmp_path / "models"
    with zipfile.ZipFile(tiny_package) as archive:
        archive.extractall(models / "state-dict")
    only_weights(models / "state-dict", "pytorch_state_dict")
    out = tmp_path / "out"
    result = api.validate_collection(models, out, isolate=False)
    [entry] = result.entries
    assert (entry.status, result.status, result.exit_code) == ("not verified", "not verified", 3)
    report = json.loads((out / entry.report_json).read_text())
    assert (report["status"], report["counts"]) == (entry.status, entry.counts)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["status"], summary["exit_code"]) == ("not verified", 3)
    assert summary["counts"] == {"packages": 1, "passed": 0, "not verified": 1, "failed": 0, "cache_hits": 0}
    assert summary["packages"][0]["status"] == "not verified"
    assert 'data-status="not verified"' in (out / "index.html").read_text()
    assert "**Verdict: not verified**" in (out / "summary.md").read_text()
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite.find("properties/property[@name='verdict']").get("value") == "not verified"

    (models / "garbage").mkdir()
    (models / "garbage" / "rdf.yaml").write_bytes(b"name: [unclosed\n\x00 ::: {")
    cli = CliRunner().invoke(app, ["validate-collection", str(models), "--out", str(tmp_path / "out2")])
    summary = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert (cli.exit_code, summary["status"]) == (1, "failed")  # the worst package decides
    assert [p["status"] for p in summary["packages"]] == ["failed", "not verified"]
    assert {k: summary["counts"][k] for k in ("passed", "not verified", "failed")} == {
        "passed": 0,
        "not verified": 1,
        "failed": 1,
    }


# ---------------------------------------------------------------------------------------------------- cache key


def test_a_changed_rule_is_validated_again_not_served_from_the_cache(tmp_path, monkeypatch):
    (tmp_path / "models" / "garbage").mkdir(parents=True)
    (tmp_path / "models" / "garbage" / "rdf.yaml").write_bytes(b"name: [unclosed\n\x00 ::: {")

    def hits() -> list[bool]:
        return [
            e.cache_hit for e in api.validate_collection(tmp_path / "models", tmp_path / "out", isolate=False).entries
        ]

    assert hits() == [False]
    assert hits() == [True]
    monkeypatch.setitem(RULES, "FMT001", dataclasses.replace(RULES["FMT001"], severity="warning"))
    assert hits() == [False]


def test_the_rule_fingerprint_follows_the_validator_source(tmp_path):
    import zoo

    package = tmp_path / "zoo"
    shutil.copytree(Path(zoo.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = collection.source_fingerprint(package)
    assert collection.source_fingerprint(package) == before
    check = package / "validators" / "checks" / "files.py"
    check.write_text(check.read_text() + "\n# a changed rule\n")
    assert collection.source_fingerprint(package) != before
    key = partial(collection.cache_key, "0" * 64, collection.ValidationOptions())
    assert key(before) != key(collection.source_fingerprint(package))


@pytest.mark.slow
def test_a_crashing_check_is_not_a_verdict_about_the_package(package_folder, monkeypatch):
    """zoo's own bug in a check makes the package "not verified" (exit 3), never "failed" nor "passed"."""
    from zoo.validators import validate_source
    from zoo.validators.registry import CHECKS

    def crash(pkg):
        raise ZeroDivisionError("a bug in zoo")
        yield  # a generator, like every check

    monkeypatch.setitem(CHECKS, "TEN003", crash)
    report = validate_source(package_folder(), isolate=False)
    [finding] = report.by_id("TEN003")
    assert finding.status == "skipped"
    assert finding.details["internal_error"].startswith("ZeroDivisionError")
    assert report.verdict().status == "not verified"
    assert report.verdict().exit_code == 3


def test_a_sandbox_the_platform_could_not_provide_is_said_in_the_terminal(monkeypatch):
    from rich.console import Console

    from zoo.cli import common, show
    from zoo.validators.report import ValidationReport

    recorded = Console(record=True, width=200)
    monkeypatch.setattr(common, "console", recorded)
    report = ValidationReport(source="pkg", sandbox={"files": False, "network": True, "summary": "files NOT confined"})
    show.print_report(report)
    assert "files NOT confined" in recorded.export_text()
    confined = Console(record=True, width=200)
    monkeypatch.setattr(common, "console", confined)
    show.print_report(ValidationReport(source="pkg", sandbox={"files": True, "network": True, "summary": "ok"}))
    assert "sandbox:" not in confined.export_text()
