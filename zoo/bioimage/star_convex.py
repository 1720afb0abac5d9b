"""Star-convex polygons (StarDist, Schmidt et al. 2018) from a network's object probability and ray distances:
the post-processing that bioimage.io names `stardist_postprocessing`.

It is computed with the `stardist` package's own non-maximum suppression and polygon rendering, called as
bioimageio.core calls them, so that a package's test output, `zoo predict` and the reference validator give the
same label image. The candidates (`points`, `prob`, `dist`) are kept apart from the rendering so that tiled
prediction can gather them tile by tile and render each output region from all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

STARDIST_OP = "stardist_postprocessing"
DEFAULT_BORDER = 2  # stardist's `b`: candidates this close to the image's edge are dropped


@dataclass(frozen=True)
class StarConvexParams:
    """The kwargs of a 2D `stardist_postprocessing` step."""

    n_rays: int
    prob_threshold: float
    nms_threshold: float
    grid: tuple[int, int] = (1, 1)
    border: int = DEFAULT_BORDER

    def to_kwargs(self) -> dict[str, Any]:
        return {
            "prob_threshold": float(self.prob_threshold),
            "nms_threshold": float(self.nms_threshold),
            "n_rays": int(self.n_rays),
            "grid": [int(g) for g in self.grid],
            "b": int(self.border),
        }

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> StarConvexParams:
        """From the rdf's kwargs (a dict, or bioimageio.spec's kwargs object); a per-side border keeps its
        largest value."""
        get = kwargs.get if isinstance(kwargs, dict) else lambda k, d=None: getattr(kwargs, k, d)
        grid = tuple(int(g) for g in get("grid", (1, 1)))
        if len(grid) != 2:
            raise ValueError(f"stardist_postprocessing grid {grid}: only 2D (two values) is supported")
        border = get("b", DEFAULT_BORDER)
        border = int(np.max(np.asarray(border))) if border is not None else 0
        return cls(int(get("n_rays")), float(get("prob_threshold")), float(get("nms_threshold")), grid, border)


@dataclass
class Candidates:
    """Objects that survived non-maximum suppression: centre pixel (y, x) in image coordinates, probability and
    the `n_rays` distances to the boundary."""

    points: np.ndarray  # (n, 2) int
    prob: np.ndarray  # (n,) float32
    dist: np.ndarray  # (n, n_rays) float32

    def __len__(self) -> int:
        return len(self.prob)

    @classmethod
    def empty(cls, n_rays: int) -> Candidates:
        return cls(np.zeros((0, 2), np.int64), np.zeros(0, np.float32), np.zeros((0, n_rays), np.float32))

    @classmethod
    def concatenate(cls, parts: list[Candidates], n_rays: int) -> Candidates:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(n_rays)
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("points", "prob", "dist")))

    def take(self, index) -> Candidates:
        return Candidates(self.points[index], self.prob[index], self.dist[index])

    def extents(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) corners (n, 2) of each polygon's bounding box, inclusive, in image coordinates."""
        from stardist.geometry import dist_to_coord

        if not len(self):
            return np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64)
        coords = dist_to_coord(self.dist, self.points)  # (n, 2, n_rays)
        return np.floor(coords.min(axis=2)).astype(np.int64), np.ceil(coords.max(axis=2)).astype(np.int64)


def _split(prob_dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prob (Y, X), dist (Y, X, n_rays)) from a channels-first (1 + n_rays, Y, X) network output."""
    prob_dist = np.asarray(prob_dist, dtype=np.float32)
    if prob_dist.ndim != 3:
        raise ValueError(f"probability and distances of shape {prob_dist.shape}, expected (1 + n_rays, y, x)")
    return prob_dist[0], np.moveaxis(prob_dist[1:], 0, -1)


def find_candidates(prob_dist: np.ndarray, params: StarConvexParams, border=None) -> Candidates:
    """Non-maximum suppression on a channels-first (1 + n_rays, Y, X) output; `border`: stardist's `b` (an int or
    ((top, bottom), (left, right))), the params' border when None."""
    from stardist import non_maximum_suppression

    prob, dist = _split(prob_dist)
    if dist.shape[-1] != params.n_rays:
        raise ValueError(f"{dist.shape[-1]} distance channels, the post-processing expects n_rays {params.n_rays}")
    points, probi, disti = non_maximum_suppression(
        dist,
        prob,
        grid=params.grid,
        prob_thresh=params.prob_threshold,
        nms_thresh=params.nms_threshold,
        b=params.border if border is None else border,
    )
    return Candidates(np.asarray(points, np.int64).reshape(-1, 2), np.asarray(probi, np.float32), disti)


def suppress(candidates: Candidates, nms_threshold: float) -> Candidates:
    """Non-maximum suppression over a list of candidates (gathered from tiles), best probability first."""
    from stardist.nms import non_maximum_suppression_sparse

    if len(candidates) < 2:
        return candidates
    *_, kept = non_maximum_suppression_sparse(
        candidates.dist, candidates.prob, candidates.points, b=0, nms_thresh=nms_threshold
    )
    return candidates.take(np.sort(kept))


def render(candidates: Candidates, shape: tuple[int, int], origin=(0, 0), ids: np.ndarray | None = None) -> np.ndarray:
    """The label image (int32) of the region of `shape` at `origin` in image coordinates: every polygon
    rasterised, a higher probability painted over a lower one (as `stardist.polygons_to_label`). Objects are
    numbered by `ids` (default: 1 for the most probable, as stardist numbers them)."""
    from stardist import polygons_to_label

    if not len(candidates):
        return np.zeros(shape, np.int32)
    if ids is None:
        ids = np.empty(len(candidates), np.int64)
        ids[np.argsort(-candidates.prob, kind="stable")] = np.arange(1, len(candidates) + 1)
    points = candidates.points - np.asarray(origin, np.int64)
    order = np.argsort(-candidates.prob, kind="stable")  # polygons_to_label numbers by position: 1 + index
    local = polygons_to_label(candidates.dist[order], points[order], shape=tuple(shape), prob=candidates.prob[order])
    lookup = np.concatenate([[0], np.asarray(ids)[order]])
    return lookup[local].astype(np.int32)


def channels_before_postprocessing(postprocessing) -> int | None:
    """How many channels the model itself gives an output whose post-processing changes their number, as
    bioimageio.core counts them: 1 + n_rays before `stardist_postprocessing`, 3 (flows and probability) before
    `cellpose_flow_dynamics`; None when the post-processing keeps them. `postprocessing`: bioimageio.spec's steps."""
    for step in postprocessing or ():
        op = getattr(step, "id", None)
        if op == STARDIST_OP:
            return 1 + int(step.kwargs.n_rays)
        if op == "cellpose_flow_dynamics":
            return 3
    return None


def labels_from_prob_dist(prob_dist: np.ndarray, params: StarConvexParams) -> np.ndarray:
    """The instance label image (int32) of one channels-first (1 + n_rays, Y, X) output, as bioimageio.core's
    `stardist_postprocessing` computes it."""
    from stardist import polygons_to_label

    found = find_candidates(prob_dist, params)
    shape = tuple(s * g for s, g in zip(np.shape(prob_dist)[1:], params.grid))
    return np.asarray(polygons_to_label(found.dist, found.points, prob=found.prob, shape=shape), dtype=np.int32)


__all__ = [
    "STARDIST_OP",
    "Candidates",
    "StarConvexParams",
    "channels_before_postprocessing",
    "find_candidates",
    "labels_from_prob_dist",
    "render",
    "suppress",
]
