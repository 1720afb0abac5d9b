"""Metrics on the held-out test split, pooled over all test images."""

from __future__ import annotations

import numpy as np


def iou(prediction: np.ndarray, mask: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of the thresholded prediction, pooled over all pixels."""
    predicted = prediction > threshold
    truth = mask > 0
    union = np.logical_or(predicted, truth).sum()
    return float(np.logical_and(predicted, truth).sum() / union) if union else 1.0


def class_ious(predicted: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float]:
    """IoU of every class between predicted and true label maps (NaN for a class in neither)."""
    ious = []
    for k in range(n_classes):
        p, t = predicted == k, labels == k
        union = np.logical_or(p, t).sum()
        ious.append(float(np.logical_and(p, t).sum() / union) if union else float("nan"))
    return ious


def psnr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, with the reference's range as the peak."""
    data_range = float(reference.max() - reference.min()) or 1.0
    mse = float(np.mean((estimate.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(data_range**2 / mse)


def ssim(estimate: np.ndarray, reference: np.ndarray, sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004) with a Gaussian window, the reference's range as data range."""
    from scipy.ndimage import gaussian_filter

    x, y = estimate.astype(np.float64), reference.astype(np.float64)
    data_range = float(y.max() - y.min()) or 1.0
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = gaussian_filter(x, sigma), gaussian_filter(y, sigma)
    vx = gaussian_filter(x * x, sigma) - mx * mx
    vy = gaussian_filter(y * y, sigma) - my * my
    cxy = gaussian_filter(x * y, sigma) - mx * my
    value = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(value.mean())


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix
