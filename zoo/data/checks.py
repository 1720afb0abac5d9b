"""Whether a user's training data fits the task it is given to, checked before any training starts.

``zoo.data.folder`` reads the files; the checks here judge what was read. A folder laid out for another task
(class sub-folders given to a segmentation trainer, image/mask pairs given to the classifier), masks that are
not what the task reads (K-class labels that are not 0..K-1 such as 0/255 masks, masks with no foreground at
all, intensity images in masks/) and images smaller than the network trains on are a ``DataError``: one line
naming the file, or the folder and a count, what was found and the fix. What can be trained on but may not be
meant (a few empty masks, class labels given to a binary trainer) comes back as warning messages, which the
loader logs and keeps on the data it returns. Nothing here logs or prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.errors import DataError

MAX_LISTED_NAMES = 5
MAX_LISTED_VALUES = 8
MAX_CLASSES = 256  # labels are stored as uint8
MANY_CLASSES = 16  # more classes than this, inferred from the labels, are likely object numbers
PAIR_LAYOUTS = {"masks": "segmentation (image/mask pairs)", "targets": "restoration (image/target pairs)"}
PAIR_TRAINERS = {"masks": "a segmentation trainer (unet2d, unet2d-multiclass, unet3d)", "targets": "care2d"}
CLASSIFICATION_LAYOUT = "image classification (one sub-folder of images per class, classifier2d)"


def list_names(names: list[str]) -> str:
    """At most MAX_LISTED_NAMES names, then how many more."""
    shown = ", ".join(names[:MAX_LISTED_NAMES])
    more = len(names) - MAX_LISTED_NAMES
    return f"{shown} (and {more} more)" if more > 0 else shown


def list_values(values: list) -> str:
    """`[0, 1, 255]`, or the first MAX_LISTED_VALUES and the count when there are more."""
    shown = ", ".join(str(v) for v in values[:MAX_LISTED_VALUES])
    return f"[{shown}, ... ({len(values)} in all)]" if len(values) > MAX_LISTED_VALUES else f"[{shown}]"


# ------------------------------------------------------------------------------------------------------
# Layout


def tiff_subfolders(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Names of the visible sub-folders of `folder` that hold at least one TIFF file, sorted."""
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(f.is_file() and f.suffix.lower() in suffixes for f in sub.iterdir()):
            found.append(sub.name)
    return found


def check_pair_layout(folder: Path, partner: str, suffixes: tuple[str, ...]) -> None:
    """`folder` has images/ and `partner`/; if not, and it is laid out for another task, say which."""
    have = {name for name in ("images", *PAIR_LAYOUTS) if (folder / name).is_dir()}
    if {"images", partner} <= have:
        return
    hint = f"put images in images/ and their {partner} with the same names in {partner}/"
    other = next((name for name in PAIR_LAYOUTS if name != partner and {"images", name} <= have), None)
    if other is not None:
        raise DataError(
            f"{folder} has images/ and {other}/ but no {partner}/: the layout of {PAIR_LAYOUTS[other]}, "
            f"not what this trainer reads; {hint}, or train {PAIR_TRAINERS[other]} on it"
        )
    classes = [name for name in tiff_subfolders(folder, suffixes) if name not in have]
    if not have and len(classes) >= 2:
        raise DataError(
            f"{folder} has no images/ or {partner}/ but {len(classes)} sub-folders of TIFF files "
            f"({list_names([c + '/' for c in classes])}): the layout of {CLASSIFICATION_LAYOUT}; {hint}, "
            "or train classifier2d on it"
        )
    missing = [name for name in ("images", partner) if name not in have]
    raise DataError(f"{folder} has no {' or '.join(f'{name}/' for name in missing)} subfolder; {hint}")


def check_class_layout(folder: Path, class_names: list[str]) -> None:
    """Class sub-folders named images/ and masks/ (or targets/) are a pair layout, not classes."""
    pair = next((name for name in PAIR_LAYOUTS if {"images", name} <= set(class_names)), None)
    if pair is not None:
        raise DataError(
            f"{folder} has images/ and {pair}/: the layout of {PAIR_LAYOUTS[pair]}, not of image classification "
            f"(it would learn to tell images from {pair}); train {PAIR_TRAINERS[pair]} on it, "
            "or put each class's images in a sub-folder named after the class"
        )


