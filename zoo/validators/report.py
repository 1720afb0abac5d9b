"""Over 400 lines on purpose: the verdict and the report that carries it are one thing, with no clean seam.

The validation report: findings in, one verdict out, the same in every output.

`verdict(target)` is the only place that decides a package's status, its exit code, the reason and the
finding counts; the terminal, JSON, Markdown, HTML, JUnit and the collection's summary and dashboard all
print what it returns.

Statuses and exit codes (exit 2 is the CLI's usage or input error, never a verdict):

- `passed` (0): nothing fails for the target and a model ran and reproduced its test outputs (a passed
  REP001 finding, or REP002 for instance label images); with target deepimagej the deepImageJ verdict is also
  *runs* or *runs with risks*. When the package records poor quality of its own (QUA002/QUA003 warnings, a
  `--quick` smoke test) the reason says so and `quality` repeats it: a package that reproduces useless outputs
  is never a plain "passed".
- `failed` (1): a finding fails for the target (a failed bioimage.io rule; with target deepimagej also a
  failed deepImageJ rule: *will not run* or *runs but gives different numbers*).
- `not verified` (3): nothing failed, but nothing was verified either: no weight format could be run
  (it needs `--trust`, its file is absent or only at a URL, the test tensors are unavailable), or, with
  target deepimagej, deepImageJ's verdict is *cannot judge* or no deepImageJ rule ran.

The deepImageJ verdict: *will not run* (a failed rule of severity error), *runs but gives different numbers*
(severity wrong), *cannot judge*, *runs with risks* (severity risk), *runs*; None when no deepImageJ rule
judged anything. A deepImageJ check that cannot judge because the files it needs are absent (a lone rdf.yaml
whose weight files are missing) says so with a skipped finding whose details hold `cannot_judge=True`
(`skipped(rule_, message, location, cannot_judge=True, missing=[...])`), never with a failed one. A failed
rule of severity error or wrong is a proof and still wins over *cannot judge*; *cannot judge* wins over
*runs with risks* and *runs*. A skipped finding without that detail (the rdf is unreadable) judges nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.bioimage.files import write_text_atomic
from zoo.validators.registry import Finding

PASSED, FAILED, NOT_VERIFIED = "passed", "failed", "not verified"
EXIT_CODES = {PASSED: 0, FAILED: 1, NOT_VERIFIED: 3}  # 2: the CLI's usage or input error
TARGETS = ("bioimageio", "deepimagej")
REPORT_SUFFIXES = {
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xml": "junit",
}

RUNS, RUNS_WITH_RISKS, DIFFERENT_NUMBERS, WILL_NOT_RUN, CANNOT_JUDGE = (
    "runs",
    "runs with risks",
    "runs but gives different numbers",
    "will not run",
    "cannot judge",
)
DEEPIMAGEJ_FAILING = (WILL_NOT_RUN, DIFFERENT_NUMBERS)
INTERNAL_ERROR_DETAIL = "internal_error"  # details key of a skipped finding whose check crashed (zoo's bug)
CANNOT_JUDGE_DETAIL = "cannot_judge"  # details key of a skipped deepImageJ finding that lacks the files it needs

# the finding counts, in the order every output prints them; they add up to the number of findings.
# "failed": findings that fail for the target; "failed_other_target": failed deepImageJ findings when the
# target is bioimageio (reported, never failing).
COUNT_KEYS = ("failed", "warning", "passed", "skipped", "failed_other_target")
# why a weight format was not run (Verdict.unverified), and how the reason says it
UNVERIFIED_CAUSES = {
    "needs_trust": "needs --trust",
    "file_absent": "its file is absent",
    "only_at_url": "its file is only at a URL",
    "sha256_mismatch": "its file does not match its sha256",
    "test_tensors_unavailable": "the test tensors are unavailable",
    "no_model_run": "no reproduction check ran",
    "not_run": "not run",
}
_FILE_CAUSES = {"FIL001": "file_absent", "FIL003": "only_at_url", "FIL002": "sha256_mismatch"}
COUNT_LABELS = {
    "failed": "failed",
    "warning": "warnings",
    "passed": "passed",
    "skipped": "skipped",
    "failed_other_target": "failed for deepImageJ only",
}


def fails_for(finding: Finding, target: str) -> bool:
    """A failed deepImageJ finding fails the run only when the target is deepimagej."""
    return finding.status == "failed" and (finding.rule.target == "bioimageio" or target == "deepimagej")


def count_findings(findings: list[Finding], target: str = "bioimageio") -> dict[str, int]:
    """Findings per COUNT_KEYS for `target`: the one count every writer prints."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for finding in findings:
        if finding.status == "failed":
            counts["failed" if fails_for(finding, target) else "failed_other_target"] += 1
        else:
            counts[finding.status] = counts.get(finding.status, 0) + 1
    return counts


