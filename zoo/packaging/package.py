"""Build a bioimage.io package in a temporary folder, validate it, then move the zip into place."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from zoo.config import PackageConfig
from zoo.errors import InputError, PackageError
from zoo.model_cards.metadata import PackageMetadata, package_metadata
from zoo.packaging import instances
from zoo.packaging.export import ExportResult, export_checkpoint, refuse_existing
from zoo.packaging.metadata import check_package_config
from zoo.packaging.rdf import PackageFiles, build_model_descr, model_id
from zoo.packaging.source_model import SourceModel
from zoo.progress import Progress, SilentProgress
from zoo.trainers.checkpoint import Checkpoint
from zoo.trainers.datasets import normalize_image

logger = logging.getLogger(__name__)

RDF_NAME = "rdf.yaml"


@dataclass
class PackageResult:
    zip_path: Path
    exported: ExportResult
    report: object  # zoo.validators.report.ValidationReport
    # what the caller should show: defaults used because nothing was given (licence, author), unshipped links, ...
    warnings: list[str] = field(default_factory=list)
    probe: object = None  # zoo.packaging.probe.Probe: what running a model zoo did not train showed


def package_name(metadata: PackageMetadata) -> str:
    return model_id(metadata.name)


def package_path(checkpoint: Checkpoint, out_dir: Path, config: PackageConfig) -> Path:
    """Where build_package would write the zip (its name comes from the package's name)."""
    return Path(out_dir) / f"{package_name(package_metadata(checkpoint, check_package_config(config)))}.zip"


def build_package(
    checkpoint: Checkpoint,
    out_dir: Path,
    formats: list[str],
    config: PackageConfig,
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
) -> PackageResult:
    """Export, describe and zip the model; nothing appears in `out_dir` unless the package validates.

    Before any export work: the user's words are checked (check_package_config: one InputError line, e.g. for a
    licence that is not an SPDX id) and an existing zip of the same name is refused (InputError) unless
    `overwrite`; it is then replaced in one atomic step, and left untouched whenever the build fails."""
    progress = progress or SilentProgress()
    config = check_package_config(config)
    metadata = package_metadata(checkpoint, config)
    out_dir = Path(out_dir)
    target = out_dir / f"{package_name(metadata)}.zip"
    refuse_existing([target], overwrite)
    for warning in metadata.warnings:
        logger.warning("%s", warning)
    with staging_folder(out_dir, ".zoo-package-") as tmp:
        folder = tmp / "package"
        folder.mkdir()
        source = SourceModel.from_checkpoint(checkpoint)
        exported = export_checkpoint(checkpoint, formats, folder, checkpoint.sample["image"], progress, source)
        files = _write_tensors_and_card(checkpoint, source, exported, config, metadata, folder, exported.test_image)

        descr = describe_in(
            folder, config, lambda: build_model_descr(checkpoint, exported, files, config, folder, metadata)
        )
        staged_zip = tmp / target.name
        write_package_zip(descr, folder, staged_zip)

        report = validate_staged(staged_zip, target, config, trust=True, progress=progress)  # our own package
        move_into_place(staged_zip, target, overwrite)
        point_into_zip(exported, folder, target)
    return PackageResult(target, exported, report, list(metadata.warnings))


def validate_staged(staged_zip: Path, target: Path, config: PackageConfig, *, trust: bool, progress: Progress):
    """The staged package's ValidationReport, or a PackageError naming the failed rules (nothing is written): it
    must pass, and with --target deepimagej also run in Fiji."""
    from zoo.validators import validate_source

    report = validate_source(staged_zip, trust=trust, isolate=False, progress=progress)
    if report.status != "passed":
        failed = "; ".join(f"{f.id}: {f.message}" for f in report.failed())
        raise PackageError(f"the package for {target.name} failed validation and was not written: {failed}")
    if config.target == "deepimagej" and report.exit_code_for("deepimagej"):
        rules = ", ".join(f"{f.id}: {f.message}" for f in report.failed("deepimagej"))
        raise PackageError(
            f"the package for {target.name} would not run as validated in Fiji "
            f"({report.deepimagej_verdict}) and was not written: {rules}; "
            "package with --target bioimageio to write it anyway"
        )
    return report


def point_into_zip(exported, folder: Path, target: Path) -> None:
    """The exported files were made in a temporary folder that is gone once the zip is in place: their paths
    become paths inside the zip (zipfile.Path: `.name`, `.exists()`, `.open()`, `.read_bytes()`)."""
    import zipfile

    for weights in exported.weights:
        weights.path = zipfile.Path(target, Path(weights.path).relative_to(folder).as_posix())
        architecture = weights.details.get("architecture_file")
        if architecture is not None and Path(architecture).is_relative_to(folder):
            weights.details["architecture_file"] = zipfile.Path(
                target, Path(architecture).relative_to(folder).as_posix()
            )


@contextmanager
def staging_folder(out_dir: Path, prefix: str):
    """A temporary folder inside `out_dir` (so that the finished zip moves into place in one step, on one file
    system), with `out_dir` made when needed; `out_dir` goes again when this made it and nothing was written."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=prefix) as tmp:
            yield Path(tmp)
    finally:
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()


def move_into_place(staged: Path, target: Path, overwrite: bool) -> None:
    """Atomically: replace `target` when `overwrite`, else link the new file in only if `target` still does not
    exist (a zip written there meanwhile is refused, not replaced)."""
    if overwrite:
        os.replace(staged, target)
        return
    try:
        os.link(staged, target)
    except FileExistsError as e:
        raise InputError(f"{target} exists already: pass --overwrite to replace it") from e
    except OSError:  # no hard links on this file system: check, then rename
        refuse_existing([target], overwrite=False)
        os.replace(staged, target)


def _write_tensors_and_card(
    checkpoint, source, exported, config, metadata, folder: Path, raw: np.ndarray
) -> PackageFiles:
    """Test tensors (the raw image and the model's output on it after the rdf's pre-processing), sample
    TIFFs, cover and README (with the files it shows)."""
    import tifffile

    from zoo.model_cards import render_readme
    from zoo.model_cards.covers import render_task_cover

    test_input = source.batch_of_one(raw)
    test_output = source.predict(source.batch_of_one(normalize_image(raw))).astype(np.float32)
    test_output = instances.described_output(source.task, test_output, source.output_layout)  # labels, for instances
    sample = test_output[0]
    if source.task.dense and source.output_layout[-1] == "c":
        sample = np.moveaxis(sample, -1, 0)  # channels first, like the other layouts
    if source.task.dense and sample.shape[0] == 1:
        sample = sample[0]
    files = PackageFiles()
    np.save(folder / files.test_input, test_input)
    np.save(folder / files.test_output, test_output)
    tifffile.imwrite(folder / files.sample_input, raw)
    tifffile.imwrite(folder / files.sample_output, sample if source.task.dense else test_output)
    render_task_cover(source.task.kind, raw, sample, folder / files.cover)
    before = set(folder.iterdir())
    render_readme(checkpoint, exported, config, folder / files.documentation, metadata)
    shown = sorted(p.relative_to(folder) for p in set(folder.iterdir()) - before if p.name != files.documentation.name)
    return replace(files, attachments=tuple(shown))


def describe_in(folder: Path, config: PackageConfig, build):
    """`build()`'s ModelDescr, made with the package folder as root (its files are checked and hashed), or one
    PackageError line."""
    from bioimageio.spec import ValidationContext
    from pydantic import ValidationError

    from zoo.config.packaging import one_line

    try:
        with ValidationContext(root=folder, perform_io_checks=True), _github_users_taken_as_given(config):
            return build()
    except ValidationError as e:  # one line: the first field bioimageio.spec refused, not pydantic's dump
        raise PackageError(f"the rdf could not be built from this model: {one_line(e)}") from e
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PackageError(f"the rdf could not be built from this model: {first}") from e


@contextmanager
def _github_users_taken_as_given(config):
    """bioimageio.spec asks api.github.com whether each author's github_user exists while it checks the files
    (perform_io_checks), and fails without a network; packaging works offline, so the user's own names are taken
    as given here (bioimage.io checks them when the package is uploaded)."""
    try:
        from bioimageio.spec._internal import field_validation

        known = field_validation.KNOWN_GITHUB_USERS
    except (ImportError, AttributeError):  # another spec version: its own rules apply
        yield
        return
    given = {a.github_user.lower() for a in config.authors or [] if a.github_user} - set(known)
    known.update(given)
    try:
        yield
    finally:
        known.difference_update(given)


def write_package_zip(descr, folder: Path, zip_path: Path) -> None:
    """Zip with `rdf.yaml` at the root and every axis id written out (deepImageJ needs explicit ids)."""
    from bioimageio.spec import save_bioimageio_package_as_folder

    from zoo.packaging.rdf_yaml import adapt_rdf_for_deepimagej, write_zip_from_folder

    staged = folder.parent / "staged"
    save_bioimageio_package_as_folder(descr, output_path=staged)
    rdf_files = [p for p in staged.iterdir() if p.name.endswith(("rdf.yaml", "bioimageio.yaml"))]
    if len(rdf_files) != 1:
        raise PackageError(f"expected one rdf in the staged package {staged}, found {[p.name for p in rdf_files]}")
    rdf = rdf_files[0]
    if rdf.name != RDF_NAME:
        rdf.rename(staged / RDF_NAME)
    adapt_rdf_for_deepimagej(staged / RDF_NAME)
    write_zip_from_folder(staged, zip_path)
    shutil.rmtree(staged)
