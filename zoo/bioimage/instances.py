"""Instance label images compared object by object: which predicted object matches which true object, and the
scores the field reports for instance segmentation (average precision, F1, panoptic quality, counts).

A label image holds 0 for background and one positive integer per object; the values themselves mean nothing,
so two label images that differ only by a relabelling are equal here. Two objects match at an IoU threshold τ
≥ 0.5 when their intersection over union is at least τ; above 0.5 an object can overlap at most one other object
that much, so the matching is unique without an assignment step (Everingham et al. 2010; the DSB 2018 and StarDist
convention). Training metrics, the validator's instance reproduction rule and the tiled prediction's proof all
count through this one module."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
# bioimage.io post-processing ops whose result is an instance label image
INSTANCE_OPS = ("stardist_postprocessing", "cellpose_flow_dynamics")


def is_instance_output(tensor) -> bool:
    """Whether an output (bioimageio.spec's description of it) is an instance label image: its post-processing
    has an op that makes one."""
    return any(getattr(step, "id", None) in INSTANCE_OPS for step in getattr(tensor, "postprocessing", None) or ())


@dataclass(frozen=True)
class Overlaps:
    """Every pair of a true and a predicted object that share pixels, with their intersection over union."""

    true_ids: np.ndarray  # (n_true,) the label values of the true objects
    pred_ids: np.ndarray  # (n_pred,)
    pairs: np.ndarray  # (k, 2) indices into true_ids, pred_ids
    iou: np.ndarray  # (k,)
    coverage: np.ndarray  # (k,) intersection / the true object's area

    @property
    def n_true(self) -> int:
        return len(self.true_ids)

    @property
    def n_pred(self) -> int:
        return len(self.pred_ids)

    def matches(self, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """(pairs, iou) of the matched objects at `threshold` (≥ 0.5): greedy by IoU, each object used once."""
        if threshold < 0.5:
            raise ValueError(f"IoU threshold {threshold}, expected ≥ 0.5 (below it matches are not unique)")
        keep = np.flatnonzero(self.iou >= threshold)
        keep = keep[np.argsort(-self.iou[keep], kind="stable")]
        used_true, used_pred, chosen = set(), set(), []
        for k in keep:
            t, p = self.pairs[k]
            if t not in used_true and p not in used_pred:
                used_true.add(t)
                used_pred.add(p)
                chosen.append(k)
        chosen = np.array(chosen, dtype=np.int64)
        return self.pairs[chosen].reshape(-1, 2), self.iou[chosen]

    def best_iou_per_true(self) -> np.ndarray:
        """(n_true,) each true object's highest IoU with any predicted object (0 when it overlaps none)."""
        best = np.zeros(self.n_true)
        if len(self.pairs):
            np.maximum.at(best, self.pairs[:, 0], self.iou)
        return best

    def split_true(self, min_fraction: float = 0.1) -> np.ndarray:
        """Indices of true objects covered by two or more predicted objects, each over `min_fraction` of it."""
        if not len(self.pairs):
            return np.zeros(0, dtype=np.int64)
        counts = np.bincount(self.pairs[self.coverage >= min_fraction, 0], minlength=self.n_true)
        return np.flatnonzero(counts >= 2)


def overlaps(truth: np.ndarray, prediction: np.ndarray) -> Overlaps:
    """The overlapping pairs of objects of two label images of one shape (any integer type, 0 = background)."""
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if truth.shape != prediction.shape:
        raise ValueError(f"label images of shapes {truth.shape} and {prediction.shape}, expected one shape")
    for name, labels in (("true", truth), ("predicted", prediction)):
        if labels.dtype.kind not in "iub" and not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"the {name} label image holds non-integer values ({labels.dtype})")
    t = truth.ravel().astype(np.int64)
    p = prediction.ravel().astype(np.int64)
    true_ids, t_index = np.unique(t, return_inverse=True)
    pred_ids, p_index = np.unique(p, return_inverse=True)
    t_fg, p_fg = true_ids > 0, pred_ids > 0
    # dense indices with background at -1
    t_map = np.cumsum(t_fg) - 1
    p_map = np.cumsum(p_fg) - 1
    t_idx = np.where(t_fg[t_index], t_map[t_index], -1)
    p_idx = np.where(p_fg[p_index], p_map[p_index], -1)
    n_true, n_pred = int(t_fg.sum()), int(p_fg.sum())
    t_area = np.bincount(t_idx[t_idx >= 0], minlength=n_true)
    p_area = np.bincount(p_idx[p_idx >= 0], minlength=n_pred)
    both = (t_idx >= 0) & (p_idx >= 0)
    codes, intersection = np.unique(t_idx[both] * max(n_pred, 1) + p_idx[both], return_counts=True)
    pairs = np.stack([codes // max(n_pred, 1), codes % max(n_pred, 1)], axis=1).astype(np.int64)
    union = t_area[pairs[:, 0]] + p_area[pairs[:, 1]] - intersection
    iou = intersection / np.maximum(union, 1)
    coverage = intersection / np.maximum(t_area[pairs[:, 0]], 1)
    return Overlaps(true_ids[t_fg], pred_ids[p_fg], pairs.reshape(-1, 2), iou.astype(np.float64), coverage)


@dataclass
class MatchCounts:
    """Matches at one IoU threshold, summed over images: what every score below is computed from."""

    threshold: float
    tp: int = 0
    fp: int = 0
    fn: int = 0
    matched_iou_sum: float = 0.0

    def add(self, other: MatchCounts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.matched_iou_sum += other.matched_iou_sum

    @property
    def average_precision(self) -> float:
        """TP / (TP + FP + FN): the DSB 2018 and StarDist "average precision" at this threshold (1 when both
        images are empty)."""
        total = self.tp + self.fp + self.fn
        return self.tp / total if total else 1.0

    @property
    def f1(self) -> float:
        total = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / total if total else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def mean_matched_iou(self) -> float:
        return self.matched_iou_sum / self.tp if self.tp else 0.0

    @property
    def panoptic_quality(self) -> float:
        """Σ IoU of matches / (TP + FP/2 + FN/2) (Kirillov et al. 2019): segmentation × recognition quality."""
        total = self.tp + 0.5 * self.fp + 0.5 * self.fn
        return self.matched_iou_sum / total if total else 1.0


def match_counts(found: Overlaps, thresholds: Sequence[float] = IOU_THRESHOLDS) -> list[MatchCounts]:
    """TP, FP, FN and the summed IoU of the matches at each threshold, for one pair of label images."""
    counts = []
    for threshold in thresholds:
        pairs, iou = found.matches(threshold)
        tp = len(pairs)
        counts.append(MatchCounts(float(threshold), tp, found.n_pred - tp, found.n_true - tp, float(iou.sum())))
    return counts


@dataclass
class InstanceScores:
    """Scores pooled over images (counts summed, then divided): one row per IoU threshold."""

    per_threshold: list[MatchCounts]
    n_true: int = 0
    n_pred: int = 0
    n_images: int = 0

    def at(self, threshold: float) -> MatchCounts:
        for counts in self.per_threshold:
            if abs(counts.threshold - threshold) < 1e-9:
                return counts
        raise KeyError(f"IoU threshold {threshold} was not scored ({[c.threshold for c in self.per_threshold]})")

    @property
    def mean_average_precision(self) -> float:
        """Average precision averaged over the thresholds scored."""
        return float(np.mean([c.average_precision for c in self.per_threshold]))


def instance_scores(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], thresholds: Sequence[float] = IOU_THRESHOLDS
) -> InstanceScores:
    """Scores of (true, predicted) label images, pooled over all of them."""
    scores = InstanceScores([MatchCounts(float(t)) for t in thresholds])
    for truth, prediction in pairs:
        found = overlaps(truth, prediction)
        for total, one in zip(scores.per_threshold, match_counts(found, thresholds)):
            total.add(one)
        scores.n_true += found.n_true
        scores.n_pred += found.n_pred
        scores.n_images += 1
    return scores


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """The label image with its objects numbered 1..n in order of their first pixel (row-major), background 0."""
    labels = np.asarray(labels)
    flat = labels.ravel()
    values, first = np.unique(flat, return_index=True)
    order = values[values != 0][np.argsort(first[values != 0], kind="stable")]
    lookup_values = np.concatenate([[0], order])
    new = np.concatenate([[0], np.arange(1, len(order) + 1)])
    sorter = np.argsort(lookup_values)
    mapped = new[sorter][np.searchsorted(lookup_values[sorter], flat)]
    dtype = np.uint16 if len(order) < 2**16 else np.uint32
    return mapped.reshape(labels.shape).astype(dtype)


__all__ = [
    "INSTANCE_OPS",
    "IOU_THRESHOLDS",
    "InstanceScores",
    "MatchCounts",
    "Overlaps",
    "instance_scores",
    "is_instance_output",
    "match_counts",
    "overlaps",
    "relabel_sequential",
]
