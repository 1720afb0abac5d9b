"""Reading users' TIFF files for training: the folders' TIFFs by stem, each file's bytes (into the checksum) and
its grey-level array, and the checks that every file has the dimensionality the task takes. ``zoo.data.folder``
lays the files out per task.

Files are single planes (``ndim=2``: singleton axes dropped, one 2D array left) or z-stacks (``ndim=3``:
a multi-page TIFF read as (Z, Y, X)). Every problem a user can fix is a ``DataError`` naming the file(s). A colour
(RGB) file is refused, unless its R, G and B are equal everywhere: then it is a grey image saved as RGB and is read
as one channel (``grey_as_rgb_warning`` words the warning)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tifffile

from zoo.bioimage.files import PartsDigest
from zoo.data.checks import list_names
from zoo.errors import DataError

TIFF_SUFFIXES = (".tif", ".tiff")
COLOUR_SAMPLES = {3: "RGB", 4: "RGBA"}
SPATIAL_AXES = {2: "one 2D plane (height, width)", 3: "one z-stack (depth, height, width)"}
SAVE_HINTS = {2: "save a single grey-level plane per file", 3: "save each volume as a multi-page grey-level TIFF"}


def check_ndim(ndim: int) -> int:
    if ndim not in SPATIAL_AXES:
        raise DataError(f"ndim={ndim!r}, expected 2 (single planes) or 3 (z-stacks)")
    return ndim


def require_folder(folder: Path, expected: str) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"training data folder {folder} does not exist or is not a folder; pass a folder that {expected}"
        )
    return folder


def tiffs_by_stem(directory: Path, purpose: str = "so each image pairs with exactly one mask") -> dict[str, Path]:
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


def read_bytes(path: Path, digest: PartsDigest) -> bytes:
    """The file's bytes, added to `digest` (their length, then the bytes)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}; check that the file is readable") from e
    return digest.add_bytes(data)


def wrong_dimensionality(path: Path, shape: tuple[int, ...], ndim: int) -> DataError:
    return DataError(
        f"{path} has shape {shape}, expected {SPATIAL_AXES[ndim]} after dropping axes of length 1; {SAVE_HINTS[ndim]}"
    )


def read_array(path: Path, data: bytes, ndim: int, role: str = "image") -> tuple[np.ndarray, bool]:
    """The grey-level 2D or 3D array in a TIFF file's bytes, with singleton axes squeezed away, and whether it
    was a grey image saved as RGB (R = G = B everywhere), read as one channel. Other colour files are refused.

    Colour means samples per pixel stored last (axes ending in S, as cameras, Fiji and PIL write RGB); a
    leading sample axis of 3 is read as 3 planes, as tifffile stores a 3-plane stack unless told otherwise."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            axes = tif.series[0].axes
            array = tif.asarray()
    except Exception as e:  # tifffile raises many types for damaged files
        raise DataError(
            f"cannot read TIFF {path}: {type(e).__name__}: {e}; re-save it as a valid TIFF "
            "or remove it together with its partner"
        ) from e
    grey_as_rgb = False
    samples = array.shape[-1] if axes.endswith("S") and array.ndim == len(axes) else 1
    if samples in COLOUR_SAMPLES:
        colour = array[..., :3]
        if not (colour == colour[..., :1]).all():
            what = "colour-coded mask" if role == "mask" else f"colour {role}"
            fix = (
                "save the mask as one grey-level plane of label values"
                if role == "mask"
                else "save one channel (the stain the network should see) as a grey-level TIFF"
            )
            raise DataError(
                f"{path} is an {COLOUR_SAMPLES[samples]} {what} (shape {array.shape}, R, G and B differ); the "
                f"trainers take one grey-level channel and do not convert colour: {fix}"
            )
        array, grey_as_rgb = colour[..., 0], True
    if "C" in axes and array.shape[axes.index("C")] > 1 and array.ndim == len(axes):
        raise DataError(
            f"{path} holds {array.shape[axes.index('C')]} channels (axes {axes}, shape {array.shape}); the trainers "
            "take one grey-level channel: save the channel to train on, one per file"
        )
    squeezed = np.squeeze(array)
    if squeezed.ndim not in SPATIAL_AXES:
        raise wrong_dimensionality(path, array.shape, ndim)
    if squeezed.dtype.kind not in "biuf":
        raise DataError(
            f"{path} holds {squeezed.dtype} values, expected integers or floats; save it as a grey-level TIFF"
        )
    return squeezed, grey_as_rgb


def grey_as_rgb_warning(converted: list[Path]) -> list[str]:
    if not converted:
        return []
    return [
        f"{len(converted)} grey file(s) saved as RGB (R = G = B everywhere) were read as one grey channel: "
        f"{list_names([str(path) for path in converted])}"
    ]


def check_dimensionality(paths: list[Path], arrays: list[np.ndarray], ndim: int) -> None:
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
            raise wrong_dimensionality(path, array.shape, ndim)
