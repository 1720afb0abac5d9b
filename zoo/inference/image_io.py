"""Reading images to predict on (TIFF incl. multi-page/OME-TIFF, PNG, .npy, OME-Zarr/Zarr) and writing
predictions (TIFF atomically, Zarr chunk by chunk) with the input's pixel sizes. Large inputs are opened
lazily: only the boxes a tile needs are read."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ImageError
from zoo.inference.calibration import (
    PixelSize,
    imagej_options,
    ngff_axis,
    ngff_calibration,
    ome_options,
    tiff_calibration,
    tiff_resolution,
)

logger = logging.getLogger(__name__)

FILE_SUFFIXES = (".tif", ".tiff", ".png", ".npy")
ZARR_MARKERS = (".zgroup", ".zarray", "zarr.json")
OME_AXIS_LETTERS = {"t": "T", "time": "T", "c": "C", "channel": "C", "z": "Z", "y": "Y", "x": "X"}
IMAGEJ_AXES = "TZCYXS"
IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)


def is_zarr(path: Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path.suffix.lower() == ".zarr" or any((path / m).exists() for m in ZARR_MARKERS))


def is_image(path: Path) -> bool:
    return is_zarr(path) or (Path(path).is_file() and Path(path).suffix.lower() in FILE_SUFFIXES)


def image_stem(path: Path) -> str:
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", *FILE_SUFFIXES, ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


class ImageSource:
    """An image as stored: `data` is array-like (numpy, memory map or zarr array), `axes` one letter per
    dimension (tifffile's letters: T Z C Y X S, Q for unknown) or None when the file does not say; `calibration`
    the physical pixel size along the dimensions the file gives one for (by dimension index).

    With a `loader`, only the header has been read: `shape` and `dtype` are known, the pixels are read on the first
    use of `data` and dropped again by close(), so that a folder of many images holds one at a time."""

    def __init__(
        self,
        path: Path,
        data: Any,
        axes: str | None,
        kind: str,
        closers: list[Callable[[], None]] | None = None,
        *,
        shape: tuple[int, ...] | None = None,
        dtype=None,
        loader: Callable[[], tuple[Any, list[Callable[[], None]]]] | None = None,
        calibration: dict[int, PixelSize] | None = None,
    ):
        self.path = Path(path)
        self.calibration = dict(calibration or {})
        self.axes = axes
        self.kind = kind  # tiff | png | npy | zarr
        self.closers = list(closers or [])
        self._data = data
        self._shape = tuple(int(n) for n in shape) if shape is not None else None
        self._dtype = np.dtype(dtype) if dtype is not None else None
        self._loader = loader

    @property
    def data(self) -> Any:
        if self._data is None and self._loader is not None:
            self._data, closers = self._loader()
            self.closers.extend(closers)
        return self._data

    @property
    def shape(self) -> tuple[int, ...]:
        if self._data is None and self._shape is not None:
            return self._shape
        return tuple(int(n) for n in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        if self._data is None and self._dtype is not None:
            return self._dtype
        return np.dtype(self.data.dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # closing is best effort
                logger.debug("closing %s failed", self.path, exc_info=True)
        self.closers.clear()
        if self._loader is not None:
            self._data = None  # read again if used again


def open_image(path: Path, *, lazy_above_bytes: int = 1 << 30, defer: bool = False) -> ImageSource:
    """Open an image; TIFFs larger than `lazy_above_bytes` are read box by box through zarr. `defer`: read only
    the header of TIFF and PNG files now, the pixels on first use."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path} does not exist: give a TIFF, PNG, .npy or Zarr image")
    try:
        if is_zarr(path):
            return _open_zarr(path)
        suffix = path.suffix.lower()
        if suffix in (".tif", ".tiff"):
            return _open_tiff(path, lazy_above_bytes, defer)
        if suffix == ".png":
            return _open_png(path, defer)
        if suffix == ".npy":
            data = np.load(path, mmap_mode="r", allow_pickle=False)
            return ImageSource(path, data, None, "npy")
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"{path} cannot be read as an image ({type(e).__name__}: {e})") from e
    raise ImageError(
        f"{path}: unsupported file type {path.suffix or '(none)'}; give .tif, .tiff, .png, .npy or a .zarr folder"
    )


