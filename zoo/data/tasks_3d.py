"""Seeded synthetic z-stacks for 3D nuclei segmentation.

- ``make_nuclei_3d``: z-stacks of ellipsoid nuclei with more blur along z than across.

Every volume is built like ``zoo.data.tasks``' images: a noiseless expected photon count (objects blurred by the
optics, anisotropically, on a sloping background), then Poisson shot noise plus Gaussian read noise. The same seed
gives the same arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from zoo.data.synthetic import READ_NOISE, add_camera_noise
from zoo.data.tasks import _check_count, _texture

# --- 3D nuclei: counts per 32 x 64 x 64 voxels; z voxels are about twice as deep as they are wide ---
REFERENCE_VOLUME = 32 * 64 * 64
NUCLEI_PER_REFERENCE_VOLUME = (8, 16)
MEAN_RADIUS_YX = (6.0, 10.0)
MAX_ASPECT_YX = 1.5
SEMI_AXIS_Z = (3.5, 6.0)
TOUCHING_PROBABILITY_3D = 0.3
TOUCHING_OVERLAP_3D = (0.75, 0.92)
PLACEMENT_TRIES_3D = 10
NUCLEUS_PHOTONS_3D = (60.0, 200.0)
DEPTH_ATTENUATION = (0.0, 0.4)  # signal falls by exp(-a) from the top to the bottom plane
TEXTURE_STRENGTH_3D = 0.15
TEXTURE_SIGMA_3D = (0.75, 1.5, 1.5)
BACKGROUND_PHOTONS_3D = (25.0, 55.0)
BACKGROUND_RAMP_3D = 15.0
BLUR_SIGMA_Z = (1.2, 2.0)
BLUR_SIGMA_YX = (0.8, 1.2)


def _check_volume_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    if len(shape) != 3 or any(int(s) != s or s < 1 for s in shape):
        raise ValueError(f"shape {shape!r} must be three positive integers (depth, height, width)")
    return int(shape[0]), int(shape[1]), int(shape[2])


def rotation_yx(angles: np.ndarray) -> np.ndarray:
    """(k, 3, 3) rotations about z, acting on (z, y, x) vectors: ellipsoid frame -> volume frame."""
    cos, sin = np.cos(angles), np.sin(angles)
    rotations = np.zeros((len(angles), 3, 3))
    rotations[:, 0, 0] = 1.0
    rotations[:, 1, 1], rotations[:, 1, 2] = cos, -sin
    rotations[:, 2, 1], rotations[:, 2, 2] = sin, cos
    return rotations


def ellipsoid_reach(semi_axes: np.ndarray, rotations: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Distance from each ellipsoid's centre to its surface along unit ``directions`` (k, 3)."""
    local = np.einsum("kji,kj->ki", rotations, directions)  # rotate back into the ellipsoid frame
    return 1.0 / np.sqrt(((local / semi_axes) ** 2).sum(axis=1))


def place_centres_3d(
    rng: np.random.Generator, shape: tuple[int, int, int], semi_axes: np.ndarray, rotations: np.ndarray
) -> np.ndarray:
    """Centres: some nuclei touch an earlier one, the others avoid heavy overlap where they can."""
    k = len(semi_axes)
    touching = rng.random(k) < TOUCHING_PROBABILITY_3D
    touching[0] = False
    parents = (rng.random(k) * np.arange(k)).astype(np.int64)
    directions = rng.standard_normal((k, 3)) * np.array([0.4, 1.0, 1.0])  # mostly side by side
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    reach = ellipsoid_reach(semi_axes[parents], rotations[parents], directions)
    reach += ellipsoid_reach(semi_axes, rotations, -directions)
    steps = (reach * rng.uniform(*TOUCHING_OVERLAP_3D, size=k))[:, None] * directions
    candidates = rng.uniform((0.0, 0.0, 0.0), shape, size=(k, PLACEMENT_TRIES_3D, 3))
    scale = semi_axes.mean(axis=0)  # distances in units of a typical nucleus along each axis
    size = semi_axes.mean(axis=1) / scale.mean()
    min_distance_sq = (size[:, None] + size[None, :]) ** 2

    centres = np.empty((k, 3))
    for i in range(k):
        if touching[i]:
            centres[i] = centres[parents[i]] + steps[i]
            continue
        offsets = (candidates[i, :, None, :] - centres[None, :i, :]) / scale
        free = ((offsets**2).sum(axis=-1) > min_distance_sq[i, :i]).all(axis=1)
        centres[i] = candidates[i, free.argmax() if free.any() else -1]
    return centres


