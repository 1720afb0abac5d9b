"""The five stages as plain functions: train → export → package → validate → predict.

Each returns an object; none prints. The CLI is a thin layer over these."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import InputError
from zoo.progress import Progress, SilentProgress

if TYPE_CHECKING:  # imported where used: `zoo validate` starts its processes without waiting for pydantic
    from zoo.config import PackageConfig, TrainConfig

logger = logging.getLogger(__name__)


def _progress(progress: Progress | bool | None) -> Progress:
    """None: a bar in notebooks, nothing elsewhere (library code never prints); True: a bar or lines; False: none."""
    from zoo.progress import auto_progress, in_notebook

    if progress is None:
        return auto_progress() if in_notebook() else SilentProgress()
    if progress is True:
        return auto_progress()
    if progress is False:
        return SilentProgress()
    return progress


def train(
    config: TrainConfig | None = None,
    progress: Progress | bool | None = None,
    *,
    trainer: str = "unet2d",
    data: str | Path | None = None,
    quick: bool = False,
    overwrite: bool = False,
    **settings,
):
    """Train a model; returns a TrainResult whose checkpoint the other stages take.

    Either a TrainConfig, or keywords: `train(trainer="unet2d", data="my_folder/", epochs=30, out="runs/a")`,
    any TrainConfig field as a keyword over the trainer's defaults (`quick` for a smoke-test run). A run folder
    that holds an earlier run is refused unless `overwrite` (or `resume=True` to continue it)."""
    from zoo.trainers import get_trainer
    from zoo.trainers.runs import refuse_overwrite

    if config is None:
        config = training_config(trainer, data=data, quick=quick, **settings)
    elif settings or data is not None:
        raise InputError("give a TrainConfig or keywords, not both")
    refuse_overwrite(config.out, resume=config.resume, overwrite=overwrite)
    return get_trainer(config.trainer).train(config, _progress(progress))


def training_config(trainer: str = "unet2d", *, data=None, quick: bool = False, **settings) -> TrainConfig:
    """The trainer's defaults with `settings` over them; a bad value is one InputError line naming the setting."""
    from pydantic import ValidationError

    from zoo.config.base import describe_validation_error
    from zoo.trainers import default_config

    values = dict(settings)
    data_values = dict(values.pop("data_settings", None) or {})
    if data is not None:
        data_values["folder"] = Path(data)
    if "seed" in values:
        data_values.setdefault("seed", values["seed"])
    if values.get("out") is not None:
        values["out"] = Path(values["out"])
    try:
        return default_config(trainer, quick, data=data_values, **values)
    except ValidationError as e:
        raise InputError(f"invalid training settings: {describe_validation_error(e)}") from e


def export(
    checkpoint: Path,
    out_dir: Path,
    formats: str | list[str] | None = None,
    progress: Progress | bool | None = None,
    *,
    overwrite: bool = False,
):
    """Write every requested weight format of a checkpoint into `out_dir`, each proven against the
    source model; formats that fail are listed in the result, not written. A file the export would replace is
    refused before any work unless `overwrite`."""
    from zoo.packaging.export import parse_formats, write_export
    from zoo.trainers.checkpoint import load_checkpoint

    loaded = load_checkpoint(Path(checkpoint))
    names = parse_formats(formats, loaded.framework)
    return write_export(loaded, Path(out_dir), names, _progress(progress), overwrite=overwrite)


def package_settings(metadata: Path | str | None = None, **options):
    """The user's words for a package: `options` (name, description, tags, authors, license, cite, documentation,
    target; None means not given) over the keys of a `metadata` YAML file. Checked now, before any export work:
    a bad licence or an unknown key is one InputError line."""
    from zoo.config import PackageConfig

    given = {k: v for k, v in options.items() if v is not None}
    if metadata is not None:
        return PackageConfig.from_metadata_file(metadata, **given)
    PackageConfig.from_settings(given)  # checks the values; the trainer's defaults are added by package()
    return given


