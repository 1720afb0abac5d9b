"""Trainers `care2d` (supervised denoising from noisy/clean pairs, Weigert et al. 2018) and `n2v2d`
(self-supervised Noise2Void from noisy images only, Krull et al. 2019), both with a 2D U-Net in PyTorch.

Inputs are normalised to zero mean and unit variance per image (the package's pre-processing); targets share
the input's normalisation, so the restored output is in the units of the normalised input."""

from __future__ import annotations

import numpy as np

from zoo.config import TrainConfig
from zoo.data.checks import MinSize
from zoo.trainers.datasets import SegmentationSplits, make_splits
from zoo.trainers.metrics import psnr, ssim
from zoo.trainers.task import Task
from zoo.trainers.torch_trainer import TorchTrainer, augment

RESTORATION_TAGS = ["unet", "2d", "denoising", "restoration", "fluorescence-light-microscopy", "zoo"]
N2V_MASKED_FRACTION = 0.02  # of the pixels of a patch hidden behind the blind spot per step
N2V_NEIGHBOURHOOD = 2  # a hidden pixel is replaced by a random other pixel within this radius


def _synthetic_pairs(config: TrainConfig, generator_note: str):
    from zoo.data.tasks import make_restoration_pairs

    data = config.data
    noisy, clean = make_restoration_pairs(data.n_images, (data.image_size, data.image_size), data.seed)
    provenance = {
        "source": "synthetic",
        "generator": "zoo.data.tasks.make_restoration_pairs",
        "n_images": data.n_images,
        "image_size": data.image_size,
        "seed": data.seed,
        "name": "zoo synthetic noisy/clean fluorescence",
        "description": f"Synthetic fluorescence images, {data.n_images} of {data.image_size}x"
        f"{data.image_size} px from zoo.data.tasks.make_restoration_pairs with seed "
        f"{data.seed}: low-photon Poisson-Gaussian noisy images and their noiseless "
        f"ground truth ({generator_note}).",
        "tags": ["fluorescence-light-microscopy", "2d", "denoising"],
    }
    return list(noisy), list(clean), provenance


def restoration_metrics(predictions, inputs, clean) -> dict[str, float]:
    """PSNR and SSIM of the restored images and of the noisy inputs against the clean ground truth (all in the
    normalised units of the input; PSNR does not change under one affine map of both)."""
    restored = [psnr(p[0], c) for p, c in zip(predictions, clean)]
    noisy = [psnr(x, c) for x, c in zip(inputs, clean)]
    return {
        "test_psnr": float(np.mean(restored)),
        "test_psnr_input": float(np.mean(noisy)),
        "test_psnr_gain": float(np.mean(restored) - np.mean(noisy)),
        "test_ssim": float(np.mean([ssim(p[0], c) for p, c in zip(predictions, clean)])),
    }


class _RestorationTrainer(TorchTrainer):
    final_activation = "none"
    target_is_image = True

    def loss(self, prediction, target):
        import torch

        return torch.nn.functional.mse_loss(prediction, target)

    def task(self, config, splits) -> Task:
        return Task(
            kind="restoration",
            output_id="restored",
            output_channels=("restored",),
            output_range=None,
            output_description="denoised image in the units of the normalised input (zero mean, unit "
            "variance of the input image)",
        )


class Care2dTrainer(_RestorationTrainer):
    name = "care2d"
    data_layout = "images/<name>.tif (noisy) + targets/<name>.tif (clean)"
    description = "CARE-style supervised denoising (PyTorch 2D U-Net) from noisy/clean pairs; MSE loss, PSNR/SSIM"
    package = {
        "name": "zoo CARE 2D denoising",
        "description": "2D U-Net trained on noisy/clean image pairs (CARE) to denoise low-light fluorescence "
        "images; trained and packaged with zoo.",
        "tags": [*RESTORATION_TAGS, "care"],
    }

    def load_splits(self, config: TrainConfig) -> SegmentationSplits:
        if config.data.folder is not None:
            from zoo.data.folder import load_image_target_folder

            min_size = MinSize.for_patches(config.patch_size, config.depth)
            folder = load_image_target_folder(config.data.folder, min_size=min_size)
            noisy, clean, warnings = folder.images, folder.masks, list(folder.warnings)
            provenance = {
                "source": "folder",
                "folder": str(config.data.folder),
                "n_files": folder.n_files,
                "sha256": folder.sha256,
                "files_kind": "noisy/clean TIFF pairs",
            }
        else:
            warnings = []
            noisy, clean, provenance = _synthetic_pairs(config, "the trainer sees both")
        splits = make_splits(
            list(noisy), list(clean), config.data, provenance, multiple_of=2**config.depth, target_kind="image"
        )
        splits.data_warnings = warnings
        return splits

    def evaluate(self, predictions, splits):
        return restoration_metrics(predictions, splits.test_images, splits.test_masks), {}