def check_single_images_layout(folder: Path, suffixes: tuple[str, ...]) -> None:
    """A folder with no TIFF files of its own and no images/ whose sub-folders hold TIFFs is laid out per class."""
    classes = tiff_subfolders(folder, suffixes)
    if classes:
        raise DataError(
            f"{folder} holds no TIFF files itself and no images/, but {len(classes)} sub-folder(s) of TIFF files "
            f"({list_names([c + '/' for c in classes])}): the layout of {CLASSIFICATION_LAYOUT}; put the "
            "images in the folder itself or in images/"
        )


# ------------------------------------------------------------------------------------------------------
# Image size


@dataclass(frozen=True)
class MinSize:
    """The smallest image, along every spatial axis, that the network is trained on, and what sets it."""

    side: int
    reason: str

    @classmethod
    def for_patches(cls, patch_size: int, depth: int) -> MinSize:
        """Trained on random crops of `patch_size` along every axis by a network of `depth` down-samplings."""
        side = max(int(patch_size), 2 ** int(depth))
        return cls(side, f"it trains on {side} px patches: patch_size {patch_size}, depth {depth}")

    @classmethod
    def for_whole_images(cls, depth: int) -> MinSize:
        """Trained on whole images by a network that halves them `depth` times."""
        side = 2 ** int(depth)
        return cls(side, f"its {depth} down-sampling steps need 2**depth = {side} px")


def check_min_size(paths: list[Path], arrays: list[np.ndarray], min_size: MinSize | None) -> None:
    """Every array is at least `min_size.side` along every axis; else name the first smaller file and the count."""
    if min_size is None:
        return
    small = [i for i, array in enumerate(arrays) if min(array.shape) < min_size.side]
    if not small:
        return
    first, side = small[0], min_size.side
    count = f"; {len(small)} of {len(arrays)} images are smaller than {side} px" if len(small) > 1 else ""
    raise DataError(
        f"{paths[first]} is {'x'.join(map(str, arrays[first].shape))} px, below the network's minimum of {side} px "
        f"along every axis ({min_size.reason}){count}; use images of at least "
        f"{'x'.join([str(side)] * arrays[first].ndim)} px"
    )


# ------------------------------------------------------------------------------------------------------
# Masks


def check_finite(path: Path, array: np.ndarray) -> None:
    if array.dtype.kind != "f":
        return
    finite = np.isfinite(array)
    if not finite.all():
        count = int(finite.size - finite.sum())
        raise DataError(f"{path} holds {count} NaN or infinite value(s); replace them with real intensities")


def _distinct_values(masks: Iterable[np.ndarray]) -> list:
    values: set = set()
    for mask in masks:
        values.update(np.unique(mask).tolist())
    return sorted(values)


def check_binary_masks(masks_dir: Path, paths: list[Path], masks: list[np.ndarray]) -> list[str]:
    """Masks for a binary (foreground/background) trainer: any non-zero value is foreground.

    Errors: NaN, fractional values (a probability map or an image, not a mask), no foreground in any mask,
    no background in any mask (images rather than masks). Returns the warnings: some masks empty, or masks
    that hold a few class labels 0..K-1 (K > 2) which the binary trainer merges into one foreground.
    """
    for path, mask in zip(paths, masks, strict=True):
        check_finite(path, mask)
        if mask.dtype.kind == "f":
            fractional = mask != np.round(mask)
            if fractional.any():
                raise DataError(
                    f"{path} holds non-integer values (e.g. {mask[fractional].flat[0].item():.4g}), not a mask; "
                    "save 0 for background and a non-zero whole number (1 or 255) for foreground, e.g. by "
                    "thresholding it"
                )
    n = len(masks)
    empty = [path.name for path, mask in zip(paths, masks) if not mask.any()]
    if len(empty) == n:
        raise DataError(
            f"all {n} masks in {masks_dir} are empty (every pixel 0): there is no foreground to learn; save "
            "foreground pixels as non-zero (1 or 255), and check that masks/ holds the masks of images/"
        )
    if all(mask.all() for mask in masks):
        raise DataError(
            f"none of the {n} masks in {masks_dir} has a background pixel (0): they look like images, not masks; "
            "save masks with 0 for background (image/target pairs for restoration go in images/ and targets/)"
        )
    warnings = []
    if empty:
        warnings.append(
            f"{len(empty)} of {n} masks in {masks_dir} are empty (no foreground): {list_names(empty)}; they teach "
            "background only: remove them if their objects were never labelled"
        )
    if all(mask.dtype.kind in "biu" for mask in masks):
        values = _distinct_values(masks)
        if 3 <= len(values) <= MANY_CLASSES and values == list(range(len(values))):
            warnings.append(
                f"the masks in {masks_dir} hold {len(values)} distinct values {list_values(values)}: this trainer "
                f"merges every non-zero value into one foreground; if they are {len(values)} classes, train "
                "unet2d-multiclass"
            )
    return warnings


