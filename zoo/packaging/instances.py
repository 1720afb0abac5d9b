"""What an instance-segmentation package adds to the rdf and its test tensors: the `stardist_postprocessing` step
with the kwargs the trained model chose (thresholds from the validation split, grid, rays), a label-image output
(int32, as bioimageio.core's op returns it) and the test output made through the same post-processing.

No `config.stardist` is written: JDLL sends a model whose name contains "stardist" and that has `config.stardist`
to its StarDist runner, which loads a CSBDeep/Keras StarDist model, not these weights (RULES.md DIJ15)."""

from __future__ import annotations

import numpy as np

from zoo.bioimage.star_convex import StarConvexParams, labels_from_prob_dist
from zoo.errors import PackageError
from zoo.trainers.task import Task

LABEL_DTYPE = "int32"  # what stardist.polygons_to_label, and so bioimageio.core's op, returns


def is_instances(task: Task) -> bool:
    return task.kind == "instances"


def star_convex_params(task: Task) -> StarConvexParams:
    """The post-processing the trained model recorded (its task's extra["stardist"])."""
    kwargs = task.extra.get("stardist")
    if not isinstance(kwargs, dict):
        raise ValueError("this instance-segmentation checkpoint records no stardist post-processing: retrain it")
    return StarConvexParams.from_kwargs(kwargs)


def postprocessing(task: Task, v0_5) -> dict:
    """The output's `postprocessing` field: `stardist_postprocessing` for instance segmentation, else nothing (the
    rdf of other tasks stays as it was)."""
    if not is_instances(task):
        return {}
    kwargs = star_convex_params(task).to_kwargs()
    return {"postprocessing": [v0_5.StardistPostprocessingDescr(kwargs=v0_5.StardistPostprocessingKwargs2D(**kwargs))]}


def output_data(task: Task, v0_5):
    """The output's data description: int32 labels for instance segmentation, float32 (in the task's range) else."""
    if is_instances(task):
        return v0_5.IntervalOrRatioDataDescr(type=LABEL_DTYPE)
    return v0_5.IntervalOrRatioDataDescr(type="float32", **({"range": task.output_range} if task.output_range else {}))


def described_output(task: Task, network_output: np.ndarray, layout: str) -> np.ndarray:
    """The output as the rdf describes it: the network's own for most tasks; for instance segmentation the label
    image of each batch item, (batch, y, x, 1) int32 in the axes the post-processing returns, made by the rdf's
    post-processing from the network's output in `layout` (e.g. "byxc")."""
    if not is_instances(task):
        return network_output.astype(np.float32)
    params = star_convex_params(task)
    channels_first = np.moveaxis(np.asarray(network_output, np.float32), layout.index("c"), 1)
    labels = np.stack([labels_from_prob_dist(item, params) for item in channels_first])[..., None]
    if not labels.any():
        raise PackageError(
            f"the model finds no object in the test image at probability threshold {params.prob_threshold:g}: the "
            "package needs a test output with objects; train longer or on more images"
        )
    return labels.astype(LABEL_DTYPE)


__all__ = ["LABEL_DTYPE", "is_instances", "output_data", "postprocessing", "star_convex_params", "described_output"]
