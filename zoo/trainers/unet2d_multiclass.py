"""Trainer `unet2d-multiclass`: K-class pixel classification with a 2D U-Net (softmax output) in PyTorch."""

from __future__ import annotations

import numpy as np

from zoo.config import TrainConfig
from zoo.data.checks import MinSize
from zoo.trainers.datasets import SegmentationSplits, make_splits
from zoo.trainers.metrics import class_ious
from zoo.trainers.task import Task
from zoo.trainers.torch_trainer import TorchTrainer


def cross_entropy_dice(logits, labels):
    """Cross-entropy plus the soft Dice loss averaged over classes: Dice keeps small classes from vanishing."""
    import torch

    ce = torch.nn.functional.cross_entropy(logits, labels)
    probability = torch.softmax(logits, dim=1)
    one_hot = torch.nn.functional.one_hot(labels, logits.shape[1]).movedim(-1, 1).to(probability.dtype)
    dims = (0, *range(2, logits.ndim))
    intersection = (probability * one_hot).sum(dims)
    dice = 1 - (2 * intersection + 1) / (probability.sum(dims) + one_hot.sum(dims) + 1)
    return ce + dice.mean()


class UNet2dMulticlassTrainer(TorchTrainer):
    name = "unet2d-multiclass"
    description = "2D U-Net (PyTorch) for K-class pixel classification; cross-entropy + Dice loss, mean IoU metric"
    final_activation = "softmax"
    data_layout = "images/<name>.tif + masks/<name>.tif (integer class labels 0..K-1)"
    package = {
        "name": "zoo U-Net 2D multi-class segmentation",
        "description": "2D U-Net that classifies every pixel of a fluorescence image into one of several "
        "classes (softmax probabilities per class); trained and packaged with zoo.",
        "tags": [
            "unet",
            "2d",
            "semantic-segmentation",
            "pixel-classification",
            "nuclei",
            "fluorescence-light-microscopy",
            "zoo",
        ],
    }

    def load_splits(self, config: TrainConfig) -> SegmentationSplits:
        data = config.data
        if data.folder is not None:
            from zoo.data.folder import load_image_label_folder

            folder = load_image_label_folder(data.folder, min_size=MinSize.for_patches(config.patch_size, config.depth))
            images, labels, warnings = folder.images, folder.masks, list(folder.warnings)
            names = [f"class_{k}" for k in range(folder.n_classes)]
            provenance = {
                "source": "folder",
                "folder": str(data.folder),
                "n_files": folder.n_files,
                "sha256": folder.sha256,
                "files_kind": "image/label-mask TIFF pairs",
            }
        else:
            from zoo.data.tasks import make_multiclass

            warnings = []
            images, labels, names = make_multiclass(data.n_images, (data.image_size, data.image_size), data.seed)
            provenance = {
                "source": "synthetic",
                "generator": "zoo.data.tasks.make_multiclass",
                "n_images": data.n_images,
                "image_size": data.image_size,
                "seed": data.seed,
                "name": "zoo synthetic multi-class cells",
                "description": f"Synthetic fluorescence images, {data.n_images} of {data.image_size}x"
                f"{data.image_size} px from zoo.data.tasks.make_multiclass with seed "
                f"{data.seed}; exact label masks of the classes {', '.join(names)}.",
                "tags": ["nuclei", "fluorescence-light-microscopy", "2d", "semantic-segmentation"],
            }
        splits = make_splits(
            list(images),
            [np.asarray(m, dtype=np.int64) for m in labels],
            data,
            provenance,
            multiple_of=2**config.depth,
            target_kind="labels",
        )
        splits.class_names = list(names)
        splits.data_warnings = warnings
        return splits

    def architecture_kwargs(self, config, splits):
        return {**super().architecture_kwargs(config, splits), "out_channels": len(splits.class_names)}

    def target_array(self, target) -> np.ndarray:
        return np.asarray(target, dtype=np.int64)

    def loss(self, logits, target):
        return cross_entropy_dice(logits, target)

    def task(self, config, splits) -> Task:
        return Task(
            kind="multiclass",
            output_id="probabilities",
            output_channels=tuple(splits.class_names),
            output_range=(0.0, 1.0),
            output_description="probability of each class per pixel (softmax over channels); a pixel's "
            "class has the highest",
            extra={"class_names": list(splits.class_names)},
        )

    def evaluate(self, predictions, splits):
        predicted = np.concatenate([np.argmax(p, axis=0).ravel() for p in predictions])
        truth = np.concatenate([m.ravel() for m in splits.test_masks])
        ious = class_ious(predicted, truth, len(splits.class_names))
        metrics = {"test_mean_iou": float(np.nanmean(ious))}
        metrics.update({f"test_iou_{name}": value for name, value in zip(splits.class_names, ious)})
        return metrics, {}
