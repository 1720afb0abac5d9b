"""Load a user's folders of TIFF files for training.

- ``load_image_mask_folder``: ``images/<name>.tif`` with ``masks/<name>.tif``, any nonzero value foreground.
- ``load_image_label_folder``: the same layout, masks holding class labels 0..K-1.
- ``load_image_target_folder``: ``images/<name>.tif`` (noisy) with ``targets/<name>.tif`` (clean).
- ``load_image_folder``: images alone, in the folder itself or in its ``images/``.
- ``load_class_folder``: one sub-folder of images per class.

Files are single planes (``ndim=2``: singleton axes dropped, one 2D array left) or z-stacks (``ndim=3``:
a multi-page TIFF read as (Z, Y, X)). Every problem a user can fix is a ``DataError`` naming the file(s),
raised before any training starts.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from zoo.bioimage.files import PartsDigest
from zoo.errors import DataError

logger = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")
MAX_LISTED_NAMES = 5
MAX_CLASSES = 256  # labels are stored as uint8
SPATIAL_AXES = {2: "one 2D plane (height, width)", 3: "one z-stack (depth, height, width)"}
SAVE_HINTS = {2: "save a single grey-level plane per file", 3: "save each volume as a multi-page grey-level TIFF"}


@dataclass(frozen=True)
class FolderData:
    """Images with their masks, labels or targets, in sorted name order, with one checksum over all file bytes."""

    images: list[np.ndarray]  # each float32, 2D (Y, X) or 3D (Z, Y, X)
    masks: list[np.ndarray]  # per image: uint8 0/1 mask, uint8 class labels or float32 target; [] for images only
    names: list[str]  # stems
    sha256: str  # one checksum over all file bytes, in sorted name order
    n_files: int  # number of images (image/mask pairs)
    n_classes: int | None = None  # class labels only: masks hold 0..n_classes-1


@dataclass(frozen=True)
class ClassFolderData:
    """Images sorted by class then name, each labelled with the index of its class folder."""

    images: list[np.ndarray]  # each float32 2D, all of one shape
    labels: np.ndarray  # (n,) int64 indices into class_names
    class_names: list[str]  # sub-folder names, sorted
    names: list[str]  # "<class>/<stem>"
    sha256: str  # one checksum over class names, file names and file bytes, in the order above
    n_files: int


def _list_names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED_NAMES])
    more = len(names) - MAX_LISTED_NAMES
    return f"{shown} (and {more} more)" if more > 0 else shown


def _check_ndim(ndim: int) -> int:
    if ndim not in SPATIAL_AXES:
        raise DataError(f"ndim={ndim!r}, expected 2 (single planes) or 3 (z-stacks)")
    return ndim


def _require_folder(folder: Path, expected: str) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"training data folder {folder} does not exist or is not a folder; pass a folder that {expected}"
        )
    return folder


def _require_subfolders(folder: Path, names: tuple[str, str], hint: str) -> None:
    missing = [name for name in names if not (folder / name).is_dir()]
    if missing:
        raise DataError(f"{folder} has no {' or '.join(f'{name}/' for name in missing)} subfolder; {hint}")


def _tiffs_by_stem(directory: Path, purpose: str = "so each image pairs with exactly one mask") -> dict[str, Path]:
    """TIFF files in ``directory`` keyed by stem; two files with one stem are an error."""
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if not (path.is_file() and path.suffix.lower() in TIFF_SUFFIXES):
            continue
        if path.stem in found:
            raise DataError(
                f"{found[path.stem]} and {path} have the same name {path.stem!r}; keep one of them {purpose}"
            )
        found[path.stem] = path
    return found


def _read_bytes(path: Path, digest: PartsDigest) -> bytes:
    """The file's bytes, added to `digest` (their length, then the bytes)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}; check that the file is readable") from e
    return digest.add_bytes(data)


def _wrong_dimensionality(path: Path, shape: tuple[int, ...], ndim: int) -> DataError:
    return DataError(
        f"{path} has shape {shape}, expected {SPATIAL_AXES[ndim]} after dropping axes of length 1; {SAVE_HINTS[ndim]}"
    )


