"""Trainer `unet2d`: binary segmentation of nuclei with a 2D U-Net in PyTorch."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from zoo.bioimage.devices import resolve_device
from zoo.config import TrainConfig
from zoo.data.checks import MinSize
from zoo.trainers.datasets import SegmentationSplits, load_segmentation_splits, normalize_image
from zoo.trainers.metrics import iou
from zoo.trainers.task import Task
from zoo.trainers.torch_trainer import TorchTrainer

logger = logging.getLogger(__name__)


@dataclass
class Augmenter:
    """Random crops with flips, 90° rotations and intensity jitter, on normalised images."""

    rng: np.random.Generator
    patch: int

    def batch(self, images: list[np.ndarray], masks: list[np.ndarray], size: int):
        xs, ys = [], []
        for _ in range(size):
            i = int(self.rng.integers(len(images)))
            image, mask = images[i], masks[i]
            patch = min(self.patch, *image.shape)
            y0 = int(self.rng.integers(image.shape[0] - patch + 1))
            x0 = int(self.rng.integers(image.shape[1] - patch + 1))
            x = image[y0 : y0 + patch, x0 : x0 + patch]
            y = mask[y0 : y0 + patch, x0 : x0 + patch]
            k = int(self.rng.integers(4))
            x, y = np.rot90(x, k), np.rot90(y, k)
            if self.rng.random() < 0.5:
                x, y = x[:, ::-1], y[:, ::-1]
            gain = self.rng.uniform(0.8, 1.2)
            offset = self.rng.uniform(-0.2, 0.2)
            xs.append(x * gain + offset)
            ys.append(y)
        return np.stack(xs)[:, None].astype(np.float32), np.stack(ys)[:, None].astype(np.float32)


class UNet2dTrainer(TorchTrainer):
    name = "unet2d"
    description = "2D U-Net (PyTorch) for binary segmentation of nuclei; BCE + Dice loss, IoU metric"
    package = {
        "name": "zoo U-Net 2D nuclei segmentation",
        "description": "2D U-Net that segments fluorescent nuclei into a foreground probability map; "
        "trained and packaged with zoo.",
        "tags": ["unet", "2d", "segmentation", "nuclei", "fluorescence-light-microscopy", "zoo"],
    }

    def load_splits(self, config: TrainConfig) -> SegmentationSplits:
        return load_segmentation_splits(
            config.data, multiple_of=2**config.depth, min_size=MinSize.for_patches(config.patch_size, config.depth)
        )

    def task(self, config: TrainConfig, splits: SegmentationSplits) -> Task:
        return Task(kind="segmentation")

    def loss(self, logits, target):
        return _bce_dice(logits, target)

    def evaluate(self, predictions, splits):
        return {
            "test_iou": iou(
                np.concatenate([p.ravel() for p in predictions]), np.concatenate([m.ravel() for m in splits.test_masks])
            )
        }, {}


def _bce_dice(logits, target):
    import torch

    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    probability = torch.sigmoid(logits)
    intersection = (probability * target).sum()
    dice = 1 - (2 * intersection + 1) / (probability.sum() + target.sum() + 1)
    return bce + dice


__all__ = ["Augmenter", "SegmentationSplits", "UNet2dTrainer", "iou", "normalize_image", "resolve_device"]
