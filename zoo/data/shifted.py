"""A target domain for fine-tuning: the synthetic nuclei of zoo.data.synthetic as another microscope would show them
(larger, dimmer nuclei, fewer per image, a brighter uneven background, more blur and read noise: a lower SNR), with
exact masks. The scenes are drawn by the same generator and then shifted, so one seed gives the same layout in both
domains; the source domain's defaults are untouched. A writer puts images and masks into the `--data` layout that
`zoo train` and `zoo finetune` read."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from zoo.data.synthetic import add_camera_noise, render_nuclei_scene, sample_nuclei_scene


@dataclass(frozen=True)
class DomainShift:
    """How the target domain differs from the generator's own (factors apply to its values)."""

    size: float = 1.5  # nucleus semi-axes ×
    keep: float = 0.5  # share of the nuclei kept (larger nuclei, fewer of them)
    brightness: float = 0.5  # nucleus photons above background ×
    background: tuple[float, float] = (80.0, 120.0)  # photons at the image centre
    ramp: float = 40.0  # photons across the image, each direction
    blur: tuple[float, float] = (1.4, 2.0)  # pixels
    read_noise: float = 9.0  # photons, standard deviation


# another microscope: about 2.6 times the nucleus area, less than half the contrast over the background's spread
TARGET_DOMAIN = DomainShift()
# a harsher one: contrast about a seventh of the source's (nuclei barely above a bright, uneven background)
SEVERE_SHIFT = DomainShift(
    size=1.6, keep=0.45, brightness=0.3, background=(90.0, 140.0), ramp=60.0, blur=(1.6, 2.4), read_noise=12.0
)
SHIFTS = {"moderate": TARGET_DOMAIN, "severe": SEVERE_SHIFT}


def make_shifted_nuclei_image(
    rng: np.random.Generator, shape: tuple[int, int] = (128, 128), shift: DomainShift = TARGET_DOMAIN
) -> tuple[np.ndarray, np.ndarray]:
    """One target-domain image (float32 photons, not normalised) and its exact mask (uint8 0/1)."""
    scene = sample_nuclei_scene(rng, shape)
    kept = rng.random(len(scene.brightness)) < shift.keep
    kept[int(rng.integers(len(kept)))] = True  # at least one nucleus
    scene = replace(
        scene,
        centres=scene.centres[kept],
        semi_axes=scene.semi_axes[kept] * shift.size,
        angles=scene.angles[kept],
        harmonic_amplitudes=scene.harmonic_amplitudes[kept],
        harmonic_phases=scene.harmonic_phases[kept],
        brightness=scene.brightness[kept] * shift.brightness,
        background_offset=float(rng.uniform(*shift.background)),
        background_slope=tuple(float(s) for s in rng.uniform(-shift.ramp, shift.ramp, 2)),
        blur_sigma=float(rng.uniform(*shift.blur)),
        read_noise=shift.read_noise,
    )
    expected, mask = render_nuclei_scene(scene)
    return add_camera_noise(rng, expected, scene.read_noise), mask


def make_shifted_nuclei(
    n: int, shape: tuple[int, int] = (128, 128), seed: int = 0, shift: DomainShift = TARGET_DOMAIN
) -> tuple[np.ndarray, np.ndarray]:
    """n target-domain images (n, H, W) float32 and masks (n, H, W) uint8; the same seed gives the same arrays."""
    if n < 0:
        raise ValueError(f"n={n} must be zero or more images")
    shape = (int(shape[0]), int(shape[1]))  # sample_nuclei_scene checks it
    rng = np.random.default_rng(seed)
    images = np.empty((n, *shape), dtype=np.float32)
    masks = np.empty((n, *shape), dtype=np.uint8)
    for i in range(n):
        images[i], masks[i] = make_shifted_nuclei_image(rng, shape, shift)
    return images, masks


def write_image_mask_folder(folder: Path, images: np.ndarray, masks: np.ndarray) -> Path:
    """`folder/images/<i>.tif` with `folder/masks/<i>.tif`: the layout `--data` reads for segmentation."""
    import tifffile

    folder = Path(folder)
    for name in ("images", "masks"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    width = len(str(max(len(images) - 1, 0)))
    for i, (image, mask) in enumerate(zip(images, masks)):
        tifffile.imwrite(folder / "images" / f"{i:0{width}d}.tif", np.asarray(image, dtype=np.float32))
        tifffile.imwrite(folder / "masks" / f"{i:0{width}d}.tif", np.asarray(mask, dtype=np.uint8))
    return folder


__all__ = [
    "TARGET_DOMAIN",
    "DomainShift",
    "make_shifted_nuclei",
    "make_shifted_nuclei_image",
    "write_image_mask_folder",
]
