"""A user's folder for instance segmentation: ``images/<name>.tif`` with ``masks/<name>.tif`` holding instance
labels (0 background, one positive whole number per object; the numbers need not be consecutive).

Read with ``zoo.data.folder``'s pair reader (layout, names, shapes, finite values, minimum size, checksum); the
checks here judge the labels. A ``DataError`` (one line naming the file, what was found and the fix) for labels
that cannot be instances: fractions, negative numbers, a binary mask whose one value covers several separate
objects (touching objects could not be told apart), or no object in any mask. Warnings for what can be trained on
but may not be meant: a few empty masks, objects of a few pixels, objects in several separate pieces (a star-convex
object is one piece around its centre).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from scipy import ndimage

from zoo.data.checks import MinSize, list_names
from zoo.data.folder import FolderData, _load_pairs, _warn
from zoo.errors import DataError

logger = logging.getLogger(__name__)

SMALL_OBJECT_PIXELS = 9  # objects below this (3x3) carry no shape to learn
INSTANCE_LAYOUT = "images/<name>.tif + masks/<name>.tif (instance labels: 0 background, one number per object)"


def _check_values(path: Path, labels: np.ndarray) -> None:
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
        raise DataError(
            f"{path} holds fractional values ({labels.dtype}); instance labels are whole numbers, one per object: "
            "save them in an integer TIFF"
        )
    if labels.dtype.kind == "b":
        return
    low = labels.min() if labels.size else 0
    if low < 0:
        raise DataError(f"{path} holds the negative label {low}; instance labels are 0 (background) or positive")


def _check_not_binary(path: Path, labels: np.ndarray) -> None:
    """One object value for several separate objects is a binary mask: its touching objects cannot be told apart."""
    values = np.unique(labels[labels != 0])
    if len(values) != 1:
        return
    _, pieces = ndimage.label(labels != 0)
    if pieces > 1:
        raise DataError(
            f"{path} holds the one value {values[0]} for {pieces} separate objects: a binary mask, not instance "
            "labels; number each object with its own value (e.g. skimage.measure.label on the mask)"
        )


def _object_findings(labels: np.ndarray) -> tuple[int, int, int]:
    """(objects, objects under SMALL_OBJECT_PIXELS, objects in more than one piece) of one label image."""
    ids, areas = np.unique(labels[labels != 0], return_counts=True)
    pieces_of = 0
    for index, box in enumerate(ndimage.find_objects(labels.astype(np.int64))):
        if box is not None and ndimage.label(labels[box] == index + 1)[1] > 1:
            pieces_of += 1
    return len(ids), int((areas < SMALL_OBJECT_PIXELS).sum()), pieces_of


def check_instance_labels(masks_dir: Path, paths: list[Path], masks: list[np.ndarray]) -> list[str]:
    """Raise a DataError for labels that cannot be instances; return the warnings for what may not be meant."""
    counts = []
    for path, labels in zip(paths, masks, strict=True):
        _check_values(path, labels)
        _check_not_binary(path, labels)
        counts.append(_object_findings(np.asarray(labels, dtype=np.int64)))
    empty = [path.name for path, (n, _, _) in zip(paths, counts) if n == 0]
    if len(empty) == len(paths):
        raise DataError(
            f"every mask in {masks_dir} is empty ({len(paths)} files): label the objects (0 background, one number "
            "per object)"
        )
    warnings = []
    if empty:
        warnings.append(
            f"{len(empty)} of {len(paths)} masks in {masks_dir} hold no object ({list_names(empty)}): they teach "
            "only background; remove them if objects were not labelled"
        )
    small = sum(c[1] for c in counts)
    if small:
        warnings.append(
            f"{small} of {sum(c[0] for c in counts)} objects in {masks_dir} are under {SMALL_OBJECT_PIXELS} pixels: "
            "check that they are objects and not labelling slips"
        )
    split = [(path.name, c[2]) for path, c in zip(paths, counts) if c[2]]
    if split:
        warnings.append(
            f"{sum(n for _, n in split)} objects in {len(split)} masks lie in several separate pieces "
            f"({list_names([name for name, _ in split])}): a star-convex model outlines one piece per object"
        )
    return warnings


def load_instance_folder(folder: Path, min_size: MinSize | None = None) -> FolderData:
    """Read every ``images/<name>`` and ``masks/<name>`` TIFF pair (2D), sorted by name: images float32, labels
    int32 as given (the numbers are kept; only their being whole, non-negative and per object is checked)."""
    pairs = _load_pairs(folder, "masks", "mask", 2, min_size)
    _warn(pairs.warnings, *check_instance_labels(Path(folder) / "masks", pairs.partner_paths, pairs.partners))
    logger.info("loaded %d image/instance-label pairs from %s", len(pairs.names), folder)
    return FolderData(
        images=[image.astype(np.float32) for image in pairs.images],
        masks=[np.asarray(labels).astype(np.int32) for labels in pairs.partners],
        names=pairs.names,
        sha256=pairs.sha256,
        n_files=len(pairs.names),
        warnings=tuple(pairs.warnings),
    )


__all__ = ["INSTANCE_LAYOUT", "check_instance_labels", "load_instance_folder"]
