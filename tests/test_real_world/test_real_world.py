"""The real-world lane: zoo's static checks over the descriptions and packages other people wrote
(../shared/real-world: 137 rdfs whose weights live on Zenodo, five tiktorch packages with their files).

Static only: the rules that read the rdf and the files, no model is run, so the lane stays fast (a few seconds).
For every entry: nothing escapes as an exception and no check reports that it itself failed; FMT002 agrees with
bioimageio.spec's own `load_description(..., perform_io_checks=False)`; every URL the rdf names for running is named
by FIL003 and fails no rule that does not need the file; and the deepImageJ verdict agrees with the outcomes the
bioimage.io collection recorded for that exact rdf (outcomes.json, tool `deepimagej`):

- a recorded `rdf-static:*` failure (the description itself keeps deepImageJ from running it) must be "will not run";
- a recorded pass must not be "will not run", unless a rule of deepImageJ 3 (which zoo checks) that deepImageJ 2.1
  (which the collection ran) did not have explains it (DEEPIMAGEJ_3_ONLY);
- `runtime:*`, `harness:*` and `infra:*` failures say nothing about the description and are not compared.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REAL_WORLD = SHARED / "real-world"
RDFS, PACKAGES = REAL_WORLD / "rdfs", REAL_WORLD / "packages"

pytestmark = pytest.mark.skipif(
    not RDFS.is_dir() or not PACKAGES.is_dir(), reason="../shared/real-world is not present (a user's clone)"
)
logger = logging.getLogger(__name__)

WILL_NOT_RUN = "will not run"
FILE_READING_RULES = ("DIJ04", "DIJ07", "DIJ10", "DIJ11", "DIJ12", "DIJ13", "DIJ32")  # read weight or test files
# Rules of deepImageJ 3 (JDLL) that deepImageJ 2.1.x, which ran the collection's recorded tests, did not have: a
# recorded pass with one of these failing is a difference between the two versions, not a disagreement.
DEEPIMAGEJ_3_ONLY = {
    "DIJ02": "deepImageJ 2 read format 0.3; JDLL reads 0.4 and 0.5 only",
    "DIJ06": "the blocklist of unsupported models is deepImageJ 3's (Gui.UNSUPPORTED_MODELS)",
    "DIJ20": "JDLL turns no bool output into an image; deepImageJ 2 read TF outputs itself",
}


@dataclass
class Entry:
    """One description or package, its static report, and what bioimageio.spec and the collection said of it."""

    name: str
    descriptor: Path
    is_package: bool
    report: object = None
    escaped: str | None = None  # an exception that escaped zoo's checks
    spec_valid: bool | None = None  # bioimageio.spec's own verdict (perform_io_checks=False)
    spec_error: str | None = None
    recorded: dict | None = field(default=None, repr=False)  # outcomes.json's latest `deepimagej` record


def descriptor_of(folder: Path) -> Path | None:
    """rdf.yaml, else model.yaml, else the folder's one `*.model*.yaml` (0.3 packages name it after the model)."""
    for name in ("rdf.yaml", "model.yaml"):
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(folder.glob("*.model*.yaml"))
    return candidates[0] if len(candidates) == 1 else None


def static_report(descriptor: Path):
    """Every rule outside RUNTIME_STAGES, in the registry's order: validate_source with no model run."""
    from zoo.validators import validate_source

    return validate_source(descriptor, static_only=True)


def spec_verdict(descriptor: Path) -> tuple[bool | None, str | None]:
    """(valid, error) as bioimageio.spec itself says, offline."""
    from bioimageio.spec import InvalidDescr, load_description

    try:
        descr = load_description(descriptor, perform_io_checks=False)
    except Exception as e:  # the spec raising is its verdict "not loadable"
        return None, f"{type(e).__name__}: {e}"
    return not isinstance(descr, InvalidDescr), None


def recorded_deepimagej(folder: Path) -> dict | None:
    path = folder / "outcomes.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text()).get("deepimagej")
    return record.get("latest") if isinstance(record, dict) else None


@cache
def entries() -> tuple[Entry, ...]:
    found = []
    for root, is_package in ((RDFS, False), (PACKAGES, True)):
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            descriptor = descriptor_of(folder)
            assert descriptor is not None, f"{folder} holds no descriptor"
            found.append(Entry(folder.name, descriptor, is_package, recorded=recorded_deepimagej(folder)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for entry in found:
            try:
                entry.report = static_report(entry.descriptor)
            except Exception as e:  # what the lane exists to catch
                logger.exception("static checks of %s raised", entry.name)
                entry.escaped = f"{type(e).__name__}: {e}"
            entry.spec_valid, entry.spec_error = spec_verdict(entry.descriptor)
    return tuple(found)


def fmt_verdict(entry: Entry) -> bool | None:
    """True when FMT002 passed, False when it failed, None when it did not judge."""
    statuses = {f.status for f in entry.report.by_id("FMT002")}
    return False if "failed" in statuses else True if statuses == {"passed"} else None


def deepimagej_agreement(entry: Entry) -> tuple[str, str] | None:
    """("agree" | "version" | "disagree", why) against an rdf-attributable record; None when there is none."""
    record = entry.recorded
    if entry.report is None or not record:
        return None
    category = str(record.get("failure_category") or record.get("status") or "")
    verdict = entry.report.deepimagej_verdict
    errors = sorted(
        {
            f.id
            for f in entry.report.findings
            if f.rule.target == "deepimagej" and f.status == "failed" and f.rule.severity == "error"
        }
    )
    if category.startswith("rdf-static"):
        agrees = verdict == WILL_NOT_RUN
        return ("agree" if agrees else "disagree"), f"recorded {category!r}, zoo says {verdict!r}"
    if category == "passed":
        if verdict != WILL_NOT_RUN:
            return "agree", f"recorded pass, zoo says {verdict!r}"
        explained = [rule_id for rule_id in errors if rule_id in DEEPIMAGEJ_3_ONLY]
        why = f"recorded pass, zoo says {verdict!r} ({', '.join(errors)})"
        return ("version", why) if explained else ("disagree", why)
    return None  # runtime, harness, infrastructure: nothing about the description


def file_urls(entry: Entry) -> set[str]:
    """URLs of the files running needs (weights, architecture, test tensors), from zoo's raw reading of the rdf."""
    from zoo.bioimage.rdf import read_rdf
    from zoo.bioimage.rdf_weights import referenced_files

    return {ref.source for ref in referenced_files(read_rdf(entry.descriptor)) if ref.is_url and ref.needed}


# ------------------------------------------------------------------------------------------------------ the tests
@pytest.mark.slow
def test_the_corpus_is_all_there():
    all_entries = entries()
    assert len([e for e in all_entries if not e.is_package]) == 137
    assert len([e for e in all_entries if e.is_package]) == 5


@pytest.mark.slow
def test_nothing_escapes_and_no_check_fails_itself():
    crashed = [(e.name, e.escaped) for e in entries() if e.escaped]
    crashed += [
        (e.name, f"{f.id}: {f.message}")
        for e in entries()
        if e.report is not None
        for f in e.report.findings
        if (f.details or {}).get("internal_error")
    ]
    assert crashed == []


def test_format_verdict_is_bioimageio_specs():
    differ = [
        (e.name, f"FMT002 {fmt_verdict(e)}, bioimageio.spec {e.spec_valid} {e.spec_error or ''}".strip())
        for e in entries()
        if e.report is not None and fmt_verdict(e) != bool(e.spec_valid)
    ]
    assert differ == []


@pytest.mark.slow
def test_urls_are_named_and_fail_nothing_that_does_not_need_them():
    unnamed, blamed = [], []
    for entry in entries():
        if entry.report is None:
            continue
        urls = file_urls(entry)
        named = {str((f.details or {}).get("url")) for f in entry.report.by_id("FIL003")}
        if urls - named:
            unnamed.append((entry.name, sorted(urls - named)))
        for finding in entry.report.findings:
            text = f"{finding.message} {finding.details or ''}"
            if (
                finding.status == "failed"
                and not finding.id.startswith(("FIL", "FMT"))
                and any(url in text for url in urls)
            ):
                blamed.append((entry.name, finding.id, finding.message[:200]))
    assert unnamed == []
    assert blamed == []


def test_lone_descriptions_are_never_judged_by_their_absent_files():
    """A description without its files: the deepImageJ rules that read weight or test files say "cannot judge"
    (DIJ04 may still fail a weight entry that names no source at all, DIJ32 an input that names no test file)."""
    wrong = []
    for entry in entries():
        if entry.is_package or entry.report is None:
            continue
        for finding in entry.report.findings:
            details = finding.details or {}
            if finding.status not in ("failed", "warning") or finding.id not in FILE_READING_RULES:
                continue
            if (finding.id == "DIJ04" and details.get("source") is None) or (
                finding.id == "DIJ32" and details.get("named") == []
            ):
                continue
            wrong.append((entry.name, finding.id, finding.message[:200]))
    assert wrong == []


def test_deepimagej_verdict_agrees_with_recorded_rdf_outcomes():
    compared = [(e.name, deepimagej_agreement(e)) for e in entries()]
    disagree = [(name, why) for name, (kind, why) in ((n, a) for n, a in compared if a) if kind == "disagree"]
    assert disagree == []


def test_summary(capsys):
    """The lane's counts, printed (pytest -q -s) and logged."""
    all_entries = entries()
    rdfs = [e for e in all_entries if not e.is_package]
    compared = [a for a in (deepimagej_agreement(e) for e in all_entries) if a]
    agree = sum(kind == "agree" for kind, _ in compared)
    version = [why for kind, why in compared if kind == "version"]
    verdicts: dict[str, int] = {}
    for entry in all_entries:
        if entry.report is not None:
            key = str(entry.report.deepimagej_verdict)
            verdicts[key] = verdicts.get(key, 0) + 1
    line = (
        f"real-world lane: {len(rdfs)} rdfs, {len(all_entries) - len(rdfs)} packages, "
        f"{sum(bool(e.spec_valid) for e in all_entries)} format-valid, "
        f"{sum(fmt_verdict(e) == bool(e.spec_valid) for e in all_entries if e.report)} FMT002 = bioimageio.spec, "
        f"deepImageJ agree {agree}/{len(compared)} ({len(version)} differ by deepImageJ 3's own rules), "
        f"deepImageJ verdicts {dict(sorted(verdicts.items()))}"
    )
    logger.info(line)
    with capsys.disabled():
        print(f"\n{line}")
    assert len(compared) > 0
