"""The registry of checks: each check is one function with a stable rule ID, a severity, a title and a fix.

`zoo rules` and docs/rules.md are generated from RULES; an ID is never reused for another meaning."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

# error: the package is broken; warning: worth fixing, never fails. deepImageJ rules (RULES.md) also use
# wrong: runs but gives different numbers; risk: may fail depending on the user's install.
Severity = Literal["error", "warning", "info", "wrong", "risk"]
Target = Literal["bioimageio", "deepimagej"]
FAILING_SEVERITIES = ("error", "wrong")
# the order in which checks run and reports group them; a rule's stage is one of these
STAGES = (
    "safety",
    "format",
    "files",
    "tensors",
    "quality",
    "reproduction",
    "cross-format",
    "sizes",
    "determinism",
    "tiling",
    "outputs",
    "devices",
    "performance",
    "deepimagej",
    "deepimagej-emulation",
)
# stages whose checks execute the model: they run isolated
RUNTIME_STAGES = (
    "reproduction",
    "cross-format",
    "sizes",
    "determinism",
    "tiling",
    "outputs",
    "devices",
    "performance",
    "deepimagej-emulation",
)
NEEDS = ("nothing", "rdf", "descr")  # what a check needs: nothing, the raw yaml, a valid description


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    fix: str
    stage: str  # "format", "files", "tensors", "reproduction", ...
    needs: str = "descr"  # what the check needs: "nothing", "rdf" (raw yaml) or "descr" (a valid description)
    target: Target = "bioimageio"  # whose verdict the rule feeds: the package's, or deepImageJ's


@dataclass(frozen=True)
class Finding:
    """One result of one rule; a check yields findings, it never raises for a bad package."""

    rule: Rule
    status: Literal["passed", "failed", "skipped", "warning"]
    message: str
    location: str = ""
    details: dict | None = None

    @property
    def id(self) -> str:
        return self.rule.id


Check = Callable[..., Iterator[Finding]]
RULES: dict[str, Rule] = {}
CHECKS: dict[str, Check] = {}


def rule(
    rule_id: str,
    severity: Severity,
    title: str,
    fix: str,
    stage: str,
    needs: str = "descr",
    target: Target = "bioimageio",
):
    """Register the decorated generator as the check of rule `rule_id`."""

    def register(check: Check) -> Check:
        if rule_id in RULES:
            raise RuntimeError(f"rule ID {rule_id} registered twice ({CHECKS[rule_id].__name__}, {check.__name__})")
        if stage not in STAGES or needs not in NEEDS:
            raise RuntimeError(
                f"rule {rule_id}: stage {stage!r} (one of {', '.join(STAGES)}) and needs {needs!r} (one of "
                f"{', '.join(NEEDS)})"
            )
        RULES[rule_id] = Rule(rule_id, severity, title, fix, stage, needs, target)
        CHECKS[rule_id] = check
        check.rule = RULES[rule_id]
        return check

    return register


def passed(rule_: Rule, message: str, location: str = "", **details) -> Finding:
    return Finding(rule_, "passed", message, location, details or None)


def failed(rule_: Rule, message: str, location: str = "", **details) -> Finding:
    status = "failed" if rule_.severity in FAILING_SEVERITIES else "warning"
    return Finding(rule_, status, message, location, details or None)


def skipped(rule_: Rule, message: str, location: str = "", **details) -> Finding:
    return Finding(rule_, "skipped", message, location, details or None)


def rules_markdown() -> str:
    """docs/rules.md: every registered rule, generated from the registry (never written by hand)."""
    import zoo.validators.checks  # noqa: F401  (registers the rules)

    lines = [
        "# Validation rules",
        "",
        "Generated from zoo's rule registry by `zoo rules --markdown`; do not edit.",
        "",
        "| ID | severity | target | stage | title | fix |",
        "|---|---|---|---|---|---|",
    ]
    for rule_ in sorted(RULES.values(), key=lambda r: r.id):
        cells = [rule_.id, rule_.severity, rule_.target, rule_.stage, rule_.title, rule_.fix]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