def _read_array(path: Path, data: bytes, ndim: int) -> np.ndarray:
    """The grey-level 2D or 3D array in a TIFF file's bytes, with singleton axes squeezed away."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            array = tif.asarray()
    except Exception as e:  # tifffile raises many types for damaged files
        raise DataError(
            f"cannot read TIFF {path}: {type(e).__name__}: {e}; re-save it as a valid TIFF "
            "or remove it together with its partner"
        ) from e
    squeezed = np.squeeze(array)
    if squeezed.ndim not in SPATIAL_AXES:
        raise _wrong_dimensionality(path, array.shape, ndim)
    if squeezed.dtype.kind not in "biuf":
        raise DataError(
            f"{path} holds {squeezed.dtype} values, expected integers or floats; save it as a grey-level TIFF"
        )
    return squeezed


def _check_dimensionality(paths: list[Path], arrays: list[np.ndarray], ndim: int) -> None:
    """Every array has ``ndim`` axes: a file of each kind when 2D and 3D files are mixed, else the odd one."""
    first_of: dict[int, int] = {}
    for index, array in enumerate(arrays):
        first_of.setdefault(array.ndim, index)
    if 2 in first_of and 3 in first_of:
        flat, stack = first_of[2], first_of[3]
        raise DataError(
            f"mixed dimensionality: {paths[flat]} is 2D {arrays[flat].shape} but {paths[stack]} is 3D "
            f"{arrays[stack].shape}; give every file the same dimensionality: all single planes or all z-stacks"
        )
    for path, array in zip(paths, arrays, strict=True):
        if array.ndim != ndim:
            raise _wrong_dimensionality(path, array.shape, ndim)


def _check_finite(path: Path, array: np.ndarray) -> None:
    if array.dtype.kind != "f":
        return
    finite = np.isfinite(array)
    if not finite.all():
        count = int(finite.size - finite.sum())
        raise DataError(f"{path} holds {count} NaN or infinite value(s); replace them with real intensities")


def _load_pairs(
    folder: Path, partner: str, noun: str, ndim: int
) -> tuple[list[str], list[np.ndarray], list[np.ndarray], list[Path], list[Path], str]:
    """Read every ``images/<name>`` and ``<partner>/<name>`` TIFF pair, sorted by name, as squeezed arrays.

    Returns names, images, partners, their paths and a checksum over, pair by pair, the length and
    bytes of the image file and then of the partner file.
    """
    ndim = _check_ndim(ndim)
    folder = _require_folder(folder, f"holds images/ and {partner}/")
    _require_subfolders(
        folder, ("images", partner), f"put images in images/ and {noun}s with the same names in {partner}/"
    )
    images_dir, partners_dir = folder / "images", folder / partner
    image_paths = _tiffs_by_stem(images_dir, f"so each image pairs with exactly one {noun}")
    partner_paths = _tiffs_by_stem(partners_dir, f"so each image pairs with exactly one {noun}")
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
                f"{_list_names([image_paths[n].name for n in alone])}"
            )
        if orphans:
            problems.append(
                f"{len(orphans)} {noun}(s) in {partners_dir} without an image in {images_dir}: "
                f"{_list_names([partner_paths[n].name for n in orphans])}"
            )
        raise DataError("; ".join(problems) + f"; give each image a {noun} with the same name, or remove it")

    names = sorted(image_paths)
    digest = PartsDigest()
    images, partners = [], []
    for name in names:
        images.append(_read_array(image_paths[name], _read_bytes(image_paths[name], digest), ndim))
        partners.append(_read_array(partner_paths[name], _read_bytes(partner_paths[name], digest), ndim))
    firsts = [image_paths[name] for name in names]
    seconds = [partner_paths[name] for name in names]
    # Pair by pair, so that the first file named is the first one that is wrong.
    _check_dimensionality(
        [p for pair in zip(firsts, seconds) for p in pair], [a for pair in zip(images, partners) for a in pair], ndim
    )
    for image_path, partner_path, image, other in zip(firsts, seconds, images, partners, strict=True):
        if image.shape != other.shape:
            raise DataError(
                f"image {image_path} has shape {image.shape} but {noun} {partner_path} has shape "
                f"{other.shape}; save the {noun} at the image's size"
            )
    return names, images, partners, firsts, seconds, digest.hexdigest()


def load_image_mask_folder(folder: Path) -> FolderData:
    """Read every ``images/<name>`` and ``masks/<name>`` TIFF pair in ``folder``, sorted by name.

    Images become float32 and masks uint8 0/1 (any nonzero value is foreground). The checksum
    covers, pair by pair, the length and bytes of the image file and then of the mask file.
    """
    names, images, masks, _, _, sha256 = _load_pairs(folder, "masks", "mask", ndim=2)
    masks = [(mask != 0).astype(np.uint8) for mask in masks]
    if not any(mask.any() for mask in masks):
        logger.warning("every mask in %s is empty: there is no foreground to learn", Path(folder) / "masks")
    logger.info("loaded %d image/mask pairs from %s", len(names), folder)
    return FolderData(
        images=[image.astype(np.float32) for image in images],
        masks=masks,
        names=names,
        sha256=sha256,
        n_files=len(names),
    )


def _check_labels(path: Path, labels: np.ndarray, n_classes: int | None) -> None:
    """Class labels are whole numbers in 0..n_classes-1 (or 0..MAX_CLASSES-1 when n_classes is None)."""
    if labels.dtype.kind == "f":
        _check_finite(path, labels)
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
                "relabel the mask or raise n_classes"
            )
        raise DataError(
            f"{path} holds the label {high}: more than {MAX_CLASSES} classes; if its labels number objects "
            "(instance labels), train a binary segmentation on images/ and masks/ instead, else relabel the "
            f"classes 0..K-1 with K at most {MAX_CLASSES}"
        )


def load_image_label_folder(folder: Path, n_classes: int | None = None, ndim: int = 2) -> FolderData:
    """Read ``images/<name>`` with ``masks/<name>`` holding class labels 0..K-1, sorted by name.

    Images become float32 and labels uint8. K is ``n_classes``, or the largest label plus one (at least 2)
    when None; it is returned as ``n_classes``. The checksum is ``load_image_mask_folder``'s.
    """
    whole = isinstance(n_classes, (int, np.integer)) and not isinstance(n_classes, bool)
    if n_classes is not None and not (whole and 2 <= n_classes <= MAX_CLASSES):
        raise DataError(f"n_classes={n_classes!r}, expected a whole number from 2 to {MAX_CLASSES}")
    names, images, masks, image_paths, mask_paths, sha256 = _load_pairs(folder, "masks", "mask", ndim)
    for path, labels in zip(mask_paths, masks, strict=True):
        _check_labels(path, labels, n_classes)
    for path, image in zip(image_paths, images, strict=True):
        _check_finite(path, image)
    if n_classes is None:
        n_classes = max([2, *(int(mask.max()) + 1 for mask in masks if mask.size)])
    labels = [mask.astype(np.uint8) for mask in masks]
    present = np.zeros(n_classes, dtype=bool)
    for mask in labels:
        present[np.unique(mask)] = True
    if not present.all():
        logger.warning(
            "class(es) %s of 0..%d never occur in %s",
            np.flatnonzero(~present).tolist(),
            n_classes - 1,
            mask_paths[0].parent,
        )
    logger.info("loaded %d image/label pairs with %d classes from %s", len(names), n_classes, folder)
    return FolderData(
        images=[image.astype(np.float32) for image in images],
        masks=labels,
        names=names,
        sha256=sha256,
        n_files=len(names),
        n_classes=n_classes,
    )


def load_image_target_folder(folder: Path, ndim: int = 2) -> FolderData:
    """Read ``images/<name>`` (noisy) with ``targets/<name>`` (clean) of the same shape, sorted by name.

    Both become float32; the targets are returned in ``masks``. The checksum covers, pair by pair, the
    length and bytes of the image file and then of the target file.
    """
    names, images, targets, image_paths, target_paths, sha256 = _load_pairs(folder, "targets", "target", ndim)
    for path, array in zip([*image_paths, *target_paths], [*images, *targets], strict=True):
        _check_finite(path, array)
    logger.info("loaded %d image/target pairs from %s", len(names), folder)
    return FolderData(
        images=[image.astype(np.float32) for image in images],
        masks=[target.astype(np.float32) for target in targets],
        names=names,
        sha256=sha256,
        n_files=len(names),
    )


def load_image_folder(folder: Path, ndim: int = 2) -> FolderData:
    """Read every TIFF in ``folder/images`` if that exists, else in ``folder`` itself, sorted by name.

    Images become float32; ``masks`` is empty. The checksum covers the length and bytes of each file.
    """
    ndim = _check_ndim(ndim)
    folder = _require_folder(folder, "holds TIFF images (directly or in images/)")
    directory = folder / "images" if (folder / "images").is_dir() else folder
    paths_by_stem = _tiffs_by_stem(directory, "so each image is read once")
    if not paths_by_stem:
        raise DataError(f"no TIFF files ({', '.join(TIFF_SUFFIXES)}) found in {directory}; add images saved as TIFF")
    names = sorted(paths_by_stem)
    paths = [paths_by_stem[name] for name in names]
    digest = PartsDigest()
    images = [_read_array(path, _read_bytes(path, digest), ndim) for path in paths]
    _check_dimensionality(paths, images, ndim)
    for path, image in zip(paths, images, strict=True):
        _check_finite(path, image)
    logger.info("loaded %d images from %s", len(names), directory)
    return FolderData(
        images=[image.astype(np.float32) for image in images],
        masks=[],
        names=names,
        sha256=digest.hexdigest(),
        n_files=len(names),
    )


def load_class_folder(folder: Path) -> ClassFolderData:
    """Read one sub-folder per class (its name is the class name, sorted) of 2D TIFF images of one shape.

    At least two classes, each with at least one image. Sub-folders whose name starts with "." are
    skipped. The checksum covers each class name, file name, file length and file bytes in order.
    """
    folder = _require_folder(folder, "holds one sub-folder of TIFF images per class")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        found = f"only {class_dirs[0].name}/" if class_dirs else "none"
        raise DataError(
            f"{folder} needs at least 2 class sub-folders (one per class, named after it), found {found}; "
            "put each class's TIFF images in its own sub-folder"
        )
    stray = [p.name for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES]
    if stray:
        logger.warning(
            "%d TIFF file(s) directly in %s belong to no class and are skipped: %s",
            len(stray),
            folder,
            _list_names(stray),
        )
    files: list[tuple[int, str, Path]] = []
    for label, class_dir in enumerate(class_dirs):
        paths_by_stem = _tiffs_by_stem(class_dir, "so each image is read once")
        if not paths_by_stem:
            raise DataError(
                f"class folder {class_dir} holds no TIFF files ({', '.join(TIFF_SUFFIXES)}); "
                "add images of that class or remove the folder"
            )
        files.extend((label, stem, paths_by_stem[stem]) for stem in sorted(paths_by_stem))

    digest = PartsDigest()
    images = []
    for label, _, path in files:
        digest.add_text(f"{class_dirs[label].name}/{path.name}")
        images.append(_read_array(path, _read_bytes(path, digest), ndim=2))
    paths = [path for _, _, path in files]
    _check_dimensionality(paths, images, ndim=2)
    for path, image in zip(paths, images, strict=True):
        if image.shape != images[0].shape:
            raise DataError(
                f"{path} has shape {image.shape} but {paths[0]} has shape {images[0].shape}; "
                "every image must have one shape: crop or resize them to the same size"
            )
        _check_finite(path, image)
    class_names = [class_dir.name for class_dir in class_dirs]
    logger.info("loaded %d images in %d classes from %s", len(files), len(class_names), folder)
    return ClassFolderData(
        images=[image.astype(np.float32) for image in images],
        labels=np.array([label for label, _, _ in files], dtype=np.int64),
        class_names=class_names,
        names=[f"{class_names[label]}/{stem}" for label, stem, _ in files],
        sha256=digest.hexdigest(),
        n_files=len(files),
    )
