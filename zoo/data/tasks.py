"""Seeded synthetic data for the tasks beyond binary nuclei segmentation.

- ``make_multiclass``: nuclei and rod-shaped cells on one image, labelled background 0, nucleus 1, rod 2.
  Rods are thinner than any nucleus (5-7 px across against at least 8 px) and longer; their brightness
  overlaps the nuclei's, so a threshold finds the objects but cannot tell the two kinds apart.
- ``make_restoration_pairs``: a low-light image and its noiseless expected photon counts.
- ``make_classification``: one cell per image, interphase, mitotic or apoptotic.

The 3D generator, ``make_nuclei_3d``, is in ``zoo.data.tasks_3d``.

Every image is built like ``zoo.data.synthetic``'s: a noiseless expected photon count (objects blurred by
the optics on a sloping background), then Poisson shot noise plus Gaussian read noise. The same seed gives
the same arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from zoo.data.synthetic import (
    READ_NOISE,
    _check_shape,
    add_camera_noise,
    render_nuclei_scene,
    sample_nuclei_scene,
)

# --- multi-class segmentation: nuclei and rods (counts per 128 x 128, sizes in pixels, photons) ---
MULTICLASS_NAMES = ("background", "nucleus", "rod")
RODS_PER_REFERENCE_AREA = (4, 9)
ROD_HALF_WIDTH = (2.5, 3.5)  # nuclei have semi-axes of at least 4
ROD_HALF_LENGTH = (7.0, 13.0)  # of the central segment, the round caps come on top
ROD_PHOTONS = (70.0, 220.0)  # nuclei: 60-200 at their centre
ROD_CLEARANCE = 1.5  # pixels kept free between a rod and any other object
ROD_PLACEMENT_TRIES = 30
REFERENCE_AREA = 128 * 128

# --- restoration: the nuclei scene at a short exposure, its brightest pixel collecting this many photons ---
RESTORATION_PEAK_PHOTONS = 24.0
RESTORATION_READ_NOISE = 1.5

# --- classification: one cell per image; lengths are fractions of the image size ---
PHENOTYPE_NAMES = ("interphase", "mitotic", "apoptotic")
MIN_CLASSIFICATION_SIZE = 16
CELL_JITTER = 0.08
INTERPHASE_RADIUS = (0.17, 0.25)
INTERPHASE_MAX_ASPECT = 1.5
INTERPHASE_PHOTONS = (50.0, 150.0)
INTERPHASE_TEXTURE = 0.3  # chromatin speckle, relative
CONDENSED_TEXTURE = 0.1
PLATE_HALF_LENGTH = (0.12, 0.19)  # metaphase plate: a bar of condensed chromosomes
PLATE_HALF_WIDTH = (0.035, 0.055)
ANAPHASE_PROBABILITY = 0.3  # two parallel bars moving apart instead of one
ANAPHASE_SEPARATION = (0.09, 0.14)  # half the distance between the two bars
CHROMOSOME_PHOTONS = (120.0, 300.0)
APOPTOTIC_BODIES = (3, 8)
APOPTOTIC_BODY_RADIUS = (0.03, 0.065)
APOPTOTIC_SPREAD = 0.2  # bodies lie within this distance of the cell centre
APOPTOTIC_PHOTONS = (120.0, 350.0)
CELL_HALO_PHOTONS = (3.0, 12.0)  # faint cytoplasm around every cell
CELL_HALO_RADIUS = 0.33
CELL_BACKGROUND_PHOTONS = (20.0, 50.0)
CELL_BLUR_SIGMA = (0.7, 1.1)


def _check_count(n: int) -> int:
    if int(n) != n or n < 0:
        raise ValueError(f"n={n!r} must be zero or more images")
    return int(n)


def _segment_distance(dy: np.ndarray, dx: np.ndarray, angle, half_length) -> np.ndarray:
    """Distance of the offsets (dy, dx) from a segment through the origin at ``angle`` (radians)."""
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = dy * np.cos(angle) - dx * np.sin(angle)
    return np.hypot(np.clip(np.abs(along) - half_length, 0.0, None), across)


def _texture(rng: np.random.Generator, shape: tuple[int, ...], sigma, strength: float) -> np.ndarray:
    """Multiplicative speckle with mean about 1 and relative standard deviation ``strength``."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    field /= max(float(field.std()), 1e-12)
    return np.clip(1.0 + strength * field, 0.5, 1.5)


