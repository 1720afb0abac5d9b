"""Images for failed reproductions (REP001) in the HTML report: input, expected, produced and their
difference, as small greyscale PNG data URIs. The test tensors are read from the package itself (a zip is
read in place, not unpacked), the produced outputs from the kept artifacts; nothing is run again."""

from __future__ import annotations

import base64
import logging
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from zoo.validators.report import ValidationReport

logger = logging.getLogger(__name__)

PREVIEW_PIXELS = 128  # longest side of an image in the HTML report
_REPRODUCTION_LOCATION = re.compile(r"^weights\.(?P<weights>[^/]+)/outputs\[(?P<output>.+)\]$")


@dataclass(frozen=True)
class _TestTensorFile:
    source: str  # path inside the package
    axes: list[str] | None


def reproduction_figures(report: ValidationReport) -> dict[int, list[tuple[str, str, str]]]:
    """id(finding) -> [(caption, data URI, value range)] for each failed REP001 finding with details."""
    wanted = [
        f
        for f in report.findings
        if f.id == "REP001" and f.status == "failed" and f.details and _REPRODUCTION_LOCATION.match(f.location)
    ]
    if not wanted:
        return {}
    try:
        with _PackageFiles(Path(report.source)) as package:
            inputs, outputs = _test_tensor_files(package.rdf())
            first_input = next(iter(inputs.items()), None)
            input_image = None
            if first_input is not None:
                input_id, tensor = first_input
                plane = _plane(package.load_npy(tensor.source), tensor.axes)
                input_image = (f"input {input_id}", *_image(plane, *_value_range([plane])))
            figures = {}
            for finding in wanted:
                match = _REPRODUCTION_LOCATION.match(finding.location)
                weights, output_id = match["weights"], match["output"]
                tensor = outputs.get(output_id)
                if tensor is None:
                    continue
                expected = _plane(package.load_npy(tensor.source), tensor.axes)
                produced = _load_produced(report.artifacts, weights, output_id)
                produced = _plane(produced, tensor.axes) if produced is not None else None
                images = [input_image] if input_image else []
                planes = [expected] + ([produced] if produced is not None else [])
                low, high = _value_range(planes)
                images.append((f"expected {output_id}", *_image(expected, low, high)))
                if produced is not None and produced.shape == expected.shape:
                    images.append((f"produced by {weights}", *_image(produced, low, high)))
                    difference = np.abs(produced.astype(np.float64) - expected.astype(np.float64))
                    images.append(("|produced − expected|", *_image(difference, 0.0, _value_range([difference])[1])))
                figures[id(finding)] = images
            return figures
    except Exception:  # images are a courtesy: the report is complete without them
        logger.debug("no reproduction images for %s", report.source, exc_info=True)
        return {}


def _load_produced(artifacts: str | None, weights: str, output_id: str) -> np.ndarray | None:
    if not artifacts:
        return None
    path = Path(artifacts) / f"{weights}_{output_id}.npy"
    return np.load(path, allow_pickle=False) if path.is_file() else None


def _test_tensor_files(rdf: dict) -> tuple[dict[str, _TestTensorFile], dict[str, _TestTensorFile]]:
    """Test tensors per tensor id from the raw rdf, format 0.5 (`test_tensor`) or 0.4 (`test_inputs`)."""
    found: list[dict[str, _TestTensorFile]] = []
    for kind in ("inputs", "outputs"):
        tensors: dict[str, _TestTensorFile] = {}
        old_style = rdf.get(f"test_{kind}") or []
        for i, tensor in enumerate(rdf.get(kind) or []):
            if not isinstance(tensor, dict):
                continue
            test_tensor = tensor.get("test_tensor")
            source = test_tensor.get("source") if isinstance(test_tensor, dict) else None
            if source is None and i < len(old_style):
                source = old_style[i]
            if isinstance(source, str):
                tensor_id = str(tensor.get("id") or tensor.get("name") or i)
                tensors[tensor_id] = _TestTensorFile(source, _axis_names(tensor.get("axes")))
        found.append(tensors)
    return found[0], found[1]


