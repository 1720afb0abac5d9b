from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictConfig(BaseModel):
    """Base of every config: unknown fields are errors and assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def describe_validation_error(error) -> str:
    """One line from a pydantic ValidationError: each setting (as its --option), the value and what is allowed."""
    problems = []
    errors = error.errors()
    for item in errors[:3]:
        location = [str(part) for part in item.get("loc", ()) if not isinstance(part, int)]
        option = "--" + location[-1].replace("_", "-") if location else "a setting"
        value = item.get("input")
        shown = f" {value!r}" if isinstance(value, (str, int, float)) and len(repr(value)) < 60 else ""
        problems.append(f"{option}{shown}: {str(item.get('msg', 'invalid')).removeprefix('Value error, ')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(problems) + more