def package(
    checkpoint: Path | str,
    out_dir: Path,
    formats: str | list[str] | None = None,
    config: PackageConfig | dict | None = None,
    progress: Progress | bool | None = None,
    *,
    overwrite: bool = False,
    sample: Path | None = None,
    weights: Path | None = None,
    kwargs: dict | None = None,
    axes: str | None = None,
    preprocessing: str = "none",
    trust: bool = False,
    **words,
):
    """Export, describe, zip and validate; the zip appears in `out_dir` only if it validates. `config`: a
    PackageConfig, or settings to put over the trainer's defaults; or the same as keywords (`name=`,
    `description=`, `tags=`, `authors=`, `license=`, `cite=`, `documentation=`). An existing zip of the same name
    is refused before any work unless `overwrite`.

    `checkpoint` may also be a model zoo did not train: a TorchScript, ONNX or Keras file, or "FILE.py:ClassName"
    with `weights` (a state dict) and `kwargs`; then `sample` (an image the model takes) is required, the model is
    probed by running it (axes, valid sizes, halo; `axes` such as "cyx" settles what probing cannot) and
    `preprocessing` ("none", "zero_mean_unit_variance", "scale_range") is what the model expects of its input.
    Code from the model's authors runs only with `trust`."""
    from zoo.config import PackageConfig
    from zoo.packaging.export import parse_formats
    from zoo.packaging.package import build_package
    from zoo.trainers import default_package_config
    from zoo.trainers.checkpoint import load_checkpoint

    if sample is not None or not _is_checkpoint(checkpoint):
        return _package_foreign(
            checkpoint, out_dir, formats, config, progress, words, overwrite=overwrite, sample=sample,
            weights=weights, kwargs=kwargs, axes=axes, preprocessing=preprocessing, trust=trust,
        )  # fmt: skip
    loaded = load_checkpoint(Path(checkpoint))
    if not isinstance(config, PackageConfig):
        settings = {**(config or {}), **{k: v for k, v in words.items() if v is not None}}
        config = PackageConfig.from_settings(
            {**default_package_config(loaded.trainer).model_dump(exclude_unset=True), **settings}
        )
    elif words:
        raise InputError("give a PackageConfig or keywords, not both")
    return build_package(
        loaded,
        Path(out_dir),
        parse_formats(formats, loaded.framework),
        config,
        _progress(progress),
        overwrite=overwrite,
    )


def _is_checkpoint(source: Path | str) -> bool:
    """A zoo run folder or checkpoint.pt (what `zoo train` writes); anything else is a model zoo did not train."""
    from zoo.packaging.sources import is_zoo_checkpoint

    path = Path(str(source))
    if not path.exists():
        return ".py:" not in str(source)  # a missing checkpoint is reported as one
    if path.is_dir():
        return (path / "checkpoint.pt").is_file() or not (path / "rdf.yaml").exists()
    return path.name == "checkpoint.pt" or is_zoo_checkpoint(path)


def _package_foreign(source, out_dir, formats, config, progress, words, *, sample, **options):
    from zoo.config import PackageConfig
    from zoo.packaging.foreign import package_model

    if sample is None:
        raise InputError(
            f"{source} is not a zoo checkpoint: to package a model zoo did not train, give --sample IMAGE (an image "
            "it takes; it becomes the test input and the cover)"
        )
    if not isinstance(config, PackageConfig):
        settings = {**(config or {}), **{k: v for k, v in words.items() if v is not None}}
        config = PackageConfig.from_settings(settings)
    elif words:
        raise InputError("give a PackageConfig or keywords, not both")
    return package_model(source, Path(sample), Path(out_dir), formats, config, _progress(progress), **options)


def validate(
    source: Path,
    *,
    trust: bool = False,
    device: str = "auto",
    keep_artifacts: Path | None = None,
    time_limit_s: float | None = None,
    memory_limit_mb: float | None = None,
    progress: Progress | bool | None = None,
):
    """Validate a package folder, rdf file or zip; returns a ValidationReport (verdict, findings) that writes itself
    as JSON, Markdown, HTML or JUnit (`report.write(path)`). The model runs happen in a sandboxed child process
    bounded by the time and memory limits. `device`: auto (a GPU when visible), cpu or cuda."""
    from zoo.bioimage.devices import resolve_device
    from zoo.validators import validate_source

    return validate_source(
        Path(source),
        trust=trust,
        device=resolve_device(device),
        keep_artifacts=keep_artifacts,
        time_limit_s=time_limit_s,
        memory_limit_mb=memory_limit_mb,
        progress=_progress(progress),
    )


def info(source: Path):
    """What a package is, read without running it: a PackageInfo (tensors, axes, sizes, halo, weight formats,
    processing, recorded quality, deepImageJ verdict from the static rules); `.text()` for people."""
    from zoo.validators.info import package_info

    return package_info(Path(source))


