"""Physical pixel sizes: read from an input (OME-XML, ImageJ metadata or TIFF resolution tags; OME-Zarr scales),
carried onto the outputs that keep the input's spatial axes (multiplied where the model rescales an axis), and
written back as ImageJ, OME-TIFF or OME-Zarr metadata. Nothing is written where the input said nothing."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

logger = logging.getLogger(__name__)

# canonical names are OME-Zarr's (UDUNITS-2); the aliases are what ImageJ, OME-XML and people write
UNIT_ALIASES = {
    "micrometer": ("micrometer", "micrometre", "micrometers", "micron", "microns", "um", "µm", "μm"),
    "nanometer": ("nanometer", "nanometre", "nanometers", "nm"),
    "millimeter": ("millimeter", "millimetre", "millimeters", "mm"),
    "centimeter": ("centimeter", "centimetre", "centimeters", "cm"),
    "meter": ("meter", "metre", "meters", "m"),
    "angstrom": ("angstrom", "å", "Å"),
    "inch": ("inch", "inches", "in"),
    "second": ("second", "seconds", "sec", "s"),
    "millisecond": ("millisecond", "milliseconds", "ms", "msec"),
    "microsecond": ("microsecond", "microseconds", "µs", "μs", "us"),
    "minute": ("minute", "minutes", "min"),
    "hour": ("hour", "hours", "hr", "h"),
}
CANONICAL = {alias.lower(): name for name, aliases in UNIT_ALIASES.items() for alias in aliases}
NO_UNIT = ("", "pixel", "pixels", "px", "none")
IMAGEJ_UNITS = {"micrometer": "um", "second": "sec", "angstrom": "\\u00C5", "microsecond": "us"}
OME_UNITS = {
    "micrometer": "µm",
    "nanometer": "nm",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
    "angstrom": "Å",
    "inch": "in",
    "second": "s",
    "millisecond": "ms",
    "microsecond": "µs",
    "minute": "min",
    "hour": "h",
}
OME_DEFAULT_UNITS = {"X": "µm", "Y": "µm", "Z": "µm", "T": "s"}
MICROMETERS_PER_RESOLUTION_UNIT = {2: 25400.0, 3: 1e4, 4: 1e3, 5: 1.0}  # TIFF ResolutionUnit: inch, cm, mm, µm


@dataclass(frozen=True)
class PixelSize:
    """The physical extent of one pixel along an axis: `size` in `unit` (a canonical name such as 'micrometer'
    or 'second', the file's own word for units this module does not know, None when the file gave none)."""

    size: float
    unit: str | None = None

    def scaled(self, factor) -> PixelSize:
        return PixelSize(float(Fraction(self.size) * Fraction(factor)), self.unit)


def canonical_unit(text) -> str | None:
    if text is None:
        return None
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), str(text)).strip()
    if text.lower() in NO_UNIT:
        return None
    return CANONICAL.get(text.lower(), CANONICAL.get(text, text))


