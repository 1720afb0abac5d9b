"""QUA rules: the package's own record of its quality is shown, judged against its trainer's floor, and a poor
one is never a plain "passed"."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import load_rdf, save_rdf
from zoo.validators import validate_source
from zoo.validators.registry import RULES, passed
from zoo.validators.report import ValidationReport

QUALITY = ("QUA001", "QUA002", "QUA003")


def quality_report(folder: Path) -> ValidationReport:
    """The static rules (QUA among them) plus a passed reproduction, as a package that ran would have."""
    report = validate_source(folder, static_only=True)
    report.findings.append(passed(RULES["REP001"], "reproduced", "weights.torchscript"))
    return report


def with_quality(folder: Path, *, value: float, floor: float | None = 0.5, diagnosis: str = "good fit") -> Path:
    rdf = load_rdf(folder)
    config = rdf.setdefault("config", {}).setdefault("bioimageio", {})
    config["evaluations_without_dataset_url"] = [
        {
            "dataset_id": "own",
            "dataset_role": "test",
            "sample_count": 4,
            "evaluation_factors": ["overall"],
            "metrics": ["IoU"],
            "results": [[value]],
        }
    ]
    training = config.setdefault("training", {})
    training["diagnosis"] = {"verdict": diagnosis, "explanation": "the curves"}
    training.pop("smoke_test", None)
    if floor is None:
        training.pop("quality_floor", None)
    else:
        training["quality_floor"] = {"IoU": floor}
    save_rdf(folder, rdf)
    return folder


def statuses(report: ValidationReport, rule_id: str) -> set[str]:
    return {f.status for f in report.by_id(rule_id)}


def test_zoo_packages_record_their_evaluation_and_floor(package_folder):
    """The tiny package: one epoch, so its curves are too short to diagnose (QUA003 says so, skipped)."""
    report = quality_report(package_folder())
    assert statuses(report, "QUA001") == {"passed"}
    assert "IoU" in report.by_id("QUA001")[0].details["metrics"]
    assert statuses(report, "QUA002") in ({"passed"}, {"warning"})
    assert report.by_id("QUA002")[0].details["floor"] == 0.5
    assert statuses(report, "QUA003") == {"skipped"}


def test_quality_below_the_floor_is_a_warning_and_said_in_the_verdict(package_folder):
    report = quality_report(with_quality(package_folder(), value=0.0))
    assert statuses(report, "QUA002") == {"warning"}
    assert report.by_id("QUA002")[0].details == {"metric": "IoU", "value": 0.0, "floor": 0.5}
    verdict = report.verdict()
    assert verdict.status == "passed"  # the package itself is valid and reproduces its outputs
    assert "IoU" in verdict.quality and "0.5" in verdict.quality
    assert verdict.quality in verdict.reason
    assert verdict.to_dict()["quality"] == verdict.quality


def test_quality_above_the_floor_is_a_plain_pass(package_folder):
    report = quality_report(with_quality(package_folder(), value=0.93))
    assert statuses(report, "QUA002") == {"passed"}
    assert statuses(report, "QUA003") == {"passed"}
    assert report.verdict().reason == "" and report.verdict().quality == ""


def test_underfitting_is_a_warning_and_said_in_the_verdict(package_folder):
    report = quality_report(with_quality(package_folder(), value=0.93, diagnosis="underfitting"))
    assert statuses(report, "QUA003") == {"warning"}
    assert report.by_id("QUA003")[0].details == {"diagnosis": "underfitting"}
    assert "underfitting" in report.verdict().quality


def test_a_smoke_test_package_says_so(package_folder):
    folder = with_quality(package_folder(), value=0.93)
    rdf = load_rdf(folder)
    rdf["config"]["bioimageio"]["training"]["smoke_test"] = True
    save_rdf(folder, rdf)
    report = quality_report(folder)
    assert report.by_id("QUA001")[0].details["smoke_test"] is True
    assert "--quick" in report.verdict().quality


def test_without_a_floor_the_recorded_value_is_shown_not_judged(package_folder):
    report = quality_report(with_quality(package_folder(), value=0.2, floor=None))
    assert report.by_id("QUA001")[0].details["metrics"] == {"IoU": 0.2}
    assert statuses(report, "QUA002") == {"skipped"}
    assert report.verdict().quality == ""


def test_a_package_that_records_nothing_is_skipped_with_the_reason(package_folder):
    folder = package_folder()
    rdf = load_rdf(folder)
    rdf.pop("config", None)
    save_rdf(folder, rdf)
    report = quality_report(folder)
    for rule_id in QUALITY:
        assert statuses(report, rule_id) == {"skipped"}, rule_id
    assert report.verdict().status == "passed" and report.verdict().quality == ""