def _check_labels(path: Path, labels: np.ndarray, n_classes: int | None) -> None:
    """Class labels are whole numbers in 0..n_classes-1 (or 0..MAX_CLASSES-1 when n_classes is None)."""
    if labels.dtype.kind == "f":
        check_finite(path, labels)
        fractional = labels != np.round(labels)
        if fractional.any():
            raise DataError(
                f"{path} holds non-integer label values (e.g. {labels[fractional].flat[0].item()}); masks must hold "
                "class labels 0..K-1: save them as whole numbers, preferably in an integer TIFF"
            )
    if labels.size == 0:
        return
    low, high = labels.min().item(), labels.max().item()
    if low < 0:
        raise DataError(f"{path} holds the negative label {low}; class labels start at 0 (background)")
    limit = n_classes if n_classes is not None else MAX_CLASSES
    if high >= limit:
        if n_classes is not None:
            raise DataError(
                f"{path} holds the label {high}, but n_classes={n_classes} allows only 0..{n_classes - 1}; "
                "relabel the mask (or, when training a new model, raise n_classes)"
            )
        raise DataError(
            f"{path} holds the label {high}: more than {MAX_CLASSES} classes; if its labels number objects "
            "(instance labels), train a binary segmentation on images/ and masks/ instead, else relabel the "
            f"classes 0..K-1 with K at most {MAX_CLASSES}"
        )


def check_class_labels(
    masks_dir: Path, paths: list[Path], masks: list[np.ndarray], n_classes: int | None
) -> tuple[int, list[str]]:
    """Masks of class labels 0..K-1; K is `n_classes`, or inferred when None. Returns K and the warnings.

    Errors: labels that are not whole non-negative numbers below K (or MAX_CLASSES); fewer than two distinct
    values in all the masks; and, when K is inferred, values that are not 0..K-1 without gaps (0/255 masks:
    divide by 255). Warnings: masks with background only, classes of a given K that never occur, and more
    than MANY_CLASSES inferred classes (likely object numbers).
    """
    for path, labels in zip(paths, masks, strict=True):
        _check_labels(path, labels, n_classes)
    n = len(masks)
    values = [int(v) for v in _distinct_values(masks)]
    if len(values) < 2:
        found = "only 0 (background)" if values == [0] else f"only the value {values[0]}" if values else "nothing"
        raise DataError(
            f"all {n} masks in {masks_dir} hold {found}: there are no classes to tell apart; save each pixel's "
            "class number 0..K-1 (0 for background) in the masks"
        )
    warnings = []
    if n_classes is None:
        n_classes = values[-1] + 1
        if values != list(range(n_classes)):
            found = f"the {n} masks in {masks_dir} hold {len(values)} distinct values {list_values(values)}"
            if len(values) == 2 and values[0] == 0:
                fix = (
                    f"binary masks saved as 0/{values[1]}: divide them by {values[1]} (or train a binary "
                    "segmentation trainer such as unet2d)"
                )
            else:
                missing = sorted(set(range(n_classes)) - set(values))
                fix = f"relabel them to 0..{len(values) - 1} (labels {list_values(missing)} never occur)"
            raise DataError(f"{found}, expected class labels 0..K-1 without gaps; {fix}")
        if n_classes > MANY_CLASSES:
            warnings.append(
                f"the masks in {masks_dir} hold {n_classes} classes 0..{n_classes - 1}: if the labels number "
                "objects (instance labels) rather than classes, train a binary segmentation trainer such as unet2d"
            )
    else:
        missing = sorted(set(range(n_classes)) - set(values))
        if missing:
            warnings.append(f"class(es) {missing} of 0..{n_classes - 1} never occur in {masks_dir}")
    background_only = [path.name for path, mask in zip(paths, masks) if not mask.any()]
    if background_only:
        warnings.append(
            f"{len(background_only)} of {n} masks in {masks_dir} hold background (0) only: "
            f"{list_names(background_only)}; remove them if their objects were never labelled"
        )
    return n_classes, warnings
