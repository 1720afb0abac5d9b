"""Cover images per task: what the model takes and what it gives, side by side (bioimage.io covers are 2:1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# colours of class labels in covers (background black)
PALETTE = np.array(
    [
        [0, 0, 0],
        [230, 159, 0],
        [86, 180, 233],
        [0, 158, 115],
        [240, 228, 66],
        [0, 114, 178],
        [213, 94, 0],
        [204, 121, 167],
    ],
    dtype=np.uint8,
)


def _grey(image: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    low = float(np.percentile(image, 1)) if low is None else low
    high = float(np.percentile(image, 99.5)) if high is None else high
    scaled = (image.astype(np.float64) - low) / max(high - low, 1e-12)
    grey = (np.clip(scaled, 0, 1) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def _middle_plane(image: np.ndarray) -> np.ndarray:
    """A 2D view of a 2D image or the middle z plane of a volume."""
    return image[image.shape[0] // 2] if image.ndim == 3 else image


def _bars(probabilities: np.ndarray, height: int) -> np.ndarray:
    """A bar chart of class probabilities on white, one coloured bar per class, as tall as the input panel."""
    k = len(probabilities)
    bar, gap = max(4, height // (2 * k)), max(2, height // (4 * k))
    width = k * (bar + gap) + gap
    panel = np.full((height, width, 3), 255, np.uint8)
    for i, p in enumerate(np.clip(probabilities, 0, 1)):
        top = height - int(round(float(p) * (height - 2)))
        panel[top:, gap + i * (bar + gap) : gap + i * (bar + gap) + bar] = PALETTE[(i + 1) % len(PALETTE)]
    return panel


def _outlines(grey: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The grey image with every object's outline drawn in a colour of PALETTE (one per label, cycling): the
    pixels of an object that touch another label or the background."""
    labels = np.asarray(labels, dtype=np.int64)
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dy : dy + labels.shape[0], dx : dx + labels.shape[1]] != centre
    edge &= labels > 0
    shown = grey.copy()
    shown[edge] = PALETTE[1 + (labels[edge] - 1) % (len(PALETTE) - 1)]
    return shown


def render_task_cover(kind: str, raw: np.ndarray, output: np.ndarray, path: Path) -> Path:
    """`raw`: the input image (2D or 3D); `output`: the model's output for it without batch axis — channels
    first for dense tasks, the class probabilities for classification, the label image for instances (shown as
    outlines on the input)."""
    import imageio.v3 as iio

    image = _middle_plane(raw)
    left = _grey(image)
    if kind == "classification":
        right = _bars(np.asarray(output, dtype=np.float64).ravel(), left.shape[0])
    else:
        channels = output if output.ndim == raw.ndim + 1 else output[None]
        channels = np.stack([_middle_plane(c) for c in channels])
        if kind == "multiclass":
            right = PALETTE[np.argmax(channels, axis=0) % len(PALETTE)]
        elif kind == "restoration":
            right = _grey(channels[0])
        elif kind == "instances":
            right = _outlines(left, channels[0])
        else:
            right = _grey(channels[0], 0.0, 1.0)
    gap = np.full((left.shape[0], max(2, left.shape[1] // 32), 3), 255, np.uint8)
    iio.imwrite(path, np.concatenate([left, gap, right], axis=1))
    return path