def counts_text(counts: dict[str, int]) -> str:
    """ "3 failed, 2 warnings, 80 passed, 4 skipped" (and the deepImageJ-only failures when there are any)."""
    shown = [key for key in COUNT_KEYS if key != "failed_other_target" or counts.get(key)]
    return ", ".join(f"{counts.get(key, 0)} {_label(key, counts.get(key, 0))}" for key in shown)


def _label(key: str, count: int) -> str:
    """ "1 warning", "2 warnings" (the other labels read the same for one and many)."""
    return COUNT_LABELS[key].removesuffix("s") if key == "warning" and count == 1 else COUNT_LABELS[key]


@dataclass(frozen=True)
class Verdict:
    """What a report means for one target: status, exit code, why, and the finding counts."""

    status: str  # passed / failed / not verified
    target: str
    reason: str  # why it is not passed; when passed, "" or what the package records about its poor quality
    counts: dict[str, int]
    deepimagej: str | None  # deepImageJ's own verdict; None when not checked
    failing_rules: tuple[str, ...] = ()
    # why nothing was verified, per weight format ("" for the test tensors or the whole package): UNVERIFIED_CAUSES
    unverified: dict[str, str] = field(default_factory=dict)
    # what the package records about its own quality when that is poor (QUA rules): "" when fine or unrecorded
    quality: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "target": self.target,
            "reason": self.reason,
            "counts": dict(self.counts),
            "deepimagej": self.deepimagej,
            "failing_rules": list(self.failing_rules),
            "unverified": dict(self.unverified),
            "quality": self.quality,
        }


