"""The validation report: findings in, verdict, exit code and JSON out."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.validators.registry import Finding


@dataclass
class ValidationReport:
    source: str
    findings: list[Finding] = field(default_factory=list)
    name: str | None = None
    format_version: str | None = None
    weight_formats: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    artifacts: str | None = None  # folder of the produced outputs (`keep_artifacts`), for the HTML report's images

    @property
    def status(self) -> str:
        """The package's verdict as bioimage.io sees it; deepImageJ rules have their own verdict."""
        return "failed" if self.failed() else "passed"

    @property
    def deepimagej_verdict(self) -> str | None:
        """runs / runs with risks / runs but gives different numbers / will not run; None if not checked (no
        deepImageJ rule ran, e.g. the rdf is unreadable)."""
        findings = [f for f in self.findings if f.rule.target == "deepimagej" and f.status != "skipped"]
        if not findings:
            return None
        problems = {f.rule.severity for f in findings if f.status in ("failed", "warning")}
        if "error" in problems:
            return "will not run"
        if "wrong" in problems:
            return "runs but gives different numbers"
        if "risk" in problems:
            return "runs with risks"
        return "runs"

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "passed" else 1

    def exit_code_for(self, target: str) -> int:
        """With target deepimagej, a package that will not run or gives different numbers also fails."""
        if target == "deepimagej" and self.deepimagej_verdict in ("will not run", "runs but gives different numbers"):
            return 1
        return self.exit_code

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

    def to_dict(self) -> dict[str, Any]:
        from zoo import __version__

        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.status] = counts.get(finding.status, 0) + 1
        return {
            "status": self.status,
            "source": self.source,
            "name": self.name,
            "format_version": self.format_version,
            "weight_formats": self.weight_formats,
            "zoo_version": __version__,
            "duration_s": round(self.duration_s, 3),
            "counts": counts,
            "performance": self.performance,
            "deepimagej": {
                "verdict": self.deepimagej_verdict,
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

    def write_json(self, path: Path) -> Path:
        """Atomically: a reader never sees half a report."""
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=2))


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
