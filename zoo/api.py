"""The five stages as plain functions: train → export → package → validate → predict.

Each returns an object; none prints. The CLI is a thin layer over these."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from zoo.config import PackageConfig, TrainConfig
from zoo.errors import InputError
from zoo.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)


def train(config: TrainConfig, progress: Progress | None = None):
    """Train the configured trainer; returns a TrainResult whose checkpoint the other stages take."""
    from zoo.trainers import get_trainer

    trainer = get_trainer(config.trainer)
    return trainer.train(config, progress or SilentProgress())


def export(checkpoint: Path, out_dir: Path, formats: str | list[str] | None = None, progress: Progress | None = None):
    """Write every requested weight format of a checkpoint into `out_dir`, each proven against the
    source model; formats that fail are listed in the result, not written."""
    from zoo.packaging.export import export_checkpoint, parse_formats
    from zoo.trainers.checkpoint import load_checkpoint

    loaded = load_checkpoint(Path(checkpoint))
    names = parse_formats(formats, loaded.framework)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".zoo-export-") as tmp:
        result = export_checkpoint(loaded, names, Path(tmp), loaded.sample["image"], progress)
        for weights in result.weights:
            destination = out_dir / weights.path.name
            os.replace(weights.path, destination)
            weights.path = destination
            architecture = weights.details.get("architecture_file")
            if architecture is not None:
                shutil.move(str(architecture), out_dir / Path(architecture).name)
                weights.details["architecture_file"] = out_dir / Path(architecture).name
    return result


def package(
    checkpoint: Path,
    out_dir: Path,
    formats: str | list[str] | None = None,
    config: PackageConfig | dict | None = None,
    progress: Progress | None = None,
):
    """Export, describe, zip and validate; the zip appears in `out_dir` only if it validates. `config`: a
    PackageConfig, or settings to put over the trainer's defaults (name, description, tags)."""
    from zoo.packaging.export import parse_formats
    from zoo.packaging.package import build_package
    from zoo.trainers import default_package_config
    from zoo.trainers.checkpoint import load_checkpoint

    loaded = load_checkpoint(Path(checkpoint))
    if not isinstance(config, PackageConfig):
        config = default_package_config(loaded.trainer, **(config or {}))
    return build_package(loaded, Path(out_dir), parse_formats(formats, loaded.framework), config, progress)


def validate(
    source: Path,
    *,
    trust: bool = False,
    device: str = "cpu",
    keep_artifacts: Path | None = None,
    time_limit_s: float | None = None,
    memory_limit_mb: float | None = None,
    progress: Progress | None = None,
):
    """Validate a package folder, rdf file or zip; returns a ValidationReport (status, findings). The model
    runs happen in a child process bounded by the time and memory limits."""
    from zoo.validators import validate_source

    return validate_source(
        Path(source),
        trust=trust,
        device=device,
        keep_artifacts=keep_artifacts,
        time_limit_s=time_limit_s,
        memory_limit_mb=memory_limit_mb,
        progress=progress,
    )


def validate_collection(
    source: Path,
    out_dir: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    target: str = "bioimageio",
    trust: bool = False,
    device: str = "cpu",
    use_cache: bool = True,
    cache_dir: Path | None = None,
    time_limit_s: float | None = None,
    memory_limit_mb: float | None = None,
    isolate: bool = True,
    progress: Progress | None = None,
):
    """Validate every package under a folder (or listed in a text file), each on its own, sequentially, on
    `workers` local Dask processes or on the Dask cluster at `scheduler`; unchanged packages come from the
    cache. Writes summary.json, summary.md, junit.xml, reports/ and index.html into `out_dir`; returns a
    CollectionResult (entries, exit_code)."""
    from zoo.validators.collection import validate_collection as run_collection

    return run_collection(
        Path(source),
        Path(out_dir),
        workers=workers,
        scheduler=scheduler,
        target=target,
        trust=trust,
        device=device,
        use_cache=use_cache,
        cache_dir=cache_dir,
        time_limit_s=time_limit_s,
        memory_limit_mb=memory_limit_mb,
        isolate=isolate,
        progress=progress,
    )


@dataclass
class DemoResult:
    training: object
    package: object
    report: object
    zip_path: Path
    report_path: Path


def demo(
    out_dir: Path, trainer: str = "unet2d", quick: bool = False, device: str = "auto", progress: Progress | None = None
) -> DemoResult:
    """The whole chain on synthetic data: train, export, package, validate. Leaves `out_dir/<name>.zip`,
    `out_dir/validation.json` and the training run in `out_dir/training/`."""
    out_dir = Path(out_dir)
    stale = sorted(out_dir.glob("*.zip")) if out_dir.exists() else []
    if stale:
        raise InputError(f"{out_dir} already holds {stale[0].name}: give an empty or new --out folder")
    from zoo.trainers import default_config

    config = default_config(trainer, quick, device=device, out=out_dir / "training")
    trained = train(config, progress)
    packaged = package(trained.checkpoint, out_dir, None, None, progress)
    report = packaged.report
    report.source = str(packaged.zip_path)
    report_path = report.write_json(out_dir / "validation.json")
    return DemoResult(trained, packaged, report, packaged.zip_path, report_path)


def predict(
    model: Path,
    inputs,
    out_dir: Path,
    *,
    weights: str | None = None,
    device: str = "auto",
    tile="auto",
    batch_size: int | None = None,
    memory_limit: int | str | None = None,
    trust: bool = False,
    axes: str | None = None,
    blend: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
):
    """Predict every input (image files, Zarr folders or folders of images) with a package (folder, rdf or zip);
    writes `<input stem>_<output id>.tif` (`.zarr` for Zarr inputs) into `out_dir` and returns a
    PredictionResult. `scheduler`: a Dask address or "local" to spread the work over workers. An `out_dir` inside
    the package is refused (InputError): the package is never changed."""
    from zoo.bioimage.source import refuse_output_inside

    refuse_output_inside("--out", Path(out_dir), Path(model))
    options = dict(
        weights=weights,
        device=device,
        tile=tile,
        batch_size=batch_size,
        memory_limit=memory_limit,
        trust=trust,
        axes=axes,
        blend=blend,
        progress=progress,
    )
    if scheduler:
        from zoo.inference.distributed import predict_distributed

        return predict_distributed(Path(model), inputs, Path(out_dir), scheduler=scheduler, **options)
    from zoo.inference.predict import predict as predict_images

    return predict_images(Path(model), inputs, Path(out_dir), **options)


def fix_deepimagej(source: Path, out_dir: Path, *, device: str = "cpu", progress: Progress | None = None):
    """Rewrite a third-party package for Fiji's deepImageJ (the input is never modified); returns a FixResult with
    what was fixed, what was not (rule IDs) and the fixed package's ValidationReport."""
    from zoo.packaging.fix_deepimagej import fix_deepimagej as fix

    return fix(Path(source), Path(out_dir), device=device, progress=progress)
