"""Proof that an exported copy computes what its source model computes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# sigmoid/probability outputs: an exported copy that differs by more than this is not shipped
AGREEMENT_ATOL = 1e-4


@dataclass(frozen=True)
class CaseDifference:
    case: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    mismatched: int
    worst_index: tuple[int, ...]


@dataclass
class Agreement:
    weight_format: str
    atol: float
    cases: list[CaseDifference] = field(default_factory=list)

    @property
    def max_abs(self) -> float:
        return max((c.max_abs for c in self.cases), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((c.max_rel for c in self.cases), default=0.0)

    @property
    def mismatched(self) -> int:
        return sum(c.mismatched for c in self.cases)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and self.mismatched == 0

    def summary(self) -> str:
        sizes = ", ".join("x".join(map(str, c.shape)) for c in self.cases)
        return (
            f"agrees with its source on {len(self.cases)} inputs ({sizes}): max |Δ| {self.max_abs:.2e}, "
            f"max rel {self.max_rel:.2e}, {self.mismatched} elements over {self.atol:g}"
        )

    def to_dict(self) -> dict:
        return {
            "atol": self.atol,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "mismatched": self.mismatched,
            "passed": self.passed,
            "cases": {
                c.case: {
                    "shape": "x".join(map(str, c.shape)),
                    "max_abs": c.max_abs,
                    "max_rel": c.max_rel,
                    "mismatched": c.mismatched,
                }
                for c in self.cases
            },
        }


def compare_arrays(case: str, expected: np.ndarray, actual: np.ndarray, atol: float) -> CaseDifference:
    if expected.shape != actual.shape:
        return CaseDifference(case, tuple(actual.shape), float("inf"), float("inf"), int(expected.size), ())
    difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    difference = np.where(np.isnan(difference), np.inf, difference)
    worst = np.unravel_index(int(np.argmax(difference)), difference.shape)
    relative = difference / np.maximum(np.abs(expected.astype(np.float64)), 1e-6)
    return CaseDifference(
        case=case,
        shape=tuple(expected.shape),
        max_abs=float(difference.max()),
        max_rel=float(relative.max()),
        mismatched=int((difference > atol).sum()),
        worst_index=tuple(int(i) for i in worst),
    )


def measure_agreement(
    weight_format: str,
    reference: Callable[[np.ndarray], np.ndarray],
    candidate: Callable[[np.ndarray], np.ndarray],
    inputs: dict[str, np.ndarray],
    atol: float = AGREEMENT_ATOL,
) -> Agreement:
    """Run both on every input and record the differences, case by case."""
    agreement = Agreement(weight_format, atol)
    for case, x in inputs.items():
        agreement.cases.append(compare_arrays(case, reference(x), candidate(x), atol))
    return agreement


def agreement_inputs(
    test_input: np.ndarray, min_size: int, step: int, layout: str = "bcyx", seed: int = 0, max_batch: int = 2
) -> dict[str, np.ndarray]:
    """The test input plus random inputs at the smallest allowed size, a non-square size and a middle size
    with batch 2, in the model's layout ("bcyx", "bczyx" or "byxc"). `step` 0 means the model takes exactly
    `min_size`: then the random inputs only vary the batch."""
    rng = np.random.default_rng(seed)
    channels = test_input.shape[layout.index("c")]

    def shape(batch: int, *sizes: int) -> tuple[int, ...]:
        spatial = [a for a in layout if a in "zyx"]
        by_axis = {"b": batch, "c": channels, **dict(zip(spatial, sizes[-len(spatial) :]))}
        return tuple(by_axis[axis] for axis in layout)

    if step == 0:
        shapes = {
            "random": shape(1, min_size, min_size, min_size),
            "random, batch 2": shape(2, min_size, min_size, min_size),
        }
    else:
        shapes = {
            "smallest": shape(1, min_size, min_size, min_size),
            "non-square": shape(1, min_size, min_size + step, min_size + 3 * step),
            "middle, batch 2": shape(2, min_size + step, min_size + 2 * step, min_size + 2 * step),
        }
    inputs = {"test input": test_input.astype(np.float32)}
    for name, input_shape in shapes.items():
        if "b" in layout and input_shape[layout.index("b")] > max_batch:
            continue
        inputs[name] = rng.standard_normal(input_shape).astype(np.float32)
    return inputs
