"""What every PyTorch trainer of the zoo shares: augmentation, the run from data to checkpoint, and the
record a model card is filled from. A trainer says only what differs: its data, network, loss, metrics and task."""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from zoo.bioimage.devices import resolve_device
from zoo.config import TrainConfig
from zoo.progress import Progress
from zoo.trainers.base import TrainResult
from zoo.trainers.checkpoint import Checkpoint, save_checkpoint
from zoo.trainers.datasets import SegmentationSplits
from zoo.trainers.loop import fit
from zoo.trainers.task import Task

INTENSITY_GAIN = (0.8, 1.2)
INTENSITY_OFFSET = (-0.2, 0.2)


def augment(
    rng: np.random.Generator,
    image: np.ndarray,
    target: np.ndarray | None,
    patch: int | None,
    target_is_image: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A random crop of side `patch` (every spatial axis; None keeps the size), a random 90° rotation and
    flips in the y-x plane (and a z flip for volumes), and intensity jitter. A dense `target` (mask, labels,
    clean image) gets the same geometry; a restoration target (`target_is_image`) the same intensity jitter."""
    if patch is not None:
        window = []
        for size in image.shape:
            side = min(patch, size)
            start = int(rng.integers(size - side + 1))
            window.append(slice(start, start + side))
        image = image[tuple(window)]
        if target is not None and np.ndim(target) == image.ndim:
            target = target[tuple(window)]
    dense = target is not None and np.ndim(target) == image.ndim
    k = int(rng.integers(4))
    image = np.rot90(image, k, axes=(-2, -1))
    target = np.rot90(target, k, axes=(-2, -1)) if dense else target
    for axis in range(image.ndim):
        if axis != image.ndim - 2 and rng.random() < 0.5:  # x, and z for volumes; y is covered by the rotations
            image = np.flip(image, axis)
            target = np.flip(target, axis) if dense else target
    gain, offset = rng.uniform(*INTENSITY_GAIN), rng.uniform(*INTENSITY_OFFSET)
    image = image * gain + offset
    if target_is_image:
        target = target * gain + offset
    return np.ascontiguousarray(image, dtype=np.float32), (np.ascontiguousarray(target) if dense else target)


class TorchTrainer:
    """Base of the PyTorch trainers. Subclasses set the class attributes and implement `load_splits`, `task`,
    `loss`, `evaluate`; the defaults suit dense tasks trained on crops."""

    name: ClassVar[str]
    description: ClassVar[str]
    framework: ClassVar[str] = "pytorch"
    architecture: ClassVar[str] = "unet2d"
    architecture_class: ClassVar[str] = "UNet2d"
    final_activation: ClassVar[str] = "sigmoid"  # what the exported model applies; training runs on logits
    target_is_image: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}  # TrainConfig values this trainer needs ("data": DataConfig values)
    quick_defaults: ClassVar[dict[str, Any]] = {}
    package: ClassVar[dict[str, Any]] = {}  # PackageConfig defaults: name, description, tags
    data_layout: ClassVar[str] = "images/<name>.tif + masks/<name>.tif (0 background, >0 foreground)"

    # --- what a trainer says ----------------------------------------------------------------------
    def load_splits(self, config: TrainConfig) -> SegmentationSplits:
        raise NotImplementedError

    def task(self, config: TrainConfig, splits: SegmentationSplits) -> Task:
        raise NotImplementedError

    def loss(self, logits, target):
        raise NotImplementedError

    def evaluate(self, predictions: list[np.ndarray], splits: SegmentationSplits) -> tuple[dict[str, float], dict]:
        """Metrics on the test split from the packaged model's outputs (one per test image, batch axis
        removed), and extra task facts (e.g. a confusion matrix)."""
        raise NotImplementedError

    def architecture_kwargs(self, config: TrainConfig, splits: SegmentationSplits) -> dict[str, Any]:
        return dict(
            in_channels=1,
            out_channels=1,
            base_channels=config.base_channels,
            depth=config.depth,
            final_activation=self.final_activation,
        )

    def batch(self, splits: SegmentationSplits, rng: np.random.Generator, config: TrainConfig):
        xs, ys = [], []
        for _ in range(config.batch_size):
            i = int(rng.integers(len(splits.train_images)))
            x, y = augment(rng, splits.train_images[i], splits.train_masks[i], config.patch_size, self.target_is_image)
            xs.append(x[None])
            ys.append(self.target_array(y))
        return np.stack(xs), np.stack(ys)

    def target_array(self, target) -> np.ndarray:
        """One training target as the loss takes it (default: a float mask with a channel axis)."""
        return np.asarray(target, dtype=np.float32)[None]

    def validation_loss(self, model, splits: SegmentationSplits, device: str) -> float:
        import torch

        losses = []
        for x, y in zip(splits.val_images, splits.val_masks):
            target = torch.from_numpy(self.target_array(y)[None]).to(device)
            losses.append(float(self.loss(model(torch.from_numpy(x[None, None]).to(device)), target)))
        return float(np.mean(losses))

    # --- the run ----------------------------------------------------------------------------------
    def train(self, config: TrainConfig, progress: Progress) -> TrainResult:
        import torch

        from zoo.trainers.architectures import load_architecture

        started = time.perf_counter()
        device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        splits = self.load_splits(config)
        kwargs = self.architecture_kwargs(config, splits)
        model = load_architecture(self.architecture, self.architecture_class)(**kwargs).to(device)
        model.final_activation = "none"  # train on logits: stable losses; the exported model has the activation
        steps = max(1, math.ceil(len(splits.train_images) / config.batch_size))
        result = fit(
            model,
            config=config,
            device=device,
            rng=rng,
            steps_per_epoch=steps,
            train_step_batch=lambda: self.batch(splits, rng, config),
            loss_fn=self.loss,
            validation_loss=lambda m: self.validation_loss(m, splits, device),
            progress=progress,
            label=f"training {self.name}",
        )
        model.final_activation = self.final_activation
        model.eval()
        with torch.no_grad():
            predictions = [
                model(torch.from_numpy(x[None, None]).to(device)).cpu().numpy()[0] for x in splits.test_images
            ]
        metrics, task_extra = self.evaluate(predictions, splits)
        metrics = {**metrics, "best_val_loss": result.best_val_loss, "best_epoch": float(result.best_epoch)}
        duration = time.perf_counter() - started
        task = self.task(config, splits)
        checkpoint = Checkpoint(
            trainer=self.name,
            architecture=self.architecture,
            architecture_class=self.architecture_class,
            architecture_kwargs=kwargs,
            state_dict={k: v.cpu() for k, v in model.state_dict().items()},
            config=config.model_dump(mode="json"),
            metrics=metrics,
            history=result.history,
            data=splits.provenance,
            environment={
                "torch": str(torch.__version__),
                "python": platform.python_version(),
                "device": device,
                "duration_s": f"{duration:.1f}",
                "stopped_early": str(result.stopped_early).lower(),
                **({"resumed_after_epoch": str(result.resumed_from)} if result.resumed_from else {}),
            },
            sample={"image": torch.from_numpy(np.ascontiguousarray(splits.test_raw[0]))},
            task={**task.to_dict(), "extra": {**task.extra, **task_extra}},
        )
        path = save_checkpoint(checkpoint, Path(config.out) / "checkpoint.pt")
        return TrainResult(
            path,
            metrics,
            result.history,
            len(result.history),
            duration,
            device,
            extra={"data_warnings": list(splits.data_warnings)},
        )
