"""TEN: the test tensors are readable, match the described axes, and are worth comparing against."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from zoo.bioimage.rdf import format_version
from zoo.bioimage.rdf_weights import referenced_files
from zoo.bioimage.tensors import TensorSpec
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed, rule

NEAR_ZERO = 1e-4


@dataclass(frozen=True)
class TestTensor:
    kind: str  # "inputs" or "outputs"
    tensor_id: str
    source: str
    location: str
    spec: TensorSpec | None  # the tensor as the rdf describes it, in its own format version
    raw_allowed: bool = False  # formats 0.3/0.4 let a test input be raw (e.g. uint16): pre-processing makes floats


def test_tensors(pkg: PackageUnderTest) -> list[TestTensor]:
    """Test tensors of any format version, from zoo's reading of the rdf: 0.5 `test_tensor` per tensor, 0.3/0.4
    `test_inputs` / `test_outputs` lists beside the tensors."""
    inputs, outputs = pkg.tensor_specs
    specs = {"inputs": inputs, "outputs": outputs}
    legacy = format_version(pkg.rdf or {})[:2] < (0, 5)
    out = []
    for ref in referenced_files(pkg.rdf or {}):
        if ref.role != "test_tensor":
            continue
        parts = ref.location.split(".")
        kind = parts[0] if parts[0] in specs else parts[0].removeprefix("test_")
        index = int(parts[1]) if parts[1].isdigit() else -1
        spec = specs[kind][index] if 0 <= index < len(specs[kind]) else None
        tensor_id = spec.id if spec is not None else str(index)
        out.append(TestTensor(kind, tensor_id, ref.source, ref.location, spec, legacy and kind == "inputs"))
    return out


def load_test_tensor(pkg: PackageUnderTest, tensor: TestTensor) -> np.ndarray:
    return np.load(pkg.root / tensor.source, allow_pickle=False)


def _shape_problem(tensor: TestTensor, array: np.ndarray) -> str | None:
    if tensor.spec is None:
        return None
    axes = tensor.spec.axes
    if array.ndim != len(axes):
        return f"{tensor.kind}[{tensor.tensor_id}] test tensor has shape {array.shape}, expected {len(axes)} axes"
    for axis, size in zip(axes, array.shape):
        if axis.sizes is None or (axis.kind == "batch" and axis.sizes.min == 1 and size == 1):
            continue
        if not axis.sizes.is_valid(size) and not (axis.kind == "channel" and not axis.channel_names):
            return (
                f"{tensor.kind}[{tensor.tensor_id}] axis {axis.id} has size {size} in the test tensor, "
                f"expected {axis.sizes}"
            )
    return None


def _dtype_problem(tensor: TestTensor, array: np.ndarray) -> str | None:
    declared = tensor.spec.data_type if tensor.spec is not None else None
    if not declared or str(array.dtype) == str(declared):
        return None
    if tensor.raw_allowed and (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        return None  # a raw test input, as 0.3/0.4 allowed; the reference casts it too
    return f"{tensor.kind}[{tensor.tensor_id}] test tensor has dtype {array.dtype}, expected {declared}"


@rule(
    "TEN001",
    "error",
    "test tensors are readable .npy files that match the described axes and dtype",
    "Save the test tensor with numpy.save in the shape and dtype the rdf describes.",
    "tensors",
)
def check_test_tensor_matches(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_test_tensor_matches.rule
    problems = 0
    for tensor in test_tensors(pkg):
        if tensor.location in pkg.file_problems:
            continue
        try:
            array = load_test_tensor(pkg, tensor)
        except Exception as e:
            problems += 1
            yield failed(rule_, f"{tensor.source} cannot be read as .npy ({type(e).__name__}: {e})", tensor.location)
            continue
        problem = _shape_problem(tensor, array) or _dtype_problem(tensor, array)
        if problem:
            problems += 1
            yield failed(rule_, problem, tensor.location, shape=list(array.shape), dtype=str(array.dtype))
    if not problems:
        yield passed(rule_, "test tensors readable and consistent with their descriptions")


@rule(
    "TEN002",
    "error",
    "expected test outputs hold no NaN or Inf",
    "Recompute the test output; a NaN or Inf cannot be reproduced or compared.",
    "tensors",
)
def check_test_output_finite(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_test_output_finite.rule
    bad = 0
    for tensor, array in _readable_test_tensors(pkg):
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad += 1
            n_nan, n_inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
            yield failed(
                rule_,
                f"{tensor.kind}[{tensor.tensor_id}] test tensor holds {n_nan} NaN and {n_inf} Inf "
                f"of {array.size} values",
                tensor.location,
                nan=n_nan,
                inf=n_inf,
            )
    if not bad:
        yield passed(rule_, "test tensors are finite")


@rule(
    "TEN003",
    "error",
    "test tensors are not all near zero",
    f"Use a test input with real content; values all within ±{NEAR_ZERO:g} prove nothing.",
    "tensors",
)
def check_test_tensor_not_blank(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_test_tensor_not_blank.rule
    blank = 0
    for tensor, array in _readable_test_tensors(pkg):
        finite = array[np.isfinite(array)] if np.issubdtype(array.dtype, np.floating) else array
        if finite.size and np.abs(finite).max() <= NEAR_ZERO:
            blank += 1
            yield failed(
                rule_,
                f"{tensor.kind}[{tensor.tensor_id}] test tensor values all lie within "
                f"±{NEAR_ZERO:g} (max |v| {float(np.abs(finite).max()):.2e})",
                tensor.location,
            )
    if not blank:
        yield passed(rule_, "test tensors have content")


def _readable_test_tensors(pkg: PackageUnderTest):
    """(tensor, array) for each test tensor whose file is present and readable (TEN001 reports the rest)."""
    for tensor in test_tensors(pkg):
        if tensor.location in pkg.file_problems:
            continue
        try:
            yield tensor, load_test_tensor(pkg, tensor)
        except Exception:
            continue