def make_nuclei_volume(
    rng: np.random.Generator, shape: tuple[int, int, int] = (32, 64, 64)
) -> tuple[np.ndarray, np.ndarray]:
    """One z-stack (float32 photons with camera noise) and its mask (uint8 0/1)."""
    shape = _check_volume_shape(shape)
    depth, height, width = shape
    per_reference = rng.integers(NUCLEI_PER_REFERENCE_VOLUME[0], NUCLEI_PER_REFERENCE_VOLUME[1] + 1)
    k = max(1, round(per_reference * depth * height * width / REFERENCE_VOLUME))
    mean_radius = rng.uniform(*MEAN_RADIUS_YX, size=k)
    aspect = np.sqrt(rng.uniform(1.0, MAX_ASPECT_YX, size=k))
    semi_axes = np.stack([rng.uniform(*SEMI_AXIS_Z, size=k), mean_radius * aspect, mean_radius / aspect], axis=1)
    angles = rng.uniform(0.0, np.pi, size=k)  # about the z axis
    rotations = rotation_yx(angles)
    centres = place_centres_3d(rng, shape, semi_axes, rotations)
    brightness = rng.uniform(*NUCLEUS_PHOTONS_3D, size=k)

    # One box per nucleus, large enough for the largest one, in ellipsoid coordinates (1 on the surface).
    half = np.ceil(semi_axes.max(axis=0)).astype(np.int64) + 1
    first = np.floor(centres).astype(np.int64) - half  # (k, 3) corner voxel of each box
    index_z, index_y, index_x = (
        first[:, axis, None, None, None] + np.arange(2 * half[axis] + 1).reshape(box_shape)
        for axis, box_shape in enumerate([(1, -1, 1, 1), (1, 1, -1, 1), (1, 1, 1, -1)])
    )
    dz, dy, dx = (
        index + 0.5 - centres[:, axis, None, None, None] for axis, index in enumerate([index_z, index_y, index_x])
    )
    cos, sin = (f(angles)[:, None, None, None] for f in (np.cos, np.sin))
    radius_sq = (dz / semi_axes[:, 0, None, None, None]) ** 2
    radius_sq = radius_sq + ((cos * dy + sin * dx) / semi_axes[:, 1, None, None, None]) ** 2
    radius_sq = radius_sq + ((cos * dx - sin * dy) / semi_axes[:, 2, None, None, None]) ** 2
    in_volume = (
        ((index_z >= 0) & (index_z < depth))
        & ((index_y >= 0) & (index_y < height))
        & ((index_x >= 0) & (index_x < width))
    )
    nucleus, box_z, box_y, box_x = np.nonzero((radius_sq < 1.0) & in_volume)
    flat = np.ravel_multi_index(
        (index_z[nucleus, box_z, 0, 0], index_y[nucleus, 0, box_y, 0], index_x[nucleus, 0, 0, box_x]), shape
    )
    mask = np.bincount(flat, minlength=depth * height * width).reshape(shape) > 0
    profile = 0.85 + 0.15 * (1.0 - radius_sq[nucleus, box_z, box_y, box_x])  # brighter centre
    signal = np.bincount(flat, weights=brightness[nucleus] * profile, minlength=mask.size).reshape(shape)

    z = (np.arange(depth)[:, None, None] + 0.5) / depth
    signal *= np.exp(-rng.uniform(*DEPTH_ATTENUATION) * z) * _texture(rng, shape, TEXTURE_SIGMA_3D, TEXTURE_STRENGTH_3D)
    blur = (rng.uniform(*BLUR_SIGMA_Z), *[rng.uniform(*BLUR_SIGMA_YX)] * 2)
    expected = ndimage.gaussian_filter(signal, blur, mode="nearest")
    y = (np.arange(height)[None, :, None] + 0.5) / height - 0.5
    x = (np.arange(width)[None, None, :] + 0.5) / width - 0.5
    slope_y, slope_x = rng.uniform(-BACKGROUND_RAMP_3D, BACKGROUND_RAMP_3D, size=2)
    expected += rng.uniform(*BACKGROUND_PHOTONS_3D) + slope_y * y + slope_x * x
    return add_camera_noise(rng, expected, READ_NOISE), mask.astype(np.uint8)


def make_nuclei_3d(n: int, shape: tuple[int, int, int] = (32, 64, 64), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n volumes (n, Z, Y, X) float32 photons and masks (n, Z, Y, X) uint8 0/1; the same seed, the same arrays."""
    n, shape = _check_count(n), _check_volume_shape(shape)
    rng = np.random.default_rng(seed)
    volumes = np.empty((n, *shape), dtype=np.float32)
    masks = np.empty((n, *shape), dtype=np.uint8)
    for i in range(n):
        volumes[i], masks[i] = make_nuclei_volume(rng, shape)
    return volumes, masks
