"""The one place that assembles the rdf: bioimageio.spec objects from what training and export recorded."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.config import PackageConfig
from zoo.model_cards.metadata import PackageMetadata, package_metadata
from zoo.packaging import instances
from zoo.packaging.export import ExportResult
from zoo.trainers.cards import without_data_claims
from zoo.trainers.checkpoint import Checkpoint

ZMUV_EPSILON = 1e-6


@dataclass(frozen=True)
class PackageFiles:
    """Files written next to the weights, relative to the package folder."""

    test_input: Path = Path("test_input.npy")
    test_output: Path = Path("test_output.npy")
    sample_input: Path = Path("sample_input.tif")
    sample_output: Path = Path("sample_output.tif")
    cover: Path = Path("cover.png")
    documentation: Path = Path("README.md")
    attachments: tuple[Path, ...] = ()  # e.g. the loss plot the README shows


def build_model_descr(
    checkpoint: Checkpoint,
    exported: ExportResult,
    files: PackageFiles,
    config: PackageConfig,
    root: Path,
    metadata: PackageMetadata | None = None,
):
    """A validated bioimageio.spec 0.5 ModelDescr for the package folder `root`. Name, description, tags,
    authors, licence and citations are `metadata`'s (decided from `config` and the run when not given).

    No `training_data` is written: bioimage.io describes training data as a dataset with a public URL (`source`),
    which neither zoo's synthetic data nor a user's folder has, and a dataset without one draws two format
    warnings. The data is described in the README and under `config.bioimageio.training.data` instead."""
    from bioimageio.spec.model import v0_5

    metadata = metadata or package_metadata(checkpoint, config)

    task = checkpoint.task_spec
    geometry = exported.geometry
    input_id = v0_5.TensorId(task.input_id)
    spatial_size = (
        geometry.min_size if geometry.fixed else v0_5.ParameterizedSize(min=geometry.min_size, step=geometry.step)
    )
    spatial = [a for a in exported.layout if a in "zyx"]
    space_in = {a: v0_5.SpaceInputAxis(id=v0_5.AxisId(a), size=spatial_size) for a in spatial}

    def space_out(a: str):
        size = v0_5.SizeReference(tensor_id=input_id, axis_id=v0_5.AxisId(a))
        if geometry.halo:
            return v0_5.SpaceOutputAxisWithHalo(id=v0_5.AxisId(a), halo=geometry.halo, size=size)
        return v0_5.SpaceOutputAxis(id=v0_5.AxisId(a), size=size)

    def axes(layout: str, space: dict, channel_names) -> list:
        by_letter = {
            "b": v0_5.BatchAxis(),
            "c": v0_5.ChannelAxis(channel_names=[v0_5.Identifier(n) for n in channel_names]),
            **space,
        }
        return [by_letter[letter] for letter in layout]

    words = without_data_claims if metadata.user_data else str  # no nuclei or fluorescence for the user's data
    input_tensor = v0_5.InputTensorDescr(
        id=input_id,
        description=words(task.input_description),
        axes=axes(exported.layout, space_in, task.input_channels),
        test_tensor=v0_5.FileDescr(source=files.test_input),
        sample_tensor=v0_5.FileDescr(source=files.sample_input),
        data=v0_5.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[
            v0_5.ZeroMeanUnitVarianceDescr(
                kwargs=v0_5.ZeroMeanUnitVarianceKwargs(axes=[v0_5.AxisId(a) for a in spatial], eps=ZMUV_EPSILON)
            )
        ],
    )
    output_tensor = v0_5.OutputTensorDescr(
        id=v0_5.TensorId(task.output_id),
        description=words(task.output_description),
        axes=axes(exported.output_layout, {a: space_out(a) for a in spatial}, task.output_channels),
        test_tensor=v0_5.FileDescr(source=files.test_output),
        sample_tensor=v0_5.FileDescr(source=files.sample_output),
        data=instances.output_data(task, v0_5),  # int32 labels for instance segmentation
        **instances.postprocessing(task, v0_5),  # stardist_postprocessing for instance segmentation
    )
    descr = v0_5.ModelDescr(
        **described_by(metadata, config, files, checkpoint.framework),
        inputs=[input_tensor],
        outputs=[output_tensor],
        weights=weights_descr(exported, v0_5),
        config=v0_5.Config(**_config(checkpoint, exported, metadata)),
    )
    return descr


def described_by(metadata: PackageMetadata, config: PackageConfig, files: PackageFiles, framework: str) -> dict:
    """The ModelDescr fields every zoo package fills the same way: id, name, description, authors, citations,
    licence, tags (with the framework), version, covers, documentation, attachments and the timestamp."""
    from bioimageio.spec.model import v0_5

    return dict(
        id=v0_5.ModelId(model_id(metadata.name)),
        name=metadata.name,
        description=metadata.description,
        authors=[v0_5.Author(**a.model_dump(exclude_none=True)) for a in metadata.authors],
        cite=[v0_5.CiteEntry(**citation) for citation in metadata.cite],
        license=metadata.license,
        tags=list(dict.fromkeys([*metadata.tags, framework])),
        **({"git_repo": config.git_repo} if config.git_repo else {}),
        version=config.version,
        covers=[v0_5.FileDescr(source=files.cover)],
        documentation=v0_5.FileDescr(source=files.documentation),
        **({"attachments": [v0_5.FileDescr(source=a) for a in files.attachments]} if files.attachments else {}),
        timestamp=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0),
    )


def model_id(name: str) -> str:
    """A package id from its name (JDLL drops models without an id from Fiji's list, RULES.md DIJ03);
    bioimage.io replaces it with its own id on upload."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def weights_descr(exported: ExportResult, v0_5):
    entries: dict[str, Any] = {}
    shipped = {w.weight_format for w in exported.weights}
    for weights in exported.weights:
        common = dict(source=Path(weights.path.name), comment=weights.agreement.summary() if weights.agreement else "")
        if weights.parent and weights is not exported.weights[0]:  # the first is the source's own: no parent
            # a copy converted through a format that is not shipped descends from the original weights
            common["parent"] = weights.parent if weights.parent in shipped else exported.weights[0].weight_format
        if weights.weight_format == "pytorch_state_dict":
            entries["pytorch_state_dict"] = v0_5.PytorchStateDictWeightsDescr(
                **common,
                architecture=v0_5.ArchitectureFromFileDescr(
                    source=Path(weights.details["architecture_file"].name),
                    callable=weights.details["callable"],
                    kwargs=weights.details["kwargs"],
                ),
                pytorch_version=v0_5.Version(weights.framework_version),
            )
        elif weights.weight_format == "torchscript":
            entries["torchscript"] = v0_5.TorchscriptWeightsDescr(
                **common, pytorch_version=v0_5.Version(weights.framework_version)
            )
        elif weights.weight_format == "onnx":
            entries["onnx"] = v0_5.OnnxWeightsDescr(**common, opset_version=weights.details["opset_version"])
        elif weights.weight_format == "keras_v3":
            entries["keras_v3"] = v0_5.KerasV3WeightsDescr(
                **common,
                keras_version=v0_5.Version(weights.framework_version),
                backend=(weights.details["backend"], v0_5.Version(weights.details["backend_version"])),
            )
        elif weights.weight_format == "tensorflow_saved_model_bundle":
            entries["tensorflow_saved_model_bundle"] = v0_5.TensorflowSavedModelBundleWeightsDescr(
                **common, tensorflow_version=v0_5.Version(weights.framework_version)
            )
    return v0_5.WeightsDescr(**entries)


def halo_proof(geometry) -> dict[str, Any]:
    measured = geometry.halo_measurement
    if measured is None:
        return {}
    return {
        "halo_measured": {
            "tiled_vs_whole_max_abs": measured.max_abs,
            "at_one_step_less": measured.max_abs_below,
            "halos_checked": measured.checked,
        }
    }


def _config(checkpoint: Checkpoint, exported: ExportResult, metadata: PackageMetadata) -> dict[str, Any]:
    geometry = exported.geometry
    if geometry.fixed:
        sizes = {
            "kind": f"fixed: the model takes inputs of exactly {geometry.min_size} px per spatial axis",
            "size": geometry.min_size,
        }
    else:
        sizes = {
            "kind": "parameterized (every shipped format keeps dynamic batch and spatial axes)",
            "min": geometry.min_size,
            "step": geometry.step,
            "halo": geometry.halo,
            **halo_proof(geometry),
        }
    values = {
        "zoo": {
            "trainer": checkpoint.trainer,
            "task": checkpoint.task_spec.kind,
            "metrics": {k: float(v) for k, v in checkpoint.metrics.items()},
            "environment": dict(checkpoint.environment),
            "agreement": {w.weight_format: w.agreement.to_dict() for w in exported.weights if w.agreement},
            "not_shipped": dict(exported.failures),
            "sizes": sizes,
        },
        "deepimagej": {"allow_tiling": not geometry.fixed, "pyramidal_model": False},
    }
    bioimageio = _bioimageio_config(checkpoint, metadata)
    if bioimageio:
        values["bioimageio"] = bioimageio
    return values


def _bioimageio_config(checkpoint: Checkpoint, metadata: PackageMetadata) -> dict[str, Any]:
    """`config.bioimageio.training` and `.evaluations` filled from the training run (zoo.model_cards)."""
    from zoo.model_cards import bioimageio_config

    return bioimageio_config(checkpoint, data_license=metadata.data_license if metadata.user_data else None)
