"""Load a user's folders of TIFF files for training, one layout per task.

- ``load_image_mask_folder``: ``images/<name>.tif`` with ``masks/<name>.tif``, any nonzero value foreground.
- ``load_image_label_folder``: the same layout, masks holding class labels 0..K-1.
- ``load_image_target_folder``: ``images/<name>.tif`` (noisy) with ``targets/<name>.tif`` (clean).
- ``load_image_folder``: images alone, in the folder itself or in its ``images/``.
- ``load_class_folder``: one sub-folder of images per class.

Files are single planes (``ndim=2``: singleton axes dropped, one 2D array left) or z-stacks (``ndim=3``:
a multi-page TIFF read as (Z, Y, X)), read by ``zoo.data.tiffs``. Every problem a user can fix is a ``DataError``
naming the file(s), raised before any training starts; ``zoo.data.checks`` judges whether what was read fits the
task (layout, mask values, size). A colour (RGB) file is refused, unless its R, G and B are equal everywhere: then
it is a grey image saved as RGB and is read as one channel, with a warning. Warnings are logged and kept, in order,
in the returned data's ``warnings`` so that a training run can report them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.bioimage.files import PartsDigest
from zoo.data.checks import (
    MAX_CLASSES,
    MinSize,
    check_binary_masks,
    check_class_labels,
    check_class_layout,
    check_finite,
    check_min_size,
    check_pair_layout,
    check_single_images_layout,
    list_names,
)
from zoo.data.tiffs import (
    TIFF_SUFFIXES,
    check_dimensionality,
    check_ndim,
    grey_as_rgb_warning,
    read_array,
    read_bytes,
    require_folder,
    tiffs_by_stem,
)
from zoo.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderData:
    """Images with their masks, labels or targets, in sorted name order, with one checksum over all file bytes."""

    images: list[np.ndarray]  # each float32, 2D (Y, X) or 3D (Z, Y, X)
    masks: list[np.ndarray]  # per image: uint8 0/1 mask, uint8 class labels or float32 target; [] for images only
    names: list[str]  # stems
    sha256: str  # one checksum over all file bytes, in sorted name order
    n_files: int  # number of images (image/mask pairs)
    n_classes: int | None = None  # class labels only: masks hold 0..n_classes-1
    warnings: tuple[str, ...] = ()  # what may not be meant but can be trained on, as logged


@dataclass(frozen=True)
class ClassFolderData:
    """Images sorted by class then name, each labelled with the index of its class folder."""

    images: list[np.ndarray]  # each float32 2D, all of one shape
    labels: np.ndarray  # (n,) int64 indices into class_names
    class_names: list[str]  # sub-folder names, sorted
    names: list[str]  # "<class>/<stem>"
    sha256: str  # one checksum over class names, file names and file bytes, in the order above
    n_files: int
    warnings: tuple[str, ...] = ()  # what may not be meant but can be trained on, as logged


def _warn(warnings: list[str], *messages: str) -> None:
    """Log each message as a warning and keep it for the returned data."""
    for message in messages:
        logger.warning("%s", message)
        warnings.append(message)


@dataclass
class _Pairs:
    names: list[str]
    images: list[np.ndarray]
    partners: list[np.ndarray]
    image_paths: list[Path]
    partner_paths: list[Path]
    sha256: str
    warnings: list[str]


def _load_pairs(folder: Path, partner: str, noun: str, ndim: int, min_size: MinSize | None) -> _Pairs:
    """Read every ``images/<name>`` and ``<partner>/<name>`` TIFF pair, sorted by name, as squeezed arrays.

    The checksum covers, pair by pair, the length and bytes of the image file and then of the partner file.
    Images are finite and at least `min_size` along every axis.
    """
    ndim = check_ndim(ndim)
    folder = require_folder(folder, f"holds images/ and {partner}/")
    check_pair_layout(folder, partner, TIFF_SUFFIXES)
    images_dir, partners_dir = folder / "images", folder / partner
    image_paths = tiffs_by_stem(images_dir, f"so each image pairs with exactly one {noun}")
    partner_paths = tiffs_by_stem(partners_dir, f"so each image pairs with exactly one {noun}")
    if not image_paths and not partner_paths:
        raise DataError(
            f"no TIFF files ({', '.join(TIFF_SUFFIXES)}) found in {images_dir} or {partners_dir}; "
            f"add image/{noun} pairs saved as TIFF"
        )
    alone = sorted(image_paths.keys() - partner_paths.keys())
    orphans = sorted(partner_paths.keys() - image_paths.keys())
    if alone or orphans:
        problems = []
        if alone:
            problems.append(
                f"{len(alone)} image(s) in {images_dir} without a {noun} in {partners_dir}: "
                f"{list_names([image_paths[n].name for n in alone])}"
            )
        if orphans:
            problems.append(
                f"{len(orphans)} {noun}(s) in {partners_dir} without an image in {images_dir}: "
                f"{list_names([partner_paths[n].name for n in orphans])}"
            )
        raise DataError("; ".join(problems) + f"; give each image a {noun} with the same name, or remove it")

    names = sorted(image_paths)
    digest = PartsDigest()
    images, partners, converted = [], [], []
    firsts = [image_paths[name] for name in names]
    seconds = [partner_paths[name] for name in names]
    for first, second in zip(firsts, seconds):
        image, grey_image = read_array(first, read_bytes(first, digest), ndim, "image")
        other, grey_other = read_array(second, read_bytes(second, digest), ndim, noun)
        images.append(image)
        partners.append(other)
        converted += [path for path, grey in ((first, grey_image), (second, grey_other)) if grey]
    # Pair by pair, so that the first file named is the first one that is wrong.
    check_dimensionality(
        [p for pair in zip(firsts, seconds) for p in pair], [a for pair in zip(images, partners) for a in pair], ndim
    )
    for image_path, partner_path, image, other in zip(firsts, seconds, images, partners, strict=True):
        if image.shape != other.shape:
            raise DataError(
                f"image {image_path} has shape {image.shape} but {noun} {partner_path} has shape "
                f"{other.shape}; save the {noun} at the image's size"
            )
    for path, image in zip(firsts, images, strict=True):
        check_finite(path, image)
    check_min_size(firsts, images, min_size)
    warnings: list[str] = []
    _warn(warnings, *grey_as_rgb_warning(converted))
    return _Pairs(names, images, partners, firsts, seconds, digest.hexdigest(), warnings)


def load_image_mask_folder(folder: Path, ndim: int = 2, min_size: MinSize | None = None) -> FolderData:
    """Read every ``images/<name>`` and ``masks/<name>`` TIFF pair in ``folder``, sorted by name.

    Images become float32 and masks uint8 0/1 (any nonzero value is foreground). Masks must be masks: whole
    numbers, some foreground and some background (``check_binary_masks``). The checksum covers, pair by
    pair, the length and bytes of the image file and then of the mask file.
    """
    pairs = _load_pairs(folder, "masks", "mask", ndim, min_size)
    _warn(pairs.warnings, *check_binary_masks(Path(folder) / "masks", pairs.partner_paths, pairs.partners))
    logger.info("loaded %d image/mask pairs from %s", len(pairs.names), folder)
    return FolderData(
        images=[image.astype(np.float32) for image in pairs.images],
        masks=[(mask != 0).astype(np.uint8) for mask in pairs.partners],
        names=pairs.names,
        sha256=pairs.sha256,
        n_files=len(pairs.names),
        warnings=tuple(pairs.warnings),
    )


def load_image_label_folder(
    folder: Path, n_classes: int | None = None, ndim: int = 2, min_size: MinSize | None = None
) -> FolderData:
    """Read ``images/<name>`` with ``masks/<name>`` holding class labels 0..K-1, sorted by name.

    Images become float32 and labels uint8. K is ``n_classes``, or when None the labels must be 0..K-1
    without gaps (0/255 masks are refused with the fix); it is returned as ``n_classes``. The checksum is
    ``load_image_mask_folder``'s.
    """
    whole = isinstance(n_classes, (int, np.integer)) and not isinstance(n_classes, bool)
    if n_classes is not None and not (whole and 2 <= n_classes <= MAX_CLASSES):
        raise DataError(f"n_classes={n_classes!r}, expected a whole number from 2 to {MAX_CLASSES}")
    pairs = _load_pairs(folder, "masks", "mask", ndim, min_size)
    n_classes, found = check_class_labels(Path(folder) / "masks", pairs.partner_paths, pairs.partners, n_classes)
    _warn(pairs.warnings, *found)
    logger.info("loaded %d image/label pairs with %d classes from %s", len(pairs.names), n_classes, folder)
    return FolderData(
        images=[image.astype(np.float32) for image in pairs.images],
        masks=[mask.astype(np.uint8) for mask in pairs.partners],
        names=pairs.names,
        sha256=pairs.sha256,
        n_files=len(pairs.names),
        n_classes=n_classes,
        warnings=tuple(pairs.warnings),
    )


def load_image_target_folder(folder: Path, ndim: int = 2, min_size: MinSize | None = None) -> FolderData:
    """Read ``images/<name>`` (noisy) with ``targets/<name>`` (clean) of the same shape, sorted by name.

    Both become float32; the targets are returned in ``masks``. The checksum covers, pair by pair, the
    length and bytes of the image file and then of the target file.
    """
    pairs = _load_pairs(folder, "targets", "target", ndim, min_size)
    for path, array in zip(pairs.partner_paths, pairs.partners, strict=True):
        check_finite(path, array)
    logger.info("loaded %d image/target pairs from %s", len(pairs.names), folder)
    return FolderData(
        images=[image.astype(np.float32) for image in pairs.images],
        masks=[target.astype(np.float32) for target in pairs.partners],
        names=pairs.names,
        sha256=pairs.sha256,
        n_files=len(pairs.names),
        warnings=tuple(pairs.warnings),
    )


def load_image_folder(folder: Path, ndim: int = 2, min_size: MinSize | None = None) -> FolderData:
    """Read every TIFF in ``folder/images`` if that exists, else in ``folder`` itself, sorted by name.

    Images become float32; ``masks`` is empty. The checksum covers the length and bytes of each file.
    """
    ndim = check_ndim(ndim)
    folder = require_folder(folder, "holds TIFF images (directly or in images/)")
    directory = folder / "images" if (folder / "images").is_dir() else folder
    paths_by_stem = tiffs_by_stem(directory, "so each image is read once")
    if not paths_by_stem:
        if directory == folder:
            check_single_images_layout(folder, TIFF_SUFFIXES)
        raise DataError(f"no TIFF files ({', '.join(TIFF_SUFFIXES)}) found in {directory}; add images saved as TIFF")
    names = sorted(paths_by_stem)
    paths = [paths_by_stem[name] for name in names]
    digest = PartsDigest()
    read = [read_array(path, read_bytes(path, digest), ndim) for path in paths]
    images = [image for image, _ in read]
    check_dimensionality(paths, images, ndim)
    for path, image in zip(paths, images, strict=True):
        check_finite(path, image)
    check_min_size(paths, images, min_size)
    warnings: list[str] = []
    _warn(warnings, *grey_as_rgb_warning([path for path, (_, grey) in zip(paths, read) if grey]))
    logger.info("loaded %d images from %s", len(names), directory)
    return FolderData(
        images=[image.astype(np.float32) for image in images],
        masks=[],
        names=names,
        sha256=digest.hexdigest(),
        n_files=len(names),
        warnings=tuple(warnings),
    )


def load_class_folder(folder: Path, min_size: MinSize | None = None) -> ClassFolderData:
    """Read one sub-folder per class (its name is the class name, sorted) of 2D TIFF images of one shape.

    At least two classes, each with at least one image; sub-folders images/ with masks/ (or targets/) are
    another task's layout and refused. Sub-folders whose name starts with "." are skipped. The checksum
    covers each class name, file name, file length and file bytes in order.
    """
    folder = require_folder(folder, "holds one sub-folder of TIFF images per class")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    check_class_layout(folder, [p.name for p in class_dirs])
    if len(class_dirs) < 2:
        found = f"only {class_dirs[0].name}/" if class_dirs else "none"
        raise DataError(
            f"{folder} needs at least 2 class sub-folders (one per class, named after it), found {found}; "
            "put each class's TIFF images in its own sub-folder"
        )
    warnings: list[str] = []
    stray = [p.name for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES]
    if stray:
        _warn(
            warnings,
            f"{len(stray)} TIFF file(s) directly in {folder} belong to no class and are skipped: {list_names(stray)}",
        )
    files: list[tuple[int, str, Path]] = []
    for label, class_dir in enumerate(class_dirs):
        paths_by_stem = tiffs_by_stem(class_dir, "so each image is read once")
        if not paths_by_stem:
            raise DataError(
                f"class folder {class_dir} holds no TIFF files ({', '.join(TIFF_SUFFIXES)}); "
                "add images of that class or remove the folder"
            )
        files.extend((label, stem, paths_by_stem[stem]) for stem in sorted(paths_by_stem))

    digest = PartsDigest()
    images, converted = [], []
    for label, _, path in files:
        digest.add_text(f"{class_dirs[label].name}/{path.name}")
        image, grey = read_array(path, read_bytes(path, digest), ndim=2)
        images.append(image)
        if grey:
            converted.append(path)
    paths = [path for _, _, path in files]
    check_dimensionality(paths, images, ndim=2)
    for path, image in zip(paths, images, strict=True):
        if image.shape != images[0].shape:
            raise DataError(
                f"{path} has shape {image.shape} but {paths[0]} has shape {images[0].shape}; "
                "every image must have one shape: crop or resize them to the same size"
            )
        check_finite(path, image)
    check_min_size(paths, images, min_size)
    _warn(warnings, *grey_as_rgb_warning(converted))
    class_names = [class_dir.name for class_dir in class_dirs]
    logger.info("loaded %d images in %d classes from %s", len(files), len(class_names), folder)
    return ClassFolderData(
        images=[image.astype(np.float32) for image in images],
        labels=np.array([label for label, _, _ in files], dtype=np.int64),
        class_names=class_names,
        names=[f"{class_names[label]}/{stem}" for label, stem, _ in files],
        sha256=digest.hexdigest(),
        n_files=len(files),
        warnings=tuple(warnings),
    )