def _positive(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 and value == value and value != float("inf") else None


# ------------------------------------------------------------------------------------------------- reading


def tiff_calibration(tif, series) -> dict[int, PixelSize]:
    """Pixel sizes of a TIFF's first series by dimension: OME-XML's PhysicalSize/TimeIncrement, else ImageJ's
    unit, spacing and frame interval with the resolution tags, else the resolution tags with their unit.
    Metadata that cannot be read gives none (the pixels are still predicted)."""
    try:
        return _tiff_calibration(tif, series)
    except Exception:  # a malformed tag or description is no calibration
        logger.debug("no pixel size read from %s", tif.filename, exc_info=True)
        return {}


def _tiff_calibration(tif, series) -> dict[int, PixelSize]:
    axes = series.axes
    found: dict[str, PixelSize] = {}
    if tif.is_ome:
        found = _ome_xml(tif.ome_metadata)
    elif tif.is_shaped and tif.shaped_metadata:  # as zoo writes pages of unknown meaning
        found = _ome_pixels(tif.shaped_metadata[0])
    if not found and tif.is_imagej:
        found = _imagej(tif.imagej_metadata or {}, series.keyframe, axes)
    if not found:
        found = _resolution_tags(series.keyframe)
    return {i: found[letter] for i, letter in enumerate(axes) if letter in found}


def _ome_xml(xml: str | None) -> dict[str, PixelSize]:
    import tifffile

    if not xml:
        return {}
    try:
        images = tifffile.xml2dict(xml)["OME"]["Image"]
    except Exception:  # metadata one cannot read is no metadata
        return {}
    image = images[0] if isinstance(images, list) else images
    return _ome_pixels(image.get("Pixels", {}) if isinstance(image, dict) else {})


def _ome_pixels(pixels: dict) -> dict[str, PixelSize]:
    """OME's PhysicalSizeX/Y/Z and TimeIncrement, with their units (OME's defaults µm and s where absent)."""
    found = {}
    for letter in "XYZ":
        size = _positive(pixels.get(f"PhysicalSize{letter}"))
        if size is not None:
            unit = pixels.get(f"PhysicalSize{letter}Unit", OME_DEFAULT_UNITS[letter])
            found[letter] = PixelSize(size, canonical_unit(unit))
    interval = _positive(pixels.get("TimeIncrement"))
    if interval is not None:
        found["T"] = PixelSize(interval, canonical_unit(pixels.get("TimeIncrementUnit", "s")))
    return found


def _imagej(metadata: dict, page, axes: str) -> dict[str, PixelSize]:
    unit = canonical_unit(metadata.get("unit"))
    found = {}
    if unit is not None:
        for letter, size in _tag_sizes(page).items():
            found[letter] = PixelSize(size, canonical_unit(metadata.get("yunit", unit)) if letter == "Y" else unit)
        spacing = _positive(metadata.get("spacing"))
        if spacing is not None:
            # an ImageJ stack without hyperstack dimensions is a stack of slices: its spacing is theirs
            z = "Z" if "Z" in axes or "I" not in axes else "I"
            found[z] = PixelSize(spacing, canonical_unit(metadata.get("zunit", unit)))
    else:
        found = _resolution_tags(page)
        spacing, zunit = _positive(metadata.get("spacing")), canonical_unit(metadata.get("zunit"))
        if spacing is not None and zunit is not None:
            found["Z"] = PixelSize(spacing, zunit)
    interval = _positive(metadata.get("finterval"))
    if interval is not None:
        found["T"] = PixelSize(interval, canonical_unit(metadata.get("tunit", "sec")) or "second")
    return found


def _tag_sizes(page) -> dict[str, float]:
    sizes = {}
    for letter, name in (("X", "XResolution"), ("Y", "YResolution")):
        tag = page.tags.get(name)
        value = tag.value if tag is not None else None
        if isinstance(value, tuple) and len(value) == 2 and value[0] and value[1]:
            sizes[letter] = value[1] / value[0]
    return sizes


def _resolution_tags(page) -> dict[str, PixelSize]:
    sizes = _tag_sizes(page)
    tag = page.tags.get("ResolutionUnit")
    resolution_unit = int(tag.value) if tag is not None else 2  # TIFF's default is inch
    factor = MICROMETERS_PER_RESOLUTION_UNIT.get(resolution_unit)
    if factor is None:  # no unit: only a size other than 1 says something (1 is what writers put by default)
        if all(size == 1 for size in sizes.values()):
            return {}
        return {letter: PixelSize(size) for letter, size in sizes.items()}
    return {letter: PixelSize(size * factor, "micrometer") for letter, size in sizes.items()}


def ngff_calibration(multiscale: dict, dataset: int = 0) -> dict[int, PixelSize]:
    """Pixel sizes by dimension from OME-Zarr multiscales metadata: the scale of dataset `dataset` (times the
    multiscale's own scale, if any) along the space and time axes, with the axes' units."""
    try:
        return _ngff_calibration(multiscale, dataset)
    except Exception:  # malformed metadata is no calibration
        logger.debug("no pixel size read from %r", multiscale, exc_info=True)
        return {}


def _ngff_calibration(multiscale: dict, dataset: int) -> dict[int, PixelSize]:
    axes = multiscale.get("axes") or []
    scale = [1.0] * len(axes)
    transforms = [
        *multiscale["datasets"][dataset].get("coordinateTransformations", []),
        *multiscale.get("coordinateTransformations", []),
    ]
    for transform in transforms:
        if transform.get("type") == "scale" and isinstance(transform.get("scale"), list):
            scale = [a * float(b) for a, b in zip(scale, transform["scale"])]
    found = {}
    for i, (axis, size) in enumerate(zip(axes, scale)):
        name = axis.get("name") if isinstance(axis, dict) else axis
        kind = axis.get("type") if isinstance(axis, dict) else None
        if kind not in ("space", "time") and str(name).lower() not in ("t", "z", "y", "x", "time"):
            continue
        unit = canonical_unit(axis.get("unit")) if isinstance(axis, dict) else None
        if _positive(size) is None or (size == 1 and unit is None):
            continue
        found[i] = PixelSize(float(size), unit)
    return found


# ------------------------------------------------------------------------------------------------- writing


def imagej_options(calibration: dict[str, PixelSize]) -> tuple[tuple[float, float] | None, dict[str, Any]]:
    """`resolution` (pixels per unit along x, y) and the ImageJ description's unit, spacing and frame interval."""
    metadata: dict[str, Any] = {}
    x, y, z, t = (calibration.get(letter) for letter in "XYZT")
    resolution = None
    plane_unit = (x or y).unit if (x or y) else None
    if x or y:
        resolution = (1 / x.size if x else 1.0, 1 / y.size if y else 1.0)
        if plane_unit is not None:
            metadata["unit"] = _imagej_unit(plane_unit)
        if y and x and y.unit != x.unit and y.unit is not None:
            metadata["yunit"] = _imagej_unit(y.unit)
    if z:
        metadata["spacing"] = z.size
        if z.unit is not None and z.unit != plane_unit:  # no `unit` for z alone: it would calibrate x and y
            metadata["zunit"] = _imagej_unit(z.unit)
    if t:
        metadata["finterval"] = t.size
        if t.unit not in (None, "second"):
            metadata["tunit"] = _imagej_unit(t.unit)
    return resolution, metadata


def _imagej_unit(unit: str) -> str:
    unit = IMAGEJ_UNITS.get(unit, OME_UNITS.get(unit, unit))
    return "".join(c if ord(c) < 128 else f"\\u{ord(c):04X}" for c in unit)  # ImageJ's escape


def ome_options(calibration: dict[str, PixelSize]) -> dict[str, Any]:
    """OME-XML Pixels attributes for the axes whose unit OME can name (OME assumes µm where none is given)."""
    metadata: dict[str, Any] = {}
    for letter in "XYZ":
        pixel = calibration.get(letter)
        if pixel is not None and pixel.unit in OME_UNITS:
            metadata[f"PhysicalSize{letter}"] = pixel.size
            metadata[f"PhysicalSize{letter}Unit"] = OME_UNITS[pixel.unit]
    t = calibration.get("T")
    if t is not None and t.unit in OME_UNITS:
        metadata["TimeIncrement"] = t.size
        metadata["TimeIncrementUnit"] = OME_UNITS[t.unit]
    return metadata


def tiff_resolution(calibration: dict[str, PixelSize]) -> dict[str, Any]:
    """Resolution tags in pixels per centimetre, for x and y sizes in a length unit (else nothing)."""
    factors = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3, "centimeter": 1e4, "meter": 1e6}
    x, y = calibration.get("X"), calibration.get("Y")
    known = [p for p in (x, y) if p is not None]
    if not known or any(p.unit not in factors for p in known):
        return {}
    per_cm = [1e4 / (p.size * factors[p.unit]) if p else 1.0 for p in (x, y)]
    return {"resolution": tuple(per_cm), "resolutionunit": "CENTIMETER"}


def ngff_axis(letter: str, pixel: PixelSize | None) -> dict:
    kinds = {"T": ("t", "time"), "C": ("c", "channel"), "Z": ("z", "space"), "Y": ("y", "space"), "X": ("x", "space")}
    name, kind = kinds.get(letter, (letter.lower(), None))
    axis = {"name": name, "type": kind} if kind else {"name": name}
    if pixel is not None and pixel.unit is not None and kind in ("space", "time"):
        axis["unit"] = pixel.unit
    return axis


__all__ = [
    "PixelSize",
    "canonical_unit",
    "imagej_options",
    "ngff_axis",
    "ngff_calibration",
    "ome_options",
    "tiff_calibration",
    "tiff_resolution",
]