def _axis_names(axes) -> list[str] | None:
    if isinstance(axes, str):  # format 0.4: "bcyx"
        return list(axes)
    if isinstance(axes, list):
        names = []
        for axis in axes:
            if not isinstance(axis, dict):
                return None
            names.append(
                str(
                    axis.get("id")
                    or {"batch": "b", "channel": "c", "index": "i", "time": "t"}.get(axis.get("type"), "?")
                )
            )
        return names
    return None


def _plane(array: np.ndarray, axes: list[str] | None) -> np.ndarray:
    """A 2D (y, x) plane to show: first batch/channel/index, middle z."""
    array = np.asarray(array)
    if axes is not None and len(axes) == array.ndim and "y" in axes and "x" in axes:
        index = tuple(
            slice(None) if name in ("y", "x") else (array.shape[i] // 2 if name == "z" else 0)
            for i, name in enumerate(axes)
        )
        plane = array[index]
        return plane.T if axes.index("x") < axes.index("y") else plane
    plane = np.squeeze(array)
    while plane.ndim > 2:
        plane = plane[0]
    return np.atleast_2d(plane)


def _value_range(planes: list[np.ndarray]) -> tuple[float, float]:
    finite = [p[np.isfinite(p)] for p in (np.asarray(p, dtype=np.float64) for p in planes)]
    finite = [f for f in finite if f.size]
    if not finite:
        return 0.0, 1.0
    return float(min(f.min() for f in finite)), float(max(f.max() for f in finite))


def _image(plane: np.ndarray, low: float, high: float) -> tuple[str, str]:
    """(data URI of a greyscale PNG scaled from [low, high], "low … high")."""
    values = np.asarray(plane, dtype=np.float64)
    step = max(1, math.ceil(max(values.shape) / PREVIEW_PIXELS))
    values = np.nan_to_num(values[::step, ::step], nan=low, posinf=high, neginf=low)
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    grey = np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)
    uri = "data:image/png;base64," + base64.b64encode(encode_png(grey)).decode("ascii")
    return uri, f"{low:.4g} … {high:.4g}"


def encode_png(grey: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG, written by imageio (a dependency already)."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", np.ascontiguousarray(grey, dtype=np.uint8), extension=".png")


class _PackageFiles:
    """Reads files of a package (folder, rdf yaml or zip) without extracting it; never leaves it."""

    def __init__(self, source: Path) -> None:
        from zoo.bioimage.source import RDF_NAMES, find_rdf

        self._zip: zipfile.ZipFile | None = None
        if source.is_dir():
            self._root, self._rdf = source, find_rdf(source).name
        elif zipfile.is_zipfile(source):
            self._zip = zipfile.ZipFile(source)
            names = set(self._zip.namelist())
            candidates = [n for n in RDF_NAMES if n in names] or sorted(
                n for n in names if "/" not in n and n.endswith(".bioimageio.yaml")
            )
            if not candidates:
                raise FileNotFoundError(f"{source} holds no rdf")
            self._root, self._rdf = None, candidates[0]
        else:
            self._root, self._rdf = source.parent, source.name

    def read(self, name: str) -> bytes:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or "://" in name:
            raise ValueError(f"{name!r} is not a file inside the package")
        if self._zip is not None:
            return self._zip.read(relative.as_posix())
        return (self._root / relative).read_bytes()

    def rdf(self) -> dict:
        from ruyaml import YAML

        rdf = YAML(typ="safe").load(self.read(self._rdf).decode("utf-8"))
        if not isinstance(rdf, dict):
            raise ValueError("the rdf is not a mapping")
        return rdf

    def load_npy(self, name: str) -> np.ndarray:
        import io

        return np.load(io.BytesIO(self.read(name)), allow_pickle=False)

    def __enter__(self) -> _PackageFiles:
        return self

    def __exit__(self, *exc) -> None:
        if self._zip is not None:
            self._zip.close()
