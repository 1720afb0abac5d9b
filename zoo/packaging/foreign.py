"""`zoo package SOURCE --sample IMAGE`: package a model zoo did not train. The model is opened from its file
(zoo.packaging.sources), probed by running it on the sample (zoo.packaging.probe: axes, valid sizes, batch, how the
output relates to the input, halo), exported to every format its framework allows with proof, described at format
0.5 in the user's words, validated, and only then moved into place (as zoo.packaging.package does for checkpoints)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.config import PackageConfig
from zoo.errors import InputError
from zoo.packaging.export import ExportResult, Geometry, export_model, parse_formats, refuse_existing
from zoo.packaging.exporters import ExportContext
from zoo.packaging.metadata import check_package_config
from zoo.packaging.package import (
    PackageResult,
    describe_in,
    move_into_place,
    point_into_zip,
    staging_folder,
    validate_staged,
    write_package_zip,
)
from zoo.packaging.rdf import model_id
from zoo.packaging.sources import ModelSource, open_model_source
from zoo.progress import Progress, SilentProgress
from zoo.trainers.task import Task

logger = logging.getLogger(__name__)

PREPROCESSING = ("none", "zero_mean_unit_variance", "scale_range")
SCALE_RANGE_PERCENTILES = (1.0, 99.8)
EPSILON = 1e-6
INPUT_ID, OUTPUT_ID = "input", "output"


@dataclass
class ForeignModel:
    """What zoo knows of a model it did not train: its file, what probing found, how its input is prepared."""

    source: ModelSource
    probe: Any  # zoo.packaging.probe.Probe
    preprocessing: str
    task: Task
    raw: np.ndarray  # the sample cropped to a valid size, in the model's layout without batch, as stored
    output: np.ndarray  # the model's output on it (batch of one)


def source_name(source: str | Path) -> str:
    """What names the model before the user does: its file, or the class of a Python architecture."""
    head, sep, name = str(source).rpartition(":")
    return name if sep and head.endswith(".py") else Path(str(source)).name


def target_path(source: str | Path, out_dir: Path, config: PackageConfig) -> Path:
    from zoo.model_cards.metadata import foreign_name

    return Path(out_dir) / f"{model_id(foreign_name(config, source_name(source)))}.zip"


def package_model(
    source: str | Path,
    sample: Path,
    out_dir: Path,
    formats: str | list[str] | None = None,
    config: PackageConfig | None = None,
    progress: Progress | None = None,
    *,
    weights: Path | None = None,
    kwargs: dict[str, Any] | None = None,
    axes: str | None = None,
    preprocessing: str = "none",
    trust: bool = False,
    overwrite: bool = False,
) -> PackageResult:
    """Package the model in `source` with `sample` as its test input and cover; the zip lands in `out_dir` only if
    it validates. Bad input (untrusted code, an unreadable sample, a model that fails on it) is one InputError line
    before anything is written."""
    from zoo.model_cards.metadata import foreign_metadata

    progress = progress or SilentProgress()
    config = check_package_config(config or PackageConfig())
    layout = check_axes(axes)
    if preprocessing not in PREPROCESSING:
        raise InputError(f"--preprocessing {preprocessing}: choose from {', '.join(PREPROCESSING)}")
    target = target_path(source, out_dir, config)
    refuse_existing([target], overwrite)
    image = read_sample(Path(sample))
    opened = open_model_source(source, weights=weights, kwargs=kwargs, trust=trust)
    model = probe_source(opened, image, layout, preprocessing, progress)
    metadata = foreign_metadata(config, source_name(source), summary(model))
    formats = parse_formats(formats, opened.framework)

    out_dir = Path(out_dir)
    with staging_folder(out_dir, ".zoo-package-") as tmp:
        folder = tmp / "package"
        folder.mkdir()
        exported = _export(model, formats, folder, progress)
        from zoo.packaging.foreign_rdf import build_foreign_descr, write_foreign_files

        files = write_foreign_files(model, exported, metadata, folder)
        descr = describe_in(folder, config, lambda: build_foreign_descr(model, exported, files, config, metadata))
        staged_zip = tmp / target.name
        write_package_zip(descr, folder, staged_zip)
        report = validate_staged(staged_zip, target, config, trust=trust, progress=progress)
        move_into_place(staged_zip, target, overwrite)
        point_into_zip(exported, folder, target)
    return PackageResult(target, exported, report, list(metadata.warnings), probe=model.probe)


def check_axes(axes: str | None) -> str | None:
    """`--axes cyx` → the model layout "bcyx"; None stays None (probing finds the axes)."""
    if axes is None:
        return None
    letters = axes.strip().lower().removeprefix("b")
    if (
        not set(letters) <= set("czyx")
        or len(set(letters)) != len(letters)
        or not {"y", "x"} <= set(letters)
        or letters.replace("c", "") not in ("yx", "zyx")
    ):
        raise InputError(
            f"--axes {axes}: give the model's input axes without batch, channels first or last, e.g. cyx, yxc, czyx"
        )
    return "b" + (letters if "c" in letters else "c" + letters)


def read_sample(path: Path) -> np.ndarray:
    """The sample image as float32 with its size-1 axes dropped (TIFF, PNG or .npy)."""
    from zoo.inference.image_io import open_image

    image = open_image(path)
    try:
        array = np.asarray(image.data)
    finally:
        image.close()
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"--sample {path}: pixels of type {array.dtype}, expected integers or floats")
    array = np.squeeze(array).astype(np.float32)
    if array.ndim not in (2, 3, 4) or min(array.shape) < 1:
        raise InputError(f"--sample {path}: shape {array.shape}, expected a 2D or 3D image, with or without channels")
    if not np.isfinite(array).all():
        raise InputError(f"--sample {path} contains NaN or infinite values: give a real image")
    return array


def preprocess(x: np.ndarray, layout: str, method: str) -> np.ndarray:
    """The rdf's pre-processing per sample, over its channels and spatial axes together (as bioimageio.core computes
    it; joint over channels also because deepImageJ computes it so whatever the rdf says, DIJ30)."""
    x = x.astype(np.float32)
    if method == "none":
        return x
    axes = tuple(i for i, a in enumerate(layout) if a != "b")
    if method == "zero_mean_unit_variance":
        mean, std = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True)
        return ((x - mean) / (std + EPSILON)).astype(np.float32)
    low, high = (np.percentile(x, q, axis=axes, keepdims=True) for q in SCALE_RANGE_PERCENTILES)
    return ((x - low) / (high - low + EPSILON)).astype(np.float32)


def probe_source(
    opened: ModelSource, image: np.ndarray, layout: str | None, preprocessing: str, progress: Progress
) -> ForeignModel:
    """Probe the model on the (pre-processed) sample, crop the sample to a valid size and run the model on it."""
    from zoo.packaging.probe import probe_model

    runner = opened.source_model("", Task())
    whole = image if preprocessing == "none" else preprocess(image[None], "b" + "y" * image.ndim, preprocessing)[0]
    probe = probe_model(runner.predict, whole, layout=layout, channels_last=opened.channels_last, progress=progress)
    raw = _crop(probe.model_input(image)[0], probe)
    model_input = preprocess(raw[None], probe.layout, preprocessing)
    output = np.asarray(runner.predict(model_input), dtype=np.float32)
    return ForeignModel(opened, probe, preprocessing, _task(probe), raw, output)


def summary(model: ForeignModel) -> str:
    probe = model.probe
    what = {
        "classification": f"An image classifier with {probe.output_channels} outputs",
        "segmentation": "A network whose output lies in [0, 1] (probabilities)",
        "restoration": "An image-to-image network",
    }[model.task.kind]
    dims = "3D" if probe.spatial == "zyx" else "2D"
    return f"{what} for {dims} images with {probe.channels} channel{'s' if probe.channels != 1 else ''}."


def _crop(image: np.ndarray, probe) -> np.ndarray:
    """The centre of `image` at the largest size ≥ the smallest tile that the model accepts, on every spatial axis."""
    layout = probe.layout[1:]
    window = []
    for axis, size in zip(layout, image.shape):
        if axis not in "zyx":
            window.append(slice(None))
            continue
        valid = probe.largest_valid(size)
        if valid is None or (probe.step and valid < probe.tile_min_size):
            need = probe.min_size if not probe.step else probe.tile_min_size
            raise InputError(
                f"--sample: the image is {size} px along {axis}, the model needs at least {need} px "
                f"({_sizes_text(probe)}): give a larger sample"
            )
        window.append(slice((size - valid) // 2, (size - valid) // 2 + valid))
    return image[tuple(window)]


def _sizes_text(probe) -> str:
    if not probe.step:
        return f"exactly {probe.min_size} px"
    halo = f", halo {probe.halo}" if probe.halo else ""
    return f"valid sizes {probe.min_size} + n·{probe.step}{halo}"


def _task(probe) -> Task:
    kind = "classification" if probe.relation == "none" else "segmentation" if probe.probability_like else "restoration"
    return Task(
        kind=kind,
        spatial=probe.spatial,
        input_id=INPUT_ID,
        output_id=OUTPUT_ID,
        input_channels=_channel_names("channel", probe.channels),
        output_channels=_channel_names("class" if kind == "classification" else "channel", probe.output_channels),
        output_range=(0.0, 1.0) if probe.probability_like else None,
        input_description="the model's input, as the sample given when it was packaged",
        output_description="the model's output" + (" (values in [0, 1])" if probe.probability_like else ""),
        fixed_size=(probe.min_size,) * len(probe.spatial) if not probe.step else None,
    )


def _channel_names(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(count))


def _export(model: ForeignModel, formats: list[str], folder: Path, progress: Progress) -> ExportResult:
    probe, opened = model.probe, model.source
    source = opened.source_model(probe.layout, model.task, probe.output_layout)
    geometry = Geometry(
        min_size=probe.tile_min_size if probe.step else probe.min_size,
        step=probe.step,
        halo=probe.halo or 0,
        halo_measurement=probe.halo_measurement,
    )
    file, callable_name, kwargs = opened.architecture or (opened.path, "", {})
    context = ExportContext(
        architecture_file=Path(file),
        architecture_callable=callable_name,
        architecture_kwargs=kwargs,
        input_id=INPUT_ID,
        output_id=OUTPUT_ID,
        layout=probe.layout,
        output_layout=probe.output_layout if probe.output_layout != probe.layout else None,
    )
    test_input = preprocess(model.raw[None], probe.layout, model.preprocessing)
    max_batch = 2 if probe.batch_independent else 1
    result = export_model(source, formats, folder, test_input, geometry, context, progress, max_batch=max_batch)
    result.test_image = model.raw
    return result
