"""Input discovery: the images a run predicts (folders expanded, the inputs of a multi-input model grouped),
each opened and mapped onto the model's axes as a Job that names the files its outputs go to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import ImageError
from zoo.inference.axes import MappedImage, map_axes
from zoo.inference.image_io import ImageSource, image_stem, is_image, is_zarr, open_image
from zoo.inference.model import PredictionModel
from zoo.inference.options import DEFAULT_MEMORY_LIMIT


@dataclass
class Job:
    stem: str
    paths: dict[str, Path]  # input id -> image
    images: dict[str, ImageSource]
    mapped: dict[str, MappedImage]
    outputs: dict[str, Path]  # output id -> file to write
    zarr: bool

    def close(self) -> None:
        for image in self.images.values():
            image.close()


def expand_inputs(model: PredictionModel, inputs) -> list[dict[str, Path]]:
    """One {input id: path} per prediction: folders become their images; for a multi-input model each input is
    a mapping, `id=path,id=path`, or `path,path` in the rdf's order."""
    ids = [t.id for t in model.inputs]
    if isinstance(inputs, (str, Path, Mapping)):
        inputs = [inputs]
    groups: list[dict[str, Path]] = []
    for item in inputs:
        if isinstance(item, Mapping):
            group = {str(k): Path(v) for k, v in item.items()}
        elif len(ids) > 1 and "," in str(item):
            parts = [p.strip() for p in str(item).split(",")]
            if all("=" in p for p in parts):
                group = {p.split("=", 1)[0]: Path(p.split("=", 1)[1]) for p in parts}
            else:
                group = dict(zip(ids, (Path(p) for p in parts)))
                if len(parts) != len(ids):
                    group = {}
        elif len(ids) == 1:
            path = Path(item)
            if path.is_dir() and not is_zarr(path):
                found = sorted(p for p in path.iterdir() if is_image(p) and not p.name.startswith("."))
                if not found:
                    raise ImageError(f"{path} holds no TIFF, PNG, .npy or Zarr image")
                groups.extend({ids[0]: p} for p in found)
                continue
            group = {ids[0]: path}
        else:
            group = {}
        if set(group) != set(ids):
            raise ImageError(
                f"model {model.name!r} has {len(ids)} inputs ({', '.join(ids)}): give each prediction "
                f"as {','.join(f'{i}=PATH' for i in ids)} (got {item})"
            )
        groups.append(group)
    if not groups:
        raise ImageError("no input images given")
    return groups


def plan_jobs(
    model: PredictionModel,
    inputs,
    out_dir: Path,
    axes: str | None,
    *,
    lazy_above_bytes: int = DEFAULT_MEMORY_LIMIT // 4,
) -> list[Job]:
    """Open and map every input before any compute: a bad image is reported before hours are spent. Only the
    headers are read here; the pixels when the image's turn comes (images larger than `lazy_above_bytes`
    box by box)."""
    jobs: list[Job] = []
    names: dict[Path, Path] = {}
    opened: list[ImageSource] = []
    spatial = {o.id: o.id not in model.geometry.non_spatial_outputs for o in model.outputs}
    try:
        for group in expand_inputs(model, inputs):
            images: dict[str, ImageSource] = {}
            mapped: dict[str, MappedImage] = {}
            for spec in model.inputs:
                image = open_image(group[spec.id], lazy_above_bytes=lazy_above_bytes, defer=True)
                opened.append(image)
                images[spec.id] = image
                mapped[spec.id] = MappedImage(image, map_axes(image, spec, axes))
            first = group[model.inputs[0].id]
            zarr_out = is_zarr(first)
            stem = image_stem(first)
            image_suffix = ".zarr" if zarr_out else ".tif"
            outputs = {
                o.id: out_dir / f"{stem}_{o.id}{image_suffix if spatial[o.id] else '.csv'}" for o in model.outputs
            }
            for path in outputs.values():
                if path in names:
                    raise ImageError(f"{first} and {names[path]} would both write {path.name}: rename one of them")
                names[path] = first
            jobs.append(Job(stem, group, images, mapped, outputs, zarr_out))
            _check_same_extent(model, mapped)
    except BaseException:
        for image in opened:
            image.close()
        raise
    return jobs


def _check_same_extent(model: PredictionModel, mapped: Mapping[str, object]) -> None:
    first_id = model.inputs[0].id
    first = mapped[first_id]
    for spec in model.inputs[1:]:
        other = mapped[spec.id]
        for axis in (*model.geometry.tiled_axes, *[a.id for a in spec.of_kind("batch")]):
            if axis in first.shape and axis in other.shape and first.shape[axis] != other.shape[axis]:
                raise ImageError(
                    f"inputs {first_id} and {spec.id} differ along {axis} ({first.shape[axis]} vs "
                    f"{other.shape[axis]}): give images of the same size"
                )


__all__ = ["Job", "expand_inputs", "plan_jobs"]