def psnr(clean: np.ndarray, estimate: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of ``estimate`` against ``clean``, over the data range of ``clean``."""
    clean = np.asarray(clean, dtype=np.float64)
    error = float(np.mean((clean - np.asarray(estimate, dtype=np.float64)) ** 2))
    data_range = float(clean.max() - clean.min())
    return float(10.0 * np.log10(data_range**2 / max(error, 1e-30)))


# ------------------------------------------------------------------------------------------------------
# Multi-class segmentation


def _place_rods(
    rng: np.random.Generator, occupied: np.ndarray, texture: np.ndarray, blur_sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rods where they keep ``ROD_CLEARANCE`` from every occupied pixel: their mask and blurred photons."""
    height, width = occupied.shape
    per_reference = rng.integers(RODS_PER_REFERENCE_AREA[0], RODS_PER_REFERENCE_AREA[1] + 1)
    k = max(1, round(per_reference * height * width / REFERENCE_AREA))
    half_widths = rng.uniform(*ROD_HALF_WIDTH, size=k)
    half_lengths = rng.uniform(*ROD_HALF_LENGTH, size=k)
    brightness = rng.uniform(*ROD_PHOTONS, size=k)
    angles = rng.uniform(0.0, np.pi, size=(k, ROD_PLACEMENT_TRIES))
    # Candidate centres with the whole rod inside the image where it is large enough (a sliver at the edge
    # says nothing of its shape).
    reach = half_lengths + half_widths + 1.0
    size = np.array([height, width])
    low = np.where(size > 2 * reach[:, None], reach[:, None], 0.0)  # (k, 2)
    all_centres = low[:, None, :] + rng.random((k, ROD_PLACEMENT_TRIES, 2)) * (size - 2 * low)[:, None, :]
    free_distance = ndimage.distance_transform_edt(~occupied.astype(bool))  # to the nearest nucleus pixel

    half = int(np.ceil(reach.max() + ROD_CLEARANCE)) + 1
    offsets = np.arange(-half, half + 1)
    padded = np.pad(occupied.astype(bool), half)  # outside the image counts as free
    rod_mask = np.zeros((height + 2 * half, width + 2 * half), dtype=bool)
    signal = np.zeros_like(rod_mask, dtype=np.float64)
    for i in range(k):
        centres = all_centres[i]
        # Cheap look-ahead: skip candidates whose axis passes too close to a nucleus.
        along = np.linspace(-half_lengths[i], half_lengths[i], 2 * int(np.ceil(half_lengths[i])) + 1)
        direction = np.stack([np.sin(angles[i]), np.cos(angles[i])], axis=1)  # (tries, 2) row, column
        axis_points = centres[:, None, :] + along[None, :, None] * direction[:, None, :]
        axis_pixels = np.clip(np.floor(axis_points).astype(np.int64), 0, [height - 1, width - 1])
        clear = free_distance[axis_pixels[..., 0], axis_pixels[..., 1]] > half_widths[i] + ROD_CLEARANCE
        for t in np.flatnonzero(clear.all(axis=1)):  # the first free candidate wins; none free: no rod
            centre = centres[t]
            # The patch around the candidate in padded coordinates, its pixel centres relative to the rod's.
            row, col = np.floor(centre).astype(np.int64) + half
            window = np.s_[row - half : row + half + 1, col - half : col + half + 1]
            dy = (row - half + 0.5 - centre[0]) + offsets[:, None]
            dx = (col - half + 0.5 - centre[1]) + offsets[None, :]
            distance = _segment_distance(dy, dx, angles[i, t], half_lengths[i])
            keep_out = distance < half_widths[i] + ROD_CLEARANCE
            if (keep_out & padded[window]).any():
                continue
            padded[window] |= keep_out
            inside = distance < half_widths[i]
            rod_mask[window] |= inside
            signal[window] += brightness[i] * inside
            break
    rod_mask = rod_mask[half:-half, half:-half]
    signal = ndimage.gaussian_filter(signal[half:-half, half:-half] * texture, blur_sigma, mode="nearest")
    return rod_mask, signal


def make_multiclass_image(
    rng: np.random.Generator, shape: tuple[int, int] = (128, 128)
) -> tuple[np.ndarray, np.ndarray]:
    """One image (float32 photons with camera noise) and its labels (uint8: 0 background, 1 nucleus, 2 rod)."""
    scene = sample_nuclei_scene(rng, shape)
    expected, nuclei = render_nuclei_scene(scene)
    rods, rod_signal = _place_rods(rng, nuclei, scene.texture, scene.blur_sigma)
    labels = nuclei.copy()
    labels[rods] = 2
    return add_camera_noise(rng, expected + rod_signal, scene.read_noise), labels


def make_multiclass(
    n: int, shape: tuple[int, int] = (128, 128), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """n images (n, H, W) float32 photons, labels (n, H, W) uint8 in 0..2 and the 3 class names."""
    n, shape = _check_count(n), _check_shape(shape)
    rng = np.random.default_rng(seed)
    images = np.empty((n, *shape), dtype=np.float32)
    labels = np.empty((n, *shape), dtype=np.uint8)
    for i in range(n):
        images[i], labels[i] = make_multiclass_image(rng, shape)
    return images, labels, list(MULTICLASS_NAMES)


# ------------------------------------------------------------------------------------------------------
# Restoration


def make_restoration_pairs(n: int, shape: tuple[int, int] = (128, 128), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) float32 (n, H, W) on one photon scale.

    ``clean`` is the noiseless expected photon count of a nuclei scene at an exposure that gives its
    brightest pixel ``RESTORATION_PEAK_PHOTONS``; ``noisy`` is one Poisson draw of it plus Gaussian read
    noise, independent from pixel to pixel with mean ``clean`` (what Noise2Void assumes). Noisy images
    are 15-22 dB PSNR against their clean ones (over the data range of clean; about 18.5 dB on average).
    """
    n, shape = _check_count(n), _check_shape(shape)
    rng = np.random.default_rng(seed)
    noisy = np.empty((n, *shape), dtype=np.float32)
    clean = np.empty((n, *shape), dtype=np.float32)
    for i in range(n):
        expected, _ = render_nuclei_scene(sample_nuclei_scene(rng, shape))
        clean[i] = expected * (RESTORATION_PEAK_PHOTONS / expected.max())
        noisy[i] = add_camera_noise(rng, clean[i], RESTORATION_READ_NOISE)
    return noisy, clean


# ------------------------------------------------------------------------------------------------------
# Classification


def _interphase(rng: np.random.Generator, dy: np.ndarray, dx: np.ndarray, size: int) -> np.ndarray:
    """A round-to-oval nucleus with speckled chromatin."""
    radius = rng.uniform(*INTERPHASE_RADIUS) * size
    aspect = np.sqrt(rng.uniform(1.0, INTERPHASE_MAX_ASPECT))
    angle = rng.uniform(0.0, np.pi)
    along = (dx * np.cos(angle) + dy * np.sin(angle)) / (radius * aspect)
    across = (dy * np.cos(angle) - dx * np.sin(angle)) * aspect / radius
    radius_sq = along**2 + across**2
    profile = np.where(radius_sq < 1.0, 0.85 + 0.15 * (1.0 - radius_sq), 0.0)
    texture = _texture(rng, dy.shape, 1.0, INTERPHASE_TEXTURE)
    return rng.uniform(*INTERPHASE_PHOTONS) * profile * texture


def _mitotic(rng: np.random.Generator, dy: np.ndarray, dx: np.ndarray, size: int) -> np.ndarray:
    """Condensed chromosomes: one bright bar (metaphase plate) or two parallel bars (anaphase)."""
    half_length = rng.uniform(*PLATE_HALF_LENGTH) * size
    half_width = rng.uniform(*PLATE_HALF_WIDTH) * size
    angle = rng.uniform(0.0, np.pi)
    separation = rng.uniform(*ANAPHASE_SEPARATION) * size if rng.random() < ANAPHASE_PROBABILITY else 0.0
    shift_y, shift_x = separation * np.cos(angle), -separation * np.sin(angle)  # across the bar
    inside = np.zeros(dy.shape, dtype=bool)
    for sign in (-1.0, 1.0) if separation else (0.0,):
        inside |= _segment_distance(dy - sign * shift_y, dx - sign * shift_x, angle, half_length) < half_width
    texture = _texture(rng, dy.shape, 1.0, CONDENSED_TEXTURE)
    return rng.uniform(*CHROMOSOME_PHOTONS) * inside * texture


def _apoptotic(rng: np.random.Generator, dy: np.ndarray, dx: np.ndarray, size: int) -> np.ndarray:
    """Fragmented chromatin: a few small bright round bodies."""
    k = rng.integers(APOPTOTIC_BODIES[0], APOPTOTIC_BODIES[1] + 1)
    distance = np.sqrt(rng.random(k)) * APOPTOTIC_SPREAD * size
    direction = rng.uniform(0.0, 2.0 * np.pi, size=k)
    radii = rng.uniform(*APOPTOTIC_BODY_RADIUS, size=k) * size
    brightness = rng.uniform(*APOPTOTIC_PHOTONS, size=k)
    body_dy = dy[None] - (distance * np.sin(direction))[:, None, None]
    body_dx = dx[None] - (distance * np.cos(direction))[:, None, None]
    inside = body_dy**2 + body_dx**2 < radii[:, None, None] ** 2
    return np.max(brightness[:, None, None] * inside, axis=0)  # overlapping bodies do not add up


PHENOTYPE_RENDERERS = (_interphase, _mitotic, _apoptotic)


def make_cell_image(rng: np.random.Generator, size: int, label: int) -> np.ndarray:
    """One cell of phenotype ``PHENOTYPE_NAMES[label]`` near the centre of a (size, size) image; float32."""
    centre = size / 2.0 + rng.uniform(-CELL_JITTER, CELL_JITTER, size=2) * size
    dy = np.arange(size)[:, None] + 0.5 - centre[0] + np.zeros((1, size))
    dx = np.arange(size)[None, :] + 0.5 - centre[1] + np.zeros((size, 1))
    signal = PHENOTYPE_RENDERERS[label](rng, dy, dx, size)
    halo = rng.uniform(*CELL_HALO_PHOTONS) * (dy**2 + dx**2 < (CELL_HALO_RADIUS * size) ** 2)
    expected = ndimage.gaussian_filter(signal + halo, rng.uniform(*CELL_BLUR_SIGMA), mode="nearest")
    expected += rng.uniform(*CELL_BACKGROUND_PHOTONS)
    return add_camera_noise(rng, expected, READ_NOISE)


def make_classification(n: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """n images (n, size, size) float32 of one cell each, labels (n,) int64 in 0..2 and the 3 phenotype names.

    Classes are balanced: label counts differ by at most one, in an order shuffled by the seed.
    """
    n = _check_count(n)
    if int(size) != size or size < MIN_CLASSIFICATION_SIZE:
        raise ValueError(f"size={size!r} must be an integer of at least {MIN_CLASSIFICATION_SIZE} pixels")
    size = int(size)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(PHENOTYPE_NAMES)).astype(np.int64)
    images = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        images[i] = make_cell_image(rng, size, int(labels[i]))
    return images, labels, list(PHENOTYPE_NAMES)