def validate_collection(
    source: Path,
    out_dir: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    target: str = "bioimageio",
    trust: bool = False,
    device: str = "auto",
    use_cache: bool = True,
    cache_dir: Path | None = None,
    time_limit_s: float | None = None,
    memory_limit_mb: float | None = None,
    isolate: bool = True,
    progress: Progress | bool | None = None,
):
    """Validate every package under a folder (or listed in a text file), each on its own, sequentially, on
    `workers` local Dask processes or on the Dask cluster at `scheduler`; unchanged packages come from the
    cache. Writes summary.json, summary.md, junit.xml, reports/ and index.html into `out_dir`; returns a
    CollectionResult (entries, exit_code)."""
    from zoo.bioimage.devices import resolve_device
    from zoo.validators.collection import validate_collection as run_collection

    return run_collection(
        Path(source),
        Path(out_dir),
        workers=workers,
        scheduler=scheduler,
        target=target,
        trust=trust,
        device=resolve_device(device),
        use_cache=use_cache,
        cache_dir=cache_dir,
        time_limit_s=time_limit_s,
        memory_limit_mb=memory_limit_mb,
        isolate=isolate,
        progress=_progress(progress),
    )


@dataclass
class DemoResult:
    training: object
    package: object
    report: object
    zip_path: Path
    report_path: Path


def demo(
    out_dir: Path,
    trainer: str = "unet2d",
    quick: bool = False,
    device: str = "auto",
    progress: Progress | bool | None = None,
    *,
    overwrite: bool = False,
) -> DemoResult:
    """The whole chain on synthetic data: train, export, package, validate. Leaves `out_dir/<name>.zip`,
    `out_dir/validation.json` and the training run in `out_dir/training/`. A folder that holds an earlier demo is
    refused unless `overwrite`."""
    out_dir = Path(out_dir)
    stale = sorted(out_dir.glob("*.zip")) if out_dir.exists() else []
    if stale and not overwrite:
        raise InputError(
            f"{out_dir} already holds {stale[0].name}: pass --overwrite to replace it, or give a new --out folder"
        )
    from zoo.trainers import default_config

    progress = _progress(progress)
    config = default_config(trainer, quick, device=device, out=out_dir / "training")
    trained = train(config, progress, overwrite=overwrite)
    packaged = package(trained.checkpoint, out_dir, None, None, progress, overwrite=overwrite)
    report = packaged.report
    report.source = str(packaged.zip_path)
    report_path = report.write_json(out_dir / "validation.json")
    return DemoResult(trained, packaged, report, packaged.zip_path, report_path)


def predict(
    model: Path,
    inputs,
    out_dir: Path | None = None,
    *,
    weights: str | None = None,
    device: str = "auto",
    tile="auto",
    batch_size: int | None = None,
    memory_limit: int | str | None = None,
    trust: bool = False,
    axes: str | None = None,
    blend: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: Progress | bool | None = None,
):
    """Predict with a package (folder, rdf or zip).

    Files: `inputs` are image files, Zarr folders or folders of images; writes `<input stem>_<output id>.tif`
    (`.zarr` for Zarr inputs) into `out_dir`, keeping the input's pixel size and axes, and returns a
    PredictionResult. Existing outputs are refused unless `overwrite` (unfinished Zarr outputs resume).
    Arrays: `inputs` a numpy array (or {input id: array}); returns the output array (or {output id: array}
    when the model has several outputs), computed through the same tiled path as files; `axes` names the
    array's axes when its shape does not tell (e.g. "zyx").

    `workers`: local Dask processes, or `scheduler`: a Dask address, to spread the work. An `out_dir` inside the
    package is refused (InputError): the package is never changed."""
    import numpy as np

    options = dict(
        weights=weights,
        device=device,
        tile=tile,
        batch_size=batch_size,
        memory_limit=memory_limit,
        trust=trust,
        axes=axes,
        blend=blend,
    )
    if isinstance(inputs, np.ndarray) or (
        isinstance(inputs, dict) and inputs and all(isinstance(v, np.ndarray) for v in inputs.values())
    ):
        return _predict_arrays(model, inputs, **options)
    if out_dir is None:
        raise InputError("give an output folder (out_dir) for file inputs; numpy arrays are returned instead")
    from zoo.bioimage.source import refuse_output_inside

    refuse_output_inside("--out", Path(out_dir), Path(model))
    options.update(overwrite=overwrite, progress=_progress(progress))
    if scheduler or workers:
        from zoo.inference.distributed import predict_distributed

        address = scheduler or f"local:{workers}"
        return predict_distributed(Path(model), inputs, Path(out_dir), scheduler=address, **options)
    from zoo.inference.predict import predict as predict_images

    return predict_images(Path(model), inputs, Path(out_dir), **options)