@dataclass
class ValidationReport:
    source: str
    findings: list[Finding] = field(default_factory=list)
    name: str | None = None
    format_version: str | None = None
    weight_formats: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    artifacts: str | None = None  # folder of the produced outputs (`keep_artifacts`), for the HTML report's images
    sandbox: dict | None = None  # what confined the processes that ran the weights (zoo.bioimage.sandbox)

    def verdict(self, target: str = "bioimageio") -> Verdict:
        """The package's verdict for `target` (see the module docstring): the one every output prints."""
        if target not in TARGETS:
            raise ValueError(f"target {target!r}: choose one of {', '.join(TARGETS)}")
        counts = count_findings(self.findings, target)
        dij = self.deepimagej_verdict
        failing = tuple(sorted({f.id for f in self.findings if fails_for(f, target)}))
        if failing:
            return Verdict(FAILED, target, f"failed: {', '.join(failing)}", counts, dij, failing)
        if target == "deepimagej" and dij in DEEPIMAGEJ_FAILING:  # never without a failing finding, but be sure
            return Verdict(FAILED, target, f"failed: deepImageJ {dij}", counts, dij)
        unverified = self._unverified_causes()
        if unverified:
            causes = "; ".join(
                f"{what} {UNVERIFIED_CAUSES[cause]}" if what else UNVERIFIED_CAUSES[cause]
                for what, cause in unverified.items()
            )
            return Verdict(
                NOT_VERIFIED,
                target,
                f"not verified: no weights could be run ({causes})",
                counts,
                dij,
                unverified=unverified,
            )
        crashed = sorted(
            {
                f.id
                for f in self.findings
                if (f.details or {}).get(INTERNAL_ERROR_DETAIL)
                and (f.rule.target == "bioimageio" or target == "deepimagej")
            }
        )
        if crashed:  # zoo's own bug: neither a pass nor a failure of the package
            return Verdict(
                NOT_VERIFIED,
                target,
                f"not verified: zoo could not judge {', '.join(crashed)} (an "
                "internal error, see the finding; please report it)",
                counts,
                dij,
            )
        if target == "deepimagej" and dij in (None, CANNOT_JUDGE):
            why = self._cannot_judge_reason() if dij == CANNOT_JUDGE else "no deepImageJ rule ran"
            return Verdict(
                NOT_VERIFIED, target, f"not verified: deepImageJ {dij or 'not checked'} ({why})", counts, dij
            )
        quality = self.quality_note()
        reason = f"passed as a package (it reproduces its test outputs), but {quality}" if quality else ""
        return Verdict(PASSED, target, reason, counts, dij, quality=quality)

    def quality_note(self) -> str:
        """The package's own record of poor quality (QUA002, QUA003; a --quick smoke test), or "" when none."""
        notes = [f.message for rule_id in ("QUA002", "QUA003") for f in self.by_id(rule_id) if f.status == "warning"]
        if any((f.details or {}).get("smoke_test") for f in self.by_id("QUA001")):
            notes.append("it is a --quick smoke test, not a model to use")
        return "; ".join(notes)

    @property
    def status(self) -> str:
        """The package's verdict for bioimage.io (`verdict("bioimageio").status`)."""
        return self.verdict().status

    @property
    def deepimagej_verdict(self) -> str | None:
        """runs / runs with risks / runs but gives different numbers / will not run / cannot judge; None if not
        checked (no deepImageJ rule judged anything, e.g. the rdf is unreadable)."""
        findings = [f for f in self.findings if f.rule.target == "deepimagej"]
        judged = [f for f in findings if f.status != "skipped"]
        cannot_judge = [f for f in findings if _cannot_judge(f)]
        if not judged and not cannot_judge:
            return None
        problems = {f.rule.severity for f in judged if f.status in ("failed", "warning")}
        if "error" in problems:
            return WILL_NOT_RUN
        if "wrong" in problems:
            return DIFFERENT_NUMBERS
        if cannot_judge:
            return CANNOT_JUDGE
        if "risk" in problems:
            return RUNS_WITH_RISKS
        return RUNS

    @property
    def exit_code(self) -> int:
        return self.verdict().exit_code

    def exit_code_for(self, target: str) -> int:
        return self.verdict(target).exit_code

    def _unverified_causes(self) -> dict[str, str]:
        """Why no model was verified, per weight format ({} when one ran and reproduced its test outputs)."""
        from zoo.bioimage.formats import CODE_EXECUTING_FORMATS

        reproduction = self.by_id("REP001")
        if any(f.status == "passed" for f in [*reproduction, *self.by_id("REP002")]):  # REP002: instance labels
            return {}
        if not reproduction:
            return {"": "no_model_run"}
        causes: dict[str, str] = {}
        for finding in reproduction:
            if not finding.location.startswith("weights."):
                causes[""] = "test_tensors_unavailable"
                continue
            weight_format = finding.location.removeprefix("weights.").split("/")[0]
            where = f"weights.{weight_format}"
            file_causes = [
                cause
                for rule_id, cause in _FILE_CAUSES.items()
                if any(f.status != "passed" and f.location.startswith(where) for f in self.by_id(rule_id))
            ]
            if file_causes:
                causes[weight_format] = file_causes[0]
            elif weight_format in CODE_EXECUTING_FORMATS:
                causes[weight_format] = "needs_trust"
            else:
                causes[weight_format] = "not_run"
        return causes

    def _cannot_judge_reason(self) -> str:
        missing = sorted(
            {str(m) for f in self.findings if _cannot_judge(f) for m in ((f.details or {}).get("missing") or [])}
        )
        return f"absent: {', '.join(missing)}" if missing else "the files its rules need are absent"

    def failed(self, target: str = "bioimageio") -> list[Finding]:
        return [f for f in self.findings if f.status == "failed" and f.rule.target == target]

    def by_id(self, rule_id: str) -> list[Finding]:
        return [f for f in self.findings if f.id == rule_id]

    @property
    def performance(self) -> list[dict[str, Any]]:
        """Time and peak memory of one inference per weight format (PRF001), for the report's table."""
        return [
            {key: _jsonable(value) for key, value in f.details.items()}
            for f in self.findings
            if f.id == "PRF001" and f.status == "passed" and f.details
        ]

    def to_dict(self, target: str = "bioimageio") -> dict[str, Any]:
        """The report for `target`: status, exit code, reason and counts are `verdict(target)`'s."""
        from zoo.version import __version__

        verdict = self.verdict(target)
        return {
            "status": verdict.status,
            "exit_code": verdict.exit_code,
            "target": target,
            "reason": verdict.reason,
            "quality": verdict.quality,
            "unverified": verdict.unverified,
            "source": self.source,
            "name": self.name,
            "format_version": self.format_version,
            "weight_formats": self.weight_formats,
            "zoo_version": __version__,
            "duration_s": round(self.duration_s, 3),
            "counts": verdict.counts,
            "performance": self.performance,
            "sandbox": self.sandbox,
            "deepimagej": {
                "verdict": verdict.deepimagej,
                "rules": sorted(
                    {f.id for f in self.findings if f.rule.target == "deepimagej" and f.status in ("failed", "warning")}
                ),
            },
            "checks": [
                {
                    "id": f.id,
                    "status": f.status,
                    "severity": f.rule.severity,
                    "target": f.rule.target,
                    "title": f.rule.title,
                    "message": f.message,
                    "location": f.location,
                    "fix": f.rule.fix if f.status in ("failed", "warning") else "",
                    "details": _jsonable(f.details or {}),
                }
                for f in self.findings
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """The report that `to_dict` wrote (a cached result); rules come from the registry by ID."""
        import zoo.validators.checks  # noqa: F401  (registers the rules)
        from zoo.validators.registry import RULES, Rule

        findings = []
        for check in data.get("checks", []):
            rule_ = RULES.get(check["id"]) or Rule(
                check["id"],
                check["severity"],
                check["title"],
                check.get("fix", ""),
                stage="unknown",
                target=check.get("target", "bioimageio"),
            )
            findings.append(
                Finding(
                    rule_, check["status"], check["message"], check.get("location", ""), check.get("details") or None
                )
            )
        return cls(
            source=data["source"],
            findings=findings,
            name=data.get("name"),
            format_version=data.get("format_version"),
            weight_formats=list(data.get("weight_formats", [])),
            duration_s=float(data.get("duration_s", 0.0)),
        )

    def write_json(self, path: Path, target: str = "bioimageio") -> Path:
        """Atomically: a reader never sees half a report."""
        return write_text_atomic(path, json.dumps(self.to_dict(target), indent=2))

    def write(self, path: Path | str, target: str = "bioimageio", kind: str | None = None) -> Path:
        """Write the report in the format its suffix names (.json, .md, .html, .xml for JUnit), or `kind`
        (json, markdown, html, junit); atomically."""
        from zoo.validators import writers

        path = Path(path)
        kind = kind or REPORT_SUFFIXES.get(path.suffix.lower())
        write = {
            "json": self.write_json,
            "markdown": lambda p, target: writers.write_markdown(self, p, target=target),
            "html": lambda p, target: writers.write_html(self, p, target=target),
            "junit": lambda p, target: writers.write_junit(self, p, target=target),
        }.get(kind or "")
        if write is None:
            raise ValueError(
                f"{path.name}: cannot tell the report format from {path.suffix or 'no suffix'!r}; use .json, .md, "
                ".html or .xml, or give kind=json|markdown|html|junit"
            )
        return write(path, target=target)


def _cannot_judge(finding: Finding) -> bool:
    """A deepImageJ finding that could not judge because the files it needs are absent."""
    return (
        finding.rule.target == "deepimagej"
        and finding.status == "skipped"
        and bool((finding.details or {}).get(CANNOT_JUDGE_DETAIL))
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)
