"""REP002: an instance label image reproduces its test output object by object.

The numbers in a label image only name objects: two runs that find the same nuclei may number them differently
(a weight format whose probabilities differ in the seventh digit orders two objects the other way), so comparing
label images element by element fails a correct package. Here every object of the test output must be found again,
as one object covering it (intersection over union ≥ MATCH_IOU, unique), every object found must be one of them,
and each matched object must overlap its test object at least MIN_OBJECT_IOU. A renumbered object passes; a lost,
an extra, a split or a merged object fails, with the place of the first such object named.

An output is an instance label image when its post-processing has an op that makes one
(zoo.bioimage.instances.INSTANCE_OPS: stardist_postprocessing, cellpose_flow_dynamics); REP001 leaves such outputs
to this rule, which reuses REP001's run of each weight format on the test input."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from zoo.bioimage.instances import is_instance_output, overlaps
from zoo.validators.context import PackageUnderTest
from zoo.validators.probes import as_arrays, tensor_axes
from zoo.validators.registry import Finding, failed, passed, rule, skipped

logger = logging.getLogger(__name__)

MATCH_IOU = 0.5  # above it a match is unique
MIN_OBJECT_IOU = 0.8  # a matched object may differ by a boundary pixel here and there, not more


def instance_output_ids(descr5) -> list[str]:
    """The outputs of a format-0.5 description that are instance label images."""
    return [str(t.id) for t in getattr(descr5, "outputs", ()) if is_instance_output(t)]


def _planes(array: np.ndarray, axis_types: tuple[str, ...]) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """(index over the non-spatial axes, spatial label plane) of every batch item and channel."""
    other = [i for i, kind in enumerate(axis_types) if kind not in ("space", "time")]
    moved = np.moveaxis(array, other, list(range(len(other))))
    lead = moved.shape[: len(other)]
    return [(index, moved[index]) for index in np.ndindex(*lead)] if lead else [((), moved)]


def compare_instances(actual: np.ndarray, expected: np.ndarray, axis_types: tuple[str, ...]) -> dict:
    """Object-by-object agreement of two label images of one shape (axes of `axis_types`): counts, the fraction of
    expected objects matched, the IoU of the matches, and where the first lost, extra or poorly matched object is."""
    counts = {"expected": 0, "found": 0, "matched": 0, "lost": 0, "extra": 0, "below_iou": 0}
    ious: list[np.ndarray] = []
    first_problem = None
    for (index, want), (_, have) in zip(_planes(expected, axis_types), _planes(actual, axis_types)):
        found = overlaps(want, have)
        pairs, iou = found.matches(MATCH_IOU)
        counts["expected"] += found.n_true
        counts["found"] += found.n_pred
        counts["matched"] += len(pairs)
        counts["lost"] += found.n_true - len(pairs)
        counts["extra"] += found.n_pred - len(pairs)
        counts["below_iou"] += int((iou < MIN_OBJECT_IOU).sum())
        ious.append(iou)
        if first_problem is None:
            first_problem = _first_problem(want, have, found, pairs, iou, index)
    matched_iou = np.concatenate(ious) if ious else np.zeros(0)
    return {
        **{f"objects_{k}": v for k, v in counts.items()},
        "fraction_matched": counts["matched"] / counts["expected"] if counts["expected"] else 1.0,
        "min_iou": float(matched_iou.min()) if matched_iou.size else None,
        "mean_iou": float(matched_iou.mean()) if matched_iou.size else None,
        "first_problem": first_problem,
        "reproduced": counts["lost"] == 0 and counts["extra"] == 0 and counts["below_iou"] == 0,
    }


def _first_problem(want, have, found, pairs, iou, index) -> str | None:
    """A lost object, else an extra one, else the worst matched one: its label and centre in the plane."""

    def centre(labels, value) -> str:
        where = np.argwhere(labels == value).mean(axis=0).round().astype(int)
        return ", ".join(str(int(v)) for v in where)

    plane = f" of plane {index}" if index and any(index) else ""
    lost = sorted(set(range(found.n_true)) - {int(t) for t in pairs[:, 0]})
    if lost:
        value = found.true_ids[lost[0]]
        best = found.best_iou_per_true()[lost[0]]
        return f"test object {value}{plane} at ({centre(want, value)}) is lost (best IoU {best:.2f})"
    extra = sorted(set(range(found.n_pred)) - {int(p) for p in pairs[:, 1]})
    if extra:
        value = found.pred_ids[extra[0]]
        return f"object {value}{plane} at ({centre(have, value)}) is not in the test output"
    if len(iou) and iou.min() < MIN_OBJECT_IOU:
        t = int(pairs[int(np.argmin(iou)), 0])
        value = found.true_ids[t]
        return f"test object {value}{plane} at ({centre(want, value)}) is matched with IoU {iou.min():.2f} only"
    return None


@rule(
    "REP002",
    "error",
    "instance label outputs reproduce their test outputs object by object",
    "Re-create the test output with this weight format, or re-export the weights so that the same objects are "
    "found (numbering may differ).",
    "reproduction",
)
def check_instances_reproduced(pkg: PackageUnderTest) -> Iterator[Finding]:
    from bioimageio.core.digest_spec import get_test_output_sample

    rule_ = check_instances_reproduced.rule
    descr5 = pkg.descr_v05
    ids = instance_output_ids(descr5) if descr5 is not None else []
    if not ids:
        yield skipped(rule_, "no output is an instance label image (stardist_postprocessing, cellpose_flow_dynamics)")
        return
    if any(loc.startswith(("inputs", "outputs", "test_")) for loc in pkg.file_problems):
        yield skipped(rule_, "test tensors are unavailable (see FIL findings)")
        return
    axes = {t.tensor_id: t for t in tensor_axes(descr5, "outputs") if t.tensor_id in ids}
    try:
        expected = as_arrays(get_test_output_sample(pkg.descr), list(axes.values()))
    except Exception as e:
        yield failed(rule_, f"test tensors could not be loaded ({type(e).__name__}: {e})")
        return
    for weight_format in pkg.runnable_formats():
        location = f"weights.{weight_format}"
        try:
            outputs = as_arrays(pkg.test_output(weight_format), list(axes.values()))
        except Exception:  # REP001 reports the failed run
            logger.debug("%s did not run on the test input", weight_format, exc_info=True)
            yield skipped(rule_, f"{weight_format} did not run on the test input (see REP001)", location)
            continue
        for output_id, tensor in axes.items():
            where = f"{location}/outputs[{output_id}]"
            actual, wanted = outputs.get(output_id), expected[output_id]
            if actual is None or actual.shape != wanted.shape:
                shape = None if actual is None else actual.shape
                yield failed(rule_, f"outputs[{output_id}] shape {shape}, expected {wanted.shape}", where)
                continue
            result = compare_instances(actual, wanted, tensor.types)
            summary = (
                f"{result['objects_matched']} of {result['objects_expected']} test objects found again "
                f"({result['fraction_matched']:.0%}), {result['objects_extra']} extra"
                + (f", IoU of the matches ≥ {result['min_iou']:.3f}" if result["min_iou"] is not None else "")
            )
            if result["reproduced"]:
                yield passed(rule_, f"outputs[{output_id}] reproduced object by object: {summary}", where, **result)
            else:
                yield failed(rule_, f"outputs[{output_id}]: {summary}; {result['first_problem']}", where, **result)


__all__ = ["MATCH_IOU", "MIN_OBJECT_IOU", "check_instances_reproduced", "compare_instances", "instance_output_ids"]
