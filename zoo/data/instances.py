"""Seeded synthetic nuclei with instance labels: ``zoo.data.synthetic``'s scenes (touching and overlapping nuclei
of varied sizes, aspect ratios and wavy outlines), each nucleus numbered.

The image is ``zoo.data.synthetic``'s, pixel for pixel: the same scene, rendering and camera noise. The labels come
from rendering each nucleus of that scene on its own, in a window around it, with the same geometry; where nuclei
overlap, a pixel goes to the nucleus whose centre is nearest relative to its size (so every object stays one
star-convex piece around its centre). Their union is the binary mask of ``make_nuclei``. The same seed gives the
same arrays.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from zoo.data.synthetic import NucleiScene as NucleiScene
from zoo.data.synthetic import (
    _check_shape,
    add_camera_noise,
    render_nuclei_scene,
    sample_nuclei_scene,
)

MIN_OBJECT_PIXELS = 4  # smaller slivers (a nucleus almost hidden by its neighbours, or cut by the edge) are dropped


def _window(scene: NucleiScene, i: int) -> tuple[int, int, int, int]:
    """(row0, col0, size, half) of a square window that holds nucleus `i` with its perturbed outline."""
    stretch = 1.0 + float(scene.harmonic_amplitudes[i].sum())
    half = int(np.ceil(scene.semi_axes[i].max() * stretch)) + 2
    row, col = np.round(scene.centres[i]).astype(np.int64)
    return int(row) - half, int(col) - half, 2 * half + 1, half


def _nucleus_mask(scene: NucleiScene, i: int) -> tuple[np.ndarray, int, int]:
    """Nucleus `i` alone, rendered by ``render_nuclei_scene`` in its window: (mask, row0, col0)."""
    row0, col0, size, _ = _window(scene, i)
    one = slice(i, i + 1)
    alone = replace(
        scene,
        shape=(size, size),
        centres=scene.centres[one] - np.array([row0, col0], dtype=np.float64),
        semi_axes=scene.semi_axes[one],
        angles=scene.angles[one],
        harmonic_amplitudes=scene.harmonic_amplitudes[one],
        harmonic_phases=scene.harmonic_phases[one],
        brightness=scene.brightness[one],
        texture=np.ones((size, size)),
    )
    return render_nuclei_scene(alone)[1].astype(bool), row0, col0


def render_instance_labels(scene: NucleiScene) -> np.ndarray:
    """The instance labels (uint16 for up to 65535 objects, else uint32) of `scene`, numbered 1..n in the order of
    the scene's nuclei (nuclei outside the image, or left with under MIN_OBJECT_PIXELS, take no number)."""
    height, width = scene.shape
    owner = np.full(scene.shape, -1, dtype=np.int64)
    closeness = np.full(scene.shape, np.inf)
    mean_radius = scene.semi_axes.mean(axis=1)
    for i in range(len(scene.centres)):
        mask, row0, col0 = _nucleus_mask(scene, i)
        rows = slice(max(row0, 0), min(row0 + mask.shape[0], height))
        cols = slice(max(col0, 0), min(col0 + mask.shape[1], width))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        inside = mask[rows.start - row0 : rows.stop - row0, cols.start - col0 : cols.stop - col0]
        dy = (np.arange(rows.start, rows.stop)[:, None] - scene.centres[i, 0]) / mean_radius[i]
        dx = (np.arange(cols.start, cols.stop)[None, :] - scene.centres[i, 1]) / mean_radius[i]
        relative = np.where(inside, np.hypot(dy, dx), np.inf)
        nearer = relative < closeness[rows, cols]
        closeness[rows, cols] = np.where(nearer, relative, closeness[rows, cols])
        owner[rows, cols] = np.where(nearer, i, owner[rows, cols])
    ids, counts = np.unique(owner[owner >= 0], return_counts=True)
    kept = ids[counts >= MIN_OBJECT_PIXELS]
    numbers = np.zeros(len(scene.centres) + 1, dtype=np.int64)  # index 0 stands for "no nucleus" (owner -1)
    numbers[kept + 1] = np.arange(1, len(kept) + 1)
    dtype = np.uint16 if len(kept) < 2**16 else np.uint32
    return numbers[owner + 1].astype(dtype)


def make_instance_image(rng: np.random.Generator, shape: tuple[int, int] = (128, 128)) -> tuple[np.ndarray, np.ndarray]:
    """One image (float32 photons with camera noise, as ``make_nuclei_image``) and its instance labels."""
    scene = sample_nuclei_scene(rng, shape)
    expected, _ = render_nuclei_scene(scene)
    return add_camera_noise(rng, expected, scene.read_noise), render_instance_labels(scene)


def make_instances(n: int, shape: tuple[int, int] = (128, 128), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, H, W) float32 and their instance labels (n, H, W) uint16 (uint32 when an image has 65535
    objects or more); the same seed gives the same arrays, and the images are ``make_nuclei``'s."""
    if int(n) != n or n < 0:
        raise ValueError(f"n={n!r} must be zero or more images")
    shape = _check_shape(shape)
    rng = np.random.default_rng(seed)
    images = np.empty((int(n), *shape), dtype=np.float32)
    labels = [np.zeros(shape, np.uint16)] * int(n)
    for i in range(int(n)):
        images[i], labels[i] = make_instance_image(rng, shape)
    dtype = np.result_type(np.uint16, *(label.dtype for label in labels))
    return images, np.stack(labels).astype(dtype) if n else np.zeros((0, *shape), np.uint16)


__all__ = ["MIN_OBJECT_PIXELS", "make_instance_image", "make_instances", "render_instance_labels"]
