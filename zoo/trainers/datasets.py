"""Training data for segmentation trainers: synthetic or a user's folder, split and normalised."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoo.config import DataConfig
from zoo.data.checks import MinSize
from zoo.errors import DataError

EPSILON = 1e-6


def normalize_image(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole image: what the package's pre-processing does."""
    image = image.astype(np.float32)
    return ((image - image.mean()) / (image.std() + EPSILON)).astype(np.float32)


@dataclass
class SegmentationSplits:
    train_images: list[np.ndarray]
    train_masks: list[np.ndarray]
    val_images: list[np.ndarray]
    val_masks: list[np.ndarray]
    test_images: list[np.ndarray]
    test_masks: list[np.ndarray]
    test_raw: list[np.ndarray]  # un-normalised test images, as a user would feed them
    provenance: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)  # pixel or image classes, where the task has them
    test_clean: list[np.ndarray] = field(default_factory=list)  # ground truth a self-supervised run never trains on
    data_warnings: list[str] = field(default_factory=list)  # what the user's folder may not mean, as logged


def load_segmentation_splits(
    config: DataConfig, multiple_of: int, min_size: MinSize | None = None
) -> SegmentationSplits:
    """Images and binary masks split into train/validation/test; each image cropped to a multiple of the
    network's down-sampling factor so that whole images can be evaluated. A user's folder is checked against
    the task first (``zoo.data.checks``); its images must be at least `min_size`."""
    warnings: list[str] = []
    if config.folder is not None:
        from zoo.data.folder import load_image_mask_folder

        folder = load_image_mask_folder(config.folder, min_size=min_size)
        warnings = list(folder.warnings)
        raw, masks = folder.images, folder.masks
        provenance = {
            "source": "folder",
            "folder": str(config.folder),
            "n_files": folder.n_files,
            "sha256": folder.sha256,
        }
    else:
        from zoo.data.synthetic import make_nuclei

        images, stacked = make_nuclei(config.n_images, (config.image_size, config.image_size), seed=config.seed)
        raw, masks = list(images), list(stacked)
        provenance = {
            "source": "synthetic",
            "generator": "zoo.data.synthetic.make_nuclei",
            "n_images": config.n_images,
            "image_size": config.image_size,
            "seed": config.seed,
        }
    masks = [(mask > 0).astype(np.uint8) for mask in masks]
    splits = make_splits(list(raw), masks, config, provenance, multiple_of=multiple_of)
    splits.data_warnings = warnings
    return splits


def split_indices(n: int, config: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (train, validation, test) indices; every split holds at least one item."""
    if n < 3:
        raise DataError(f"{n} image(s) given, expected at least 3 for train, validation and test splits")
    order = np.random.default_rng(config.seed).permutation(n)
    n_test = max(1, round(config.test_fraction * n))
    n_val = max(1, round(config.validation_fraction * n))
    if n_test + n_val >= n:
        raise DataError(
            f"{n} images leave none for training after {n_val} for validation and {n_test} for test: give more images"
        )
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def crop_to_multiple(array: np.ndarray, multiple: int) -> np.ndarray:
    """The array cropped (at the end of every axis) to a multiple of `multiple` along each axis."""
    return array[tuple(slice(0, s - s % multiple) for s in array.shape)]


def make_splits(
    raw: list[np.ndarray],
    targets: list,
    config: DataConfig,
    provenance: dict[str, Any],
    multiple_of: int = 1,
    target_kind: str = "mask",
) -> SegmentationSplits:
    """Split paired data and normalise the inputs. `target_kind`: "mask"/"labels" (kept as integers), "image"
    (a restoration target, normalised with its input's statistics so both share units), "class" (one label per
    image) or "none" (self-supervised: the target is the input itself)."""
    small = [i for i, image in enumerate(raw) if min(image.shape) < multiple_of]
    if small:
        raise DataError(
            f"{len(small)} image(s) are smaller than {multiple_of} px along some axis (first: index "
            f"{small[0]}, shape {raw[small[0]].shape}): use images of at least {multiple_of} px"
        )
    if multiple_of > 1:
        raw = [crop_to_multiple(image, multiple_of) for image in raw]
        if target_kind in ("mask", "labels", "image"):
            targets = [crop_to_multiple(t, multiple_of) for t in targets]
    train, val, test = split_indices(len(raw), config)
    provenance = {**provenance, "split": {"train": len(train), "validation": len(val), "test": len(test)}}
    normalized = [normalize_image(image) for image in raw]
    if target_kind == "image":
        targets = [
            ((t.astype(np.float32) - image.mean()) / (image.std() + EPSILON)).astype(np.float32)
            for t, image in zip(targets, raw)
        ]
    elif target_kind == "none":
        targets = normalized
    return SegmentationSplits(
        train_images=[normalized[i] for i in train],
        train_masks=[targets[i] for i in train],
        val_images=[normalized[i] for i in val],
        val_masks=[targets[i] for i in val],
        test_images=[normalized[i] for i in test],
        test_masks=[targets[i] for i in test],
        test_raw=[raw[i].astype(np.float32) for i in test],
        provenance=provenance,
    )