def _open_png(path: Path, defer: bool) -> ImageSource:
    import imageio.v3 as iio

    def load():
        return np.asarray(iio.imread(path)), []

    if not defer:
        data = load()[0]
        return ImageSource(path, data, "YX" if data.ndim == 2 else "YXS", "png")
    props = iio.improps(path)
    return ImageSource(
        path, None, "YX" if len(props.shape) == 2 else "YXS", "png", shape=props.shape, dtype=props.dtype, loader=load
    )


def _open_tiff(path: Path, lazy_above_bytes: int, defer: bool = False) -> ImageSource:
    import tifffile

    def load():
        tif = tifffile.TiffFile(path)
        try:
            series = tif.series[0]
            if _nbytes(series) <= lazy_above_bytes:
                data = series.asarray()
                tif.close()
                return data, []
            import zarr

            store = series.aszarr(level=0)
            return zarr.open(store, mode="r"), [tif.close, store.close]
        except BaseException:
            tif.close()
            raise

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes, shape, dtype = series.axes.replace("I", "Q"), series.shape, series.dtype
        calibration = tiff_calibration(tif, series)
    if defer:
        return ImageSource(path, None, axes, "tiff", shape=shape, dtype=dtype, loader=load, calibration=calibration)
    data, closers = load()
    return ImageSource(path, data, axes, "tiff", closers, calibration=calibration)


def _nbytes(series) -> int:
    return int(np.prod(series.shape, dtype=np.int64)) * np.dtype(series.dtype).itemsize


def _open_zarr(path: Path) -> ImageSource:
    import zarr

    node = zarr.open(str(path), mode="r")
    if hasattr(node, "shape"):
        names = node.attrs.get("_ARRAY_DIMENSIONS")
        calibration = _parent_calibration(path, len(node.shape))
        return ImageSource(path, node, _letters(names) if names else None, "zarr", calibration=calibration)
    multiscales = _multiscales(node.attrs)
    if multiscales:
        scale0 = multiscales[0]["datasets"][0]["path"]
        names = [a["name"] if isinstance(a, dict) else a for a in multiscales[0].get("axes", [])]
        array = node[scale0]
        calibration = ngff_calibration(multiscales[0])
        return ImageSource(path, array, _letters(names) if names else None, "zarr", calibration=calibration)
    arrays = [name for name, _ in _array_members(node)]
    if len(arrays) == 1:
        return ImageSource(path, node[arrays[0]], None, "zarr")
    example = path / (arrays[0] if arrays else "0")
    raise ImageError(
        f"{path} is a Zarr group without OME-Zarr multiscales metadata and with {len(arrays)} arrays "
        f"({', '.join(arrays[:5])}): give the array's folder, e.g. {example}"
    )


def _multiscales(attrs) -> list:
    attrs = dict(attrs)
    return attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales") or []


def _parent_calibration(path: Path, ndim: int) -> dict[int, PixelSize]:
    """An array given by its own folder inside an OME-Zarr image (image.zarr/0): its level's pixel sizes."""
    import zarr

    try:
        multiscales = _multiscales(zarr.open_group(str(path.parent), mode="r").attrs)
        for multiscale in multiscales[:1]:
            for i, dataset in enumerate(multiscale.get("datasets", [])):
                if str(dataset.get("path")).strip("/") == path.name and len(multiscale.get("axes", [])) == ndim:
                    return ngff_calibration(multiscale, i)
    except Exception:  # no OME-Zarr group above: a plain array
        logger.debug("no OME-Zarr metadata above %s", path, exc_info=True)
    return {}


def _array_members(group):
    members = group.arrays() if hasattr(group, "arrays") else []
    return list(members)


def _letters(names) -> str:
    return "".join(OME_AXIS_LETTERS.get(str(n).lower(), "Q") for n in names)


