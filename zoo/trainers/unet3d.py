"""Trainer `unet3d`: binary segmentation of nuclei in (z, y, x) volumes with a 3D U-Net in PyTorch."""

from __future__ import annotations

import numpy as np

from zoo.config import TrainConfig
from zoo.data.checks import MinSize
from zoo.trainers.datasets import SegmentationSplits, make_splits
from zoo.trainers.metrics import iou
from zoo.trainers.task import Task
from zoo.trainers.torch_trainer import TorchTrainer
from zoo.trainers.unet2d import _bce_dice


class UNet3dTrainer(TorchTrainer):
    name = "unet3d"
    description = "3D U-Net (PyTorch) for binary segmentation of nuclei in z-stacks; BCE + Dice loss, IoU metric"
    architecture = "unet3d"
    architecture_class = "UNet3d"
    data_layout = "images/<name>.tif (z-stacks) + masks/<name>.tif (0 background, >0 foreground)"
    defaults = {
        "epochs": 40,
        "batch_size": 4,
        "patch_size": 32,
        "base_channels": 8,
        "depth": 2,
        "lr": 3e-3,
        "data": {"n_images": 40, "image_size": 64},
    }
    quick_defaults = {"batch_size": 2, "patch_size": 32, "data": {"n_images": 8, "image_size": 64}}
    package = {
        "name": "zoo U-Net 3D nuclei segmentation",
        "description": "3D U-Net that segments fluorescent nuclei in z-stacks into a foreground probability "
        "map; trained and packaged with zoo.",
        "tags": ["unet", "3d", "segmentation", "nuclei", "fluorescence-light-microscopy", "zoo"],
    }

    def load_splits(self, config: TrainConfig) -> SegmentationSplits:
        data = config.data
        if data.folder is not None:
            from zoo.data.folder import load_image_mask_folder

            min_size = MinSize.for_patches(config.patch_size, config.depth)
            folder = load_image_mask_folder(data.folder, ndim=3, min_size=min_size)
            volumes, masks, warnings = folder.images, folder.masks, list(folder.warnings)
            provenance = {
                "source": "folder",
                "folder": str(data.folder),
                "n_files": folder.n_files,
                "sha256": folder.sha256,
                "files_kind": "z-stack/mask TIFF pairs",
            }
        else:
            from zoo.data.tasks_3d import make_nuclei_3d

            warnings = []
            side = data.image_size
            volumes, masks = make_nuclei_3d(data.n_images, (side, side, side), data.seed)
            provenance = {
                "source": "synthetic",
                "generator": "zoo.data.tasks_3d.make_nuclei_3d",
                "n_images": data.n_images,
                "image_size": side,
                "seed": data.seed,
                "name": "zoo synthetic 3D nuclei",
                "description": f"Synthetic fluorescence z-stacks, {data.n_images} of {side}x{side}x{side} "
                f"voxels from zoo.data.tasks_3d.make_nuclei_3d with seed {data.seed} "
                "(ellipsoid nuclei, anisotropic blur, Poisson-Gaussian noise), exact masks.",
                "tags": ["nuclei", "fluorescence-light-microscopy", "3d"],
            }
        splits = make_splits(list(volumes), list(masks), data, provenance, multiple_of=2**config.depth)
        splits.data_warnings = warnings
        return splits

    def loss(self, logits, target):
        return _bce_dice(logits, target)

    def task(self, config, splits) -> Task:
        return Task(
            kind="segmentation",
            spatial="zyx",
            input_description="raw fluorescence z-stack, any intensity range (normalised by the pre-processing)",
            output_description="probability that a voxel belongs to a nucleus",
        )

    def evaluate(self, predictions, splits):
        return {
            "test_iou": iou(
                np.concatenate([p.ravel() for p in predictions]), np.concatenate([m.ravel() for m in splits.test_masks])
            )
        }, {}