class N2v2dTrainer(_RestorationTrainer):
    name = "n2v2d"
    data_layout = "noisy *.tif in the folder or in images/ (no ground truth needed)"
    description = "Noise2Void self-supervised denoising (PyTorch 2D U-Net) from noisy images only; blind-spot MSE"
    package = {
        "name": "zoo Noise2Void 2D denoising",
        "description": "2D U-Net trained with Noise2Void blind-spot masking on noisy images only, to denoise "
        "fluorescence images with pixel-independent noise; trained and packaged with zoo.",
        "tags": [*RESTORATION_TAGS, "noise2void", "self-supervised"],
    }

    def load_splits(self, config: TrainConfig) -> SegmentationSplits:
        if config.data.folder is not None:
            from zoo.data.folder import load_image_folder

            folder = load_image_folder(
                config.data.folder, min_size=MinSize.for_patches(config.patch_size, config.depth)
            )
            provenance = {
                "source": "folder",
                "folder": str(config.data.folder),
                "n_files": folder.n_files,
                "sha256": folder.sha256,
                "files_kind": "noisy TIFF images (no ground truth)",
            }
            splits = make_splits(
                list(folder.images), [], config.data, provenance, multiple_of=2**config.depth, target_kind="none"
            )
            splits.data_warnings = list(folder.warnings)
            return splits
        noisy, clean, provenance = _synthetic_pairs(
            config, "training sees the noisy images only; the clean ones are kept for evaluating the test split"
        )
        splits = make_splits(noisy, clean, config.data, provenance, multiple_of=2**config.depth, target_kind="image")
        splits.test_clean = splits.test_masks  # never trained on
        splits.train_masks, splits.val_masks = splits.train_images, splits.val_images
        return splits

    def blind_spot(self, rng: np.random.Generator, patch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The patch with a random few pixels replaced by a random neighbour, and the target (the original patch,
        with a second channel marking the hidden pixels where the loss is taken)."""
        height, width = patch.shape
        count = max(1, int(N2V_MASKED_FRACTION * patch.size))
        ys, xs = rng.integers(height, size=count), rng.integers(width, size=count)
        r = N2V_NEIGHBOURHOOD
        dy, dx = rng.integers(-r, r + 1, size=count), rng.integers(-r, r + 1, size=count)
        same = (dy == 0) & (dx == 0)
        dx[same] = np.where(rng.random(int(same.sum())) < 0.5, -1, 1)  # never the hidden pixel itself
        masked = patch.copy()
        masked[ys, xs] = patch[np.clip(ys + dy, 0, height - 1), np.clip(xs + dx, 0, width - 1)]
        where = np.zeros_like(patch)
        where[ys, xs] = 1
        return masked, np.stack([patch, where])

    def batch(self, splits, rng, config):
        xs, ys = [], []
        for _ in range(config.batch_size):
            i = int(rng.integers(len(splits.train_images)))
            patch, _ = augment(rng, splits.train_images[i], None, config.patch_size)
            masked, target = self.blind_spot(rng, patch)
            xs.append(masked[None])
            ys.append(target.astype(np.float32))
        return np.stack(xs), np.stack(ys)

    def loss(self, prediction, target):
        hidden = target[:, 1:2]
        return ((prediction - target[:, 0:1]) ** 2 * hidden).sum() / hidden.sum().clamp(min=1)

    def validation_loss(self, model, splits, device) -> float:
        import torch

        rng = np.random.default_rng(0)  # the same hidden pixels every epoch: comparable losses
        losses = []
        for x in splits.val_images:
            masked, target = self.blind_spot(rng, x)
            prediction = model(torch.from_numpy(masked[None, None]).to(device))
            losses.append(float(self.loss(prediction, torch.from_numpy(target[None].astype(np.float32)).to(device))))
        return float(np.mean(losses))

    def evaluate(self, predictions, splits):
        if not splits.test_clean:
            return {}, {"note": "no clean ground truth: a Noise2Void run on noisy images only has no PSNR"}
        return restoration_metrics(predictions, splits.test_images, splits.test_clean), {}