def write_tiff(path: Path, array: np.ndarray, axes: str, calibration: dict[str, PixelSize] | None = None) -> Path:
    """Write atomically (temporary file, then os.replace): the file is either complete or absent. ImageJ
    hyperstack layout when the axes and dtype allow it, so Fiji opens it with its dimensions; OME-TIFF for the
    same axes in a dtype ImageJ cannot hold; else (pages of unknown meaning, Q) tifffile's shaped layout, whose
    JSON description keeps the axes. `calibration` (file letter -> pixel size) goes into the ImageJ description
    (unit, spacing, finterval) or as OME's PhysicalSize*/TimeIncrement into the OME-XML or the JSON description,
    and into the resolution tags."""
    import tifffile

    path = Path(path)
    calibration = calibration or {}
    if array.dtype == bool:
        array = array.astype(np.uint8)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    imagej = set(axes) <= set(IMAGEJ_AXES) and array.dtype.type in IMAGEJ_DTYPES
    if imagej:
        order = sorted(range(len(axes)), key=lambda i: IMAGEJ_AXES.index(axes[i]))
        array = np.transpose(array, order)
        axes = "".join(axes[i] for i in order)
    try:
        if imagej:
            resolution, metadata = imagej_options(calibration)
            options = {"imagej": True, "metadata": {"axes": axes, **metadata}}
            if resolution is not None:
                options["resolution"] = resolution
            tifffile.imwrite(tmp, array, photometric="minisblack", **options)
        else:
            options = {"metadata": {"axes": axes, **ome_options(calibration)}, **tiff_resolution(calibration)}
            written = False
            if set(axes) <= set(IMAGEJ_AXES):  # a dtype ImageJ cannot hold
                try:
                    tifffile.imwrite(tmp, array, ome=True, photometric="minisblack", **options)
                    written = True
                except tifffile.OmeXmlError:  # nor OME (e.g. int64)
                    tmp.unlink(missing_ok=True)
            if not written:  # tifffile's own description keeps the axes (Q, B) and the pixel sizes
                tifffile.imwrite(tmp, array, photometric="minisblack", **options)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_csv(path: Path, header: list[str], rows: np.ndarray) -> Path:
    """A table with one header line, written atomically like the TIFFs."""
    import csv

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for row in np.asarray(rows):
                writer.writerow([repr(v.item()) if isinstance(v, np.floating) else v.item() for v in row])
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def create_zarr(
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype,
    chunks: tuple[int, ...],
    axes: str,
    calibration: dict[str, PixelSize] | None = None,
):
    """A new OME-Zarr (NGFF 0.4, Zarr format 2, readable by zarr 2 and 3) with one scale level `0`; its scale is
    the pixel size `calibration` gives an axis (by letter, with the unit on the axis), 1 elsewhere."""
    calibration = calibration or {}
    group = _open_group(path, "w")
    array = _create_array(group, "0", shape, chunks, np.dtype(dtype))
    scale = [calibration[letter].size if letter in calibration else 1.0 for letter in axes]
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "name": image_stem(path),
            "axes": [ngff_axis(letter, calibration.get(letter)) for letter in axes],
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
        }
    ]
    return array


def open_zarr_output(path: Path):
    """An existing zoo prediction output, for writing the chunks a restarted run has left."""
    import zarr

    return zarr.open_group(str(path), mode="r+")["0"]


def _open_group(path: Path, mode: str):
    import zarr

    try:
        return zarr.open_group(str(path), mode=mode, zarr_format=2)  # zarr >= 3
    except TypeError:
        return zarr.open_group(str(path), mode=mode)  # zarr 2 writes format 2 anyway


def _create_array(group, name: str, shape, chunks, dtype):
    if hasattr(group, "create_array"):  # zarr >= 3
        return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
    return group.create_dataset(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=0)


__all__ = [
    "ImageSource",
    "create_zarr",
    "image_stem",
    "is_image",
    "is_zarr",
    "open_image",
    "open_zarr_output",
    "write_csv",
    "write_tiff",
]
