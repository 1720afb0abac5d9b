"""Instance segmentation metrics for a trained model: the scores of zoo.bioimage.instances as the metric names a
checkpoint records, and the post-processing thresholds chosen on the validation split."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zoo.bioimage.instances import IOU_THRESHOLDS, InstanceScores, instance_scores
from zoo.bioimage.star_convex import StarConvexParams, find_candidates, render

logger = logging.getLogger(__name__)

# IoU thresholds whose average precision and F1 the checkpoint records, by metric name suffix
REPORTED_AP = {"50": 0.5, "60": 0.6, "70": 0.7, "75": 0.75, "80": 0.8, "90": 0.9}
REPORTED_F1 = {"50": 0.5, "75": 0.75, "90": 0.9}
PROB_THRESHOLDS = tuple(round(float(t), 3) for t in np.linspace(0.3, 0.8, 11))
NMS_THRESHOLDS = (0.3, 0.4, 0.5)
MAX_CANDIDATE_FRACTION = 0.5


def instance_metrics(scores: InstanceScores, prefix: str = "test_") -> dict[str, float]:
    """The recorded metrics: AP and F1 at the reported IoU thresholds, their mean AP over 0.5-0.9, panoptic quality
    and mean matched IoU at 0.5, and the object counts (true, found, relative count error)."""
    half = scores.at(0.5)
    metrics = {  # the first three are what `zoo train` shows
        f"{prefix}ap_50": half.average_precision,
        f"{prefix}ap_75": scores.at(0.75).average_precision,
        f"{prefix}panoptic_quality": half.panoptic_quality,
    }
    metrics.update({f"{prefix}ap_{name}": scores.at(t).average_precision for name, t in REPORTED_AP.items()})
    metrics.update({f"{prefix}f1_{name}": scores.at(t).f1 for name, t in REPORTED_F1.items()})
    metrics.update(
        {
            f"{prefix}mean_ap": scores.mean_average_precision,
            f"{prefix}matched_iou": half.mean_matched_iou,
            f"{prefix}objects_true": float(scores.n_true),
            f"{prefix}objects_found": float(scores.n_pred),
            f"{prefix}count_error": (scores.n_pred - scores.n_true) / scores.n_true if scores.n_true else 0.0,
        }
    )
    return metrics


@dataclass(frozen=True)
class ThresholdChoice:
    prob_threshold: float
    nms_threshold: float
    mean_ap: float  # on the validation split, averaged over IOU_THRESHOLDS
    tried: int
    skipped: tuple[float, ...] = ()  # probability thresholds that made over MAX_CANDIDATE_FRACTION of pixels candidates

    def to_dict(self) -> dict[str, float]:
        return {
            "prob_threshold": self.prob_threshold,
            "nms_threshold": self.nms_threshold,
            "validation_mean_ap": self.mean_ap,
            "combinations_tried": self.tried,
            **({"prob_thresholds_skipped": list(self.skipped)} if self.skipped else {}),
        }


def choose_thresholds(
    outputs: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    n_rays: int,
    prob_thresholds: Sequence[float] = PROB_THRESHOLDS,
    nms_thresholds: Sequence[float] = NMS_THRESHOLDS,
) -> ThresholdChoice:
    """The probability and NMS thresholds with the best mean average precision (IoU 0.5-0.9, pooled) on the
    (validation) outputs, channels first (1 + n_rays, y, x), against `truths`; among equal scores (an untrained
    network scores 0 everywhere) the one whose object count is nearest the true count, then the first tried.

    Non-maximum suppression keeps candidates in order of probability, so its survivors at a higher probability
    threshold are those at a lower one that lie above it: one suppression per image and NMS threshold, at the lowest
    probability threshold tried, serves them all. Probability thresholds that make more than MAX_CANDIDATE_FRACTION
    of an image's pixels candidates (an untrained network's flat probability) are skipped: no useful model needs
    them, and suppressing that many polygons takes minutes."""
    usable = [
        p for p in sorted(prob_thresholds) if all(_fraction_above(o, p) <= MAX_CANDIDATE_FRACTION for o in outputs)
    ]
    skipped = tuple(float(p) for p in sorted(prob_thresholds) if p not in usable)
    usable = usable or [max(prob_thresholds)]
    best, best_key, tried = None, None, 0
    for nms in nms_thresholds:
        found = [find_candidates(o, StarConvexParams(n_rays, usable[0], nms)) for o in outputs]
        for prob in usable:
            labels = [render(c.take(c.prob > prob), o.shape[1:]) for c, o in zip(found, outputs)]
            scores = instance_scores(zip(truths, labels), IOU_THRESHOLDS)
            tried += 1
            key = (scores.mean_average_precision, -abs(scores.n_pred - scores.n_true))  # ties: the better count
            if best_key is None or key > best_key:
                best, best_key = (float(prob), float(nms), float(scores.mean_average_precision)), key
    logger.info(
        "thresholds chosen on %d validation images: probability %.3f, NMS %.2f (mean AP %.3f)", len(outputs), *best
    )
    return ThresholdChoice(*best, tried, skipped)


def _fraction_above(output: np.ndarray, threshold: float) -> float:
    return float((np.asarray(output[0]) > threshold).mean())


__all__ = ["NMS_THRESHOLDS", "PROB_THRESHOLDS", "ThresholdChoice", "choose_thresholds", "instance_metrics"]