def _predict_arrays(model: Path, arrays, **options):
    """Arrays through the file path (axes mapping, tiling, processing): written as .npy into a temporary folder,
    predicted, read back."""
    import numpy as np
    import tifffile

    from zoo.inference.predict import predict as predict_images

    named = arrays if isinstance(arrays, dict) else {"": arrays}
    with tempfile.TemporaryDirectory(prefix="zoo-predict-") as tmp:
        folder = Path(tmp)
        paths = {}
        for tensor_id, array in named.items():
            paths[tensor_id] = folder / f"{tensor_id or 'image'}.npy"
            np.save(paths[tensor_id], np.asarray(array))
        given = [str(paths[""])] if "" in paths else [",".join(f"{k}={v}" for k, v in paths.items())]
        result = predict_images(Path(model), given, folder / "out", **options)
        if result.failed:
            raise InputError(f"prediction failed: {result.failed[0].error}")
        outputs = result.items[0].outputs
        loaded = {}
        for output_id, path in outputs.items():
            if path.suffix == ".csv":
                loaded[output_id] = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
            else:
                loaded[output_id] = tifffile.imread(path)
    return next(iter(loaded.values())) if len(loaded) == 1 else loaded


def fix_deepimagej(source: Path, out_dir: Path, *, device: str = "auto", progress: Progress | bool | None = None):
    """Rewrite a third-party package for Fiji's deepImageJ (the input is never modified); returns a FixResult with
    what was fixed, what was not (rule IDs) and the fixed package's ValidationReport."""
    from zoo.bioimage.devices import resolve_device
    from zoo.packaging.fix_deepimagej import fix_deepimagej as fix

    return fix(Path(source), Path(out_dir), device=resolve_device(device), progress=_progress(progress))


def convert(
    package: Path,
    out_dir: Path,
    formats: str | list[str] | None = None,
    *,
    trust: bool = False,
    overwrite: bool = False,
    progress: Progress | bool | None = None,
):
    """Add weight formats (default: torchscript, onnx, tensorflow_saved_model_bundle) to a bioimage.io package
    (folder, rdf or zip; the input is never modified). Each copy is made from the package's best loadable weights
    and proven against them; the rdf is written at format 0.5 and the zip lands in `out_dir` only once it validates.
    Returns a ConvertResult (zip_path, outcome per format, failures, the ValidationReport). Weights that run package
    code (pytorch_state_dict, Keras) are used only with `trust`; an existing zip is refused unless `overwrite`."""
    from zoo.packaging.convert import convert_package, parse_convert_formats

    return convert_package(
        Path(package),
        Path(out_dir),
        parse_convert_formats(formats),
        trust=trust,
        overwrite=overwrite,
        progress=_progress(progress),
    )


def finetune(
    package: Path,
    data: Path,
    out_dir: Path,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    freeze: str | None = None,
    loss: str | None = None,
    batch_size: int | None = None,
    patch_size: int | None = None,
    seed: int | None = None,
    device: str = "auto",
    weights: str | None = None,
    formats: str | list[str] | None = None,
    trust: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    progress: Progress | bool | None = None,
):
    """Fine-tune a package (folder, rdf or zip; never modified) on your images in `data` (a `zoo train --data`
    layout) and share the result as a new package in `out_dir` with a `parent` link to the original.

    The trainable weights come from what the package has (`weights` to choose: a state dict with `trust`, TorchScript,
    ONNX, Keras with `trust`), proven equal to it first; the loss from its output (`loss`: bce-dice, cross-entropy or
    mse; `freeze="encoder"` trains the decoder only). The package's metric is measured on the held-out test split
    before and after; the new package (`formats`, default every format the trained framework exports to, each proven,
    the halo re-measured, validated) is written only when it improved. Returns a FinetuneResult (before, after,
    kept, zip_path, the new package's report). `resume=True` continues the run in `out_dir/training`."""
    from zoo.finetune import finetune_config, finetune_package

    settings = dict(epochs=epochs, lr=lr, freeze=freeze, loss=loss, batch_size=batch_size, patch_size=patch_size)
    config = finetune_config(**settings, seed=seed, device=device)
    chosen = None
    if formats is not None:
        from zoo.packaging.convert import parse_convert_formats

        chosen = parse_convert_formats(formats)
    return finetune_package(
        Path(package),
        Path(data),
        Path(out_dir),
        config,
        trust=trust,
        overwrite=overwrite,
        resume=resume,
        formats=chosen,
        weights=weights,
        progress=_progress(progress),
    )
