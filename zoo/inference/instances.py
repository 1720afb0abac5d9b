"""Instance segmentation of images of any size: star-convex objects (bioimage.io's `stardist_postprocessing`) found
tile by tile and kept whole and unique.

The network's probability and ray distances are never assembled for the whole image (1 + n_rays floats per pixel):
each tile's window is widened by a context margin on every side, so that its network output is exact (the declared
halo) over the part it owns plus the margin. Non-maximum suppression runs on that exact region; a tile keeps the
objects whose centre lies in the part it owns, so every object is found by exactly one tile, with every polygon that
could suppress it in view (an object's rays reach no farther than the network sees, the halo, so competing polygons
lie within twice the halo: the margin). What a run keeps is the list of objects (centre, probability, distances);
a last suppression over that list settles the rare conflicts across a tile border, and the label image is rendered
from it, each object whole wherever its polygon reaches, numbered 1..n by probability (as stardist numbers them).
Objects are written as uint16 labels, uint32 from 65536 objects on."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from zoo.bioimage.star_convex import Candidates, StarConvexParams, find_candidates, render, suppress

logger = logging.getLogger(__name__)


def split_instance_ops(model_outputs, deferred_ops: list) -> tuple[list, dict[str, StarConvexParams]]:
    """(the deferred post-processing without the 2D stardist steps, {output id: their parameters}) for the outputs
    (zoo.bioimage.tensors specs with a batch, a channel and two space axes) whose star-convex post-processing zoo
    runs tile by tile. A 3D step, or one on a grid, stays with bioimageio.core, run on the whole output."""
    from bioimageio.core.proc_ops import EnsureDtype, StardistPostprocessing2D

    kept, instances = [], {}
    ids = {str(o.id) for o in model_outputs if sorted(a.kind for a in o.axes) == ["batch", "channel", "space", "space"]}
    for op in deferred_ops:
        output_id = str(getattr(op, "prob_dist_input_id", ""))
        if isinstance(op, StardistPostprocessing2D) and output_id in ids and tuple(op.grid) == (1, 1):
            border = int(np.max(np.asarray(op.b))) if op.b is not None else 0
            instances[output_id] = StarConvexParams(
                int(op.n_rays), float(op.prob_threshold), float(op.nms_threshold), (1, 1), border
            )
        else:
            kept.append(op)
    # the label image is written as uint16/uint32: an ensure_dtype after the step (bioimageio.spec adds int32) goes
    kept = [op for op in kept if not (isinstance(op, EnsureDtype) and str(op.input) in instances)]
    return kept, instances


def context_margin(geometry) -> int:
    """Context beyond the part a tile owns that its suppression needs: twice the largest halo (an object's rays
    reach at most the halo, so any polygon that overlaps an owned one has its centre within twice the halo)."""
    return 2 * max([*geometry.halo.values(), *geometry.halo_after.values(), 1])


def widen_for_instances(geometry, outputs: dict[str, StarConvexParams]):
    """The geometry tiles are cut with for a model with instance outputs: the halo on every tiled axis widened by
    the context margin; unchanged for other models (or where the outputs are resized relative to the input)."""
    if not outputs or geometry.tileable or geometry.resized_outputs:
        return geometry
    margin = context_margin(geometry)
    return replace(
        geometry,
        halo={a: h + margin for a, h in geometry.halo.items()},
        halo_after={a: geometry.after(a) + margin for a in geometry.halo},
    )


@dataclass
class InstanceSink:
    """Takes each tile's whole output window (channels: probability then distances) and keeps the objects whose
    centre the tile owns; `array` renders the label image in the output's axes once every tile is in."""

    axes: tuple[str, ...]  # the output's axis ids: batch, the two spatial axes, channel
    kinds: tuple[str, ...]  # their kinds
    plan: object  # zoo.inference.tiling.TilePlan
    halo: dict[str, int]  # the model's own halo before / after each window, per tiled axis (not widened)
    halo_after: dict[str, int]
    params: StarConvexParams
    found: dict[int, list[Candidates]] = field(default_factory=dict)  # batch entry -> objects of each tile
    _labels: np.ndarray | None = None

    @classmethod
    def for_output(cls, spec, plan, geometry, params: StarConvexParams, margin: int) -> InstanceSink:
        """`geometry`: the widened one tiles were cut with; `margin`: what it was widened by."""
        return cls(
            tuple(spec.axis_ids),
            tuple(a.kind for a in spec.axes),
            plan,
            {a: h - margin for a, h in geometry.halo.items()},
            {a: geometry.after(a) - margin for a in geometry.halo},
            params,
        )

    def write_window(self, tile, data: np.ndarray) -> None:
        """One tile's output for one batch entry (the model's axes, the batch axis of size 1), uncropped."""
        tilings = {t.axis: (k, t) for k, t in zip(tile.grid, self.plan.axes)}
        index: list = [slice(None)] * data.ndim
        exact, owned, border = [], [], []
        for i in self._spatial:
            k, tiling = tilings[self.axes[i]]
            start, stop = tiling.window(k)
            # exact where the window has the model's halo of context, or reaches the image's edge
            lo = 0 if start <= 0 else start + self.halo[tiling.axis]
            hi = tiling.length if stop >= tiling.length else stop - self.halo_after[tiling.axis]
            index[i] = slice(lo - start, hi - start)
            exact.append(lo)
            owned.append(tiling.inner(k))
            edge = self.params.border  # stardist's border exclusion, at the image's edges only
            border.append((edge if lo == 0 else 0, edge if hi == tiling.length else 0))
        order = [self.kinds.index("batch"), self.kinds.index("channel"), *self._spatial]
        window = np.transpose(data[tuple(index)], order)[0]  # channel, spatial axes
        found = find_candidates(window, self.params, border=tuple(border))
        found.points = found.points + np.asarray(exact, np.int64)
        inside = np.ones(len(found), bool)
        for d, (lo, hi) in enumerate(owned):
            inside &= (found.points[:, d] >= lo) & (found.points[:, d] < hi)
        self.found.setdefault(tile.batch, []).append(found.take(inside))

    @property
    def _spatial(self) -> list[int]:
        return [i for i, kind in enumerate(self.kinds) if kind == "space"]

    def write(self, region, data, weight, full_shape) -> None:
        raise RuntimeError("an instance output takes whole tile windows (write_window), not cropped pieces")

    def objects(self, batch: int = 0) -> Candidates:
        """Every object of one batch entry, after the last suppression across tile borders."""
        gathered = Candidates.concatenate(self.found.get(batch, []), self.params.n_rays)
        return suppress(gathered, self.params.nms_threshold)

    @property
    def array(self) -> np.ndarray:
        """The label image in the output's axes (channel of size 1), uint16 or uint32."""
        if self._labels is None:
            lengths = {t.axis: t.length for t in self.plan.axes}
            shape = tuple(lengths[self.axes[i]] for i in self._spatial)
            planes = [render(self.objects(b), shape) for b in range(self.plan.batch)]
            largest = max((int(p.max()) for p in planes), default=0)
            labels = np.stack(planes)[..., None].astype(np.uint16 if largest < 2**16 else np.uint32)
            # from (batch, spatial axes, channel) to the output's axis order
            source = [self.kinds.index("batch"), *self._spatial, self.kinds.index("channel")]
            self._labels = np.moveaxis(labels, range(labels.ndim), source)
        return self._labels

    def close(self) -> None:
        self.found.clear()
        self._labels = None


def instance_sinks(model, plan) -> dict[str, InstanceSink]:
    """A sink for every instance output of `model` (none for other models)."""
    outputs = getattr(model, "instance_outputs", None) or {}
    return {
        spec.id: InstanceSink.for_output(spec, plan, model.geometry, outputs[spec.id], model.instance_margin)
        for spec in model.outputs
        if spec.id in outputs
    }


__all__ = ["InstanceSink", "context_margin", "instance_sinks", "split_instance_ops", "widen_for_instances"]
