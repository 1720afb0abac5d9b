"""Trainer `classifier2d`: image classification (e.g. cell phenotypes) with a small CNN in PyTorch."""

from __future__ import annotations

import numpy as np

from zoo.config import TrainConfig
from zoo.data.checks import MinSize
from zoo.errors import DataError
from zoo.trainers.datasets import SegmentationSplits, make_splits
from zoo.trainers.metrics import confusion_matrix
from zoo.trainers.task import Task
from zoo.trainers.torch_trainer import TorchTrainer


class Classifier2dTrainer(TorchTrainer):
    name = "classifier2d"
    description = "2D CNN (PyTorch) that classifies whole images (cell phenotypes); cross-entropy, accuracy metric"
    architecture = "classifier2d"
    architecture_class = "Classifier2d"
    final_activation = "softmax"
    data_layout = "<class name>/*.tif: one sub-folder per class, all images the same size"
    defaults = {"epochs": 30, "batch_size": 16, "lr": 2e-3, "data": {"n_images": 480, "image_size": 64}}
    package = {
        "name": "zoo CNN 2D cell phenotype classifier",
        "description": "2D convolutional network that classifies an image of one cell into phenotype classes "
        "(softmax probabilities); trained and packaged with zoo.",
        "tags": ["cnn", "2d", "classification", "cell-phenotype", "fluorescence-light-microscopy", "zoo"],
    }

    def load_splits(self, config: TrainConfig) -> SegmentationSplits:
        data = config.data
        if data.folder is not None:
            from zoo.data.folder import load_class_folder

            folder = load_class_folder(data.folder, min_size=MinSize.for_whole_images(config.depth))
            images, labels, names = folder.images, folder.labels, folder.class_names
            warnings = list(folder.warnings)
            provenance = {
                "source": "folder",
                "folder": str(data.folder),
                "n_files": folder.n_files,
                "sha256": folder.sha256,
                "files_kind": f"TIFF images in {len(names)} class folders",
            }
        else:
            from zoo.data.tasks import make_classification

            warnings = []
            images, labels, names = make_classification(data.n_images, data.image_size, data.seed)
            provenance = {
                "source": "synthetic",
                "generator": "zoo.data.tasks.make_classification",
                "n_images": data.n_images,
                "image_size": data.image_size,
                "seed": data.seed,
                "name": "zoo synthetic cell phenotypes",
                "description": f"Synthetic single-cell fluorescence images, {data.n_images} of "
                f"{data.image_size}x{data.image_size} px from "
                f"zoo.data.tasks.make_classification with seed {data.seed}, balanced "
                f"classes {', '.join(names)}.",
                "tags": ["cells", "fluorescence-light-microscopy", "2d", "classification"],
            }
        images = [np.asarray(i, dtype=np.float32) for i in images]
        step = 2**config.depth
        if images[0].shape[0] % step or images[0].shape[1] % step:
            raise DataError(
                f"images are {images[0].shape[0]}x{images[0].shape[1]} px, expected a multiple of {step}"
                f" (2**depth, depth {config.depth}) along y and x: crop or pad them"
            )
        splits = make_splits(images, [int(label) for label in labels], data, provenance, target_kind="class")
        splits.class_names = list(names)
        splits.data_warnings = warnings
        return splits

    def architecture_kwargs(self, config, splits):
        return dict(
            in_channels=1,
            n_classes=len(splits.class_names),
            base_channels=config.base_channels,
            depth=config.depth,
            final_activation=self.final_activation,
        )

    def batch(self, splits, rng, config):
        from zoo.trainers.torch_trainer import augment

        xs, ys = [], []
        for _ in range(config.batch_size):
            i = int(rng.integers(len(splits.train_images)))
            x, _ = augment(rng, splits.train_images[i], None, None)
            xs.append(x[None])
            ys.append(splits.train_masks[i])
        return np.stack(xs), np.asarray(ys, dtype=np.int64)

    def loss(self, logits, target):
        import torch

        return torch.nn.functional.cross_entropy(logits, target)

    def validation_loss(self, model, splits, device) -> float:
        import torch

        x = torch.from_numpy(np.stack(splits.val_images)[:, None]).to(device)
        y = torch.from_numpy(np.asarray(splits.val_masks, dtype=np.int64)).to(device)
        return float(self.loss(model(x), y))

    def task(self, config, splits) -> Task:
        size = tuple(int(s) for s in splits.test_raw[0].shape)
        return Task(
            kind="classification",
            output_id="class_probabilities",
            output_channels=tuple(splits.class_names),
            output_range=(0.0, 1.0),
            fixed_size=size,
            input_description=f"fluorescence image of one cell, {size[0]}x{size[1]} px, any intensity range",
            output_description="probability of each class for the whole image (softmax); the predicted "
            "class has the highest",
            extra={"class_names": list(splits.class_names)},
        )

    def evaluate(self, predictions, splits):
        predicted = np.array([int(np.argmax(p)) for p in predictions])
        truth = np.asarray(splits.test_masks, dtype=np.int64)
        matrix = confusion_matrix(predicted, truth, len(splits.class_names))
        metrics = {"test_accuracy": float((predicted == truth).mean())}
        for k, name in enumerate(splits.class_names):
            total = matrix[k].sum()
            metrics[f"test_accuracy_{name}"] = float(matrix[k, k] / total) if total else float("nan")
        return metrics, {"confusion_matrix": matrix.tolist(), "class_names": list(splits.class_names)}
