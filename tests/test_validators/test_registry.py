"""The registry refuses a rule whose stage or needs is not one it knows (they were free strings)."""

from __future__ import annotations

import pytest

from zoo.validators.registry import NEEDS, RULES, STAGES, rule


@pytest.mark.parametrize(("stage", "needs"), [("reproducton", "descr"), ("files", "description")])
def test_an_unknown_stage_or_needs_is_refused_at_registration(stage, needs):
    with pytest.raises(RuntimeError, match="stage"):
        rule("ZZZ999", "error", "a title", "a fix", stage, needs=needs)(lambda pkg: iter(()))
    assert "ZZZ999" not in RULES


def test_every_registered_rule_has_a_known_stage_and_needs():
    import zoo.validators.checks  # noqa: F401

    assert {r.stage for r in RULES.values()} <= set(STAGES)
    assert {r.needs for r in RULES.values()} <= set(NEEDS)
