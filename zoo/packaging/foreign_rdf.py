"""The files and the rdf of a package of a model zoo did not train (zoo.packaging.foreign): the sample as test input,
the model's output on it, a cover, a README that says what was measured and what is not known, and a format-0.5
ModelDescr whose axes, sizes and halo are the probe's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from zoo.config import PackageConfig
from zoo.model_cards.metadata import PackageMetadata
from zoo.packaging.export import ExportResult
from zoo.packaging.foreign import EPSILON, INPUT_ID, OUTPUT_ID, SCALE_RANGE_PERCENTILES, ForeignModel
from zoo.packaging.rdf import PackageFiles, described_by, halo_proof, weights_descr


def write_foreign_files(
    model: ForeignModel, exported: ExportResult, metadata: PackageMetadata, folder: Path
) -> PackageFiles:
    import tifffile

    from zoo.model_cards.covers import render_task_cover
    from zoo.model_cards.render import render_foreign_readme

    files = PackageFiles()
    probe = model.probe
    np.save(folder / files.test_input, model.raw[None].astype(np.float32))
    np.save(folder / files.test_output, model.output.astype(np.float32))
    tifffile.imwrite(folder / files.sample_input, model.raw)
    tifffile.imwrite(folder / files.sample_output, model.output[0])
    raw = _first_channel(model.raw, probe.layout[1:])
    shown = model.output[0]
    if model.task.dense:
        shown = _channels_first(shown, probe.output_layout[1:])
        shown = np.stack([_resampled(c, raw.shape) for c in shown])
    render_task_cover(model.task.kind, raw, shown, folder / files.cover)
    render_foreign_readme(
        folder / files.documentation,
        metadata,
        exported,
        source=model.source.describe(),
        measured=probe.rows(),
        preprocessing=model.preprocessing,
    )
    return files


def build_foreign_descr(
    model: ForeignModel, exported: ExportResult, files: PackageFiles, config: PackageConfig, metadata: PackageMetadata
):
    from bioimageio.spec.model import v0_5

    probe, task = model.probe, model.task
    input_id = v0_5.TensorId(INPUT_ID)
    geometry = exported.geometry
    size = geometry.min_size if geometry.fixed else v0_5.ParameterizedSize(min=geometry.min_size, step=geometry.step)
    spatial = [a for a in probe.layout if a in "zyx"]

    def channel(names):
        return v0_5.ChannelAxis(channel_names=[v0_5.Identifier(n) for n in names])

    batch = v0_5.BatchAxis() if probe.batch_independent else v0_5.BatchAxis(size=1)  # one image at a time
    inputs = {"b": batch, "c": channel(task.input_channels)}
    inputs.update({a: v0_5.SpaceInputAxis(id=v0_5.AxisId(a), size=size, scale=_input_scale(probe)) for a in spatial})
    outputs = {"b": batch, "c": channel(task.output_channels)}
    halo = math.ceil(geometry.halo * probe.scale) if probe.relation == "scaled" else geometry.halo  # output px
    outputs.update({a: _output_axis(v0_5, input_id, a, probe, halo) for a in spatial})
    input_tensor = v0_5.InputTensorDescr(
        id=input_id,
        description=task.input_description,
        axes=[inputs[a] for a in probe.layout],
        test_tensor=v0_5.FileDescr(source=files.test_input),
        sample_tensor=v0_5.FileDescr(source=files.sample_input),
        data=v0_5.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=_preprocessing(
            v0_5, model.preprocessing, [a if a != "c" else "channel" for a in probe.layout[1:]]
        ),
    )
    output_tensor = v0_5.OutputTensorDescr(
        id=v0_5.TensorId(OUTPUT_ID),
        description=task.output_description,
        axes=[outputs[a] for a in probe.output_layout],
        test_tensor=v0_5.FileDescr(source=files.test_output),
        sample_tensor=v0_5.FileDescr(source=files.sample_output),
        data=v0_5.IntervalOrRatioDataDescr(
            type="float32", **({"range": task.output_range} if task.output_range else {})
        ),
    )
    return v0_5.ModelDescr(
        **described_by(metadata, config, files, model.source.framework),
        inputs=[input_tensor],
        outputs=[output_tensor],
        weights=weights_descr(exported, v0_5),
        config=v0_5.Config(**_config(model, exported)),
    )


def _output_axis(v0_5, input_id, letter: str, probe, halo: int):
    axis_id = v0_5.AxisId(letter)
    offset = probe.offset if probe.relation == "offset" else 0
    size = v0_5.SizeReference(tensor_id=input_id, axis_id=axis_id, offset=offset)
    scale = float(probe.scale) if probe.relation == "scaled" else 1.0
    if halo:
        return v0_5.SpaceOutputAxisWithHalo(id=axis_id, halo=halo, size=size, scale=scale)
    return v0_5.SpaceOutputAxis(id=axis_id, size=size, scale=scale)


def _input_scale(probe) -> float:
    """The input axes' scale. An output `s` times larger than its input is written with input scale s² and output
    scale s: the spec's size (input · input scale / output scale) and JDLL's (input · output scale, DIJ21) are then
    both s · input, and the physical pixel sizes stay consistent (output pixels s times finer)."""
    return float(probe.scale) ** 2 if probe.relation == "scaled" else 1.0


def _preprocessing(v0_5, method: str, reduced: list[str]) -> list:
    axes = [v0_5.AxisId(a) for a in reduced]
    if method == "zero_mean_unit_variance":
        return [v0_5.ZeroMeanUnitVarianceDescr(kwargs=v0_5.ZeroMeanUnitVarianceKwargs(axes=axes, eps=EPSILON))]
    if method == "scale_range":
        low, high = SCALE_RANGE_PERCENTILES
        kwargs = v0_5.ScaleRangeKwargs(axes=axes, min_percentile=low, max_percentile=high, eps=EPSILON)
        return [v0_5.ScaleRangeDescr(kwargs=kwargs)]
    return []


def _config(model: ForeignModel, exported: ExportResult) -> dict[str, Any]:
    geometry, probe = exported.geometry, model.probe
    sizes: dict[str, Any] = (
        {"kind": f"fixed: the model takes inputs of exactly {geometry.min_size} px per spatial axis"}
        if geometry.fixed
        else {
            "kind": "parameterized (probed by running the model)",
            "min": geometry.min_size,
            "step": geometry.step,
            "halo": geometry.halo,
            "model_min": probe.min_size,
            **halo_proof(geometry),
        }
    )
    return {
        "zoo": {
            "source": {
                "kind": model.source.kind,
                "file": model.source.path.name,
                "sha256": model.source.sha256,
                **({"architecture": model.source.architecture[1]} if model.source.architecture else {}),
            },
            "training": "not recorded",
            "probe": {name: value for name, value in probe.rows()},
            "agreement": {w.weight_format: w.agreement.to_dict() for w in exported.weights if w.agreement},
            "not_shipped": dict(exported.failures),
            "sizes": sizes,
        },
        "deepimagej": {"allow_tiling": not geometry.fixed, "pyramidal_model": False},
    }


def _first_channel(image: np.ndarray, axes: str) -> np.ndarray:
    return np.take(image, 0, axis=axes.index("c")) if "c" in axes else image


def _channels_first(output: np.ndarray, axes: str) -> np.ndarray:
    return np.moveaxis(output, axes.index("c"), 0) if "c" in axes else output[None]


def _resampled(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resampling to `shape` (a scaled or cropped output beside its input on the cover)."""
    index = np.ix_(*[np.minimum((np.arange(n) * s) // n, s - 1) for n, s in zip(shape, image.shape)])
    return image[index]
