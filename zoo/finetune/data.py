"""The user's folder for fine-tuning, in the layout `zoo train --data` reads for the task the loss implies (images/
with masks/ for BCE + Dice, masks/ of class labels 0..K-1 for cross-entropy, images/ with targets/ for MSE), checked by
zoo.data before any training, split into train/validation/test as every zoo trainer splits (seeded), pre-processed
by the package's own pre-processing, and cut into windows of sizes the package's rdf accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bioimage.tensors import TensorSpec, ValidSizes
from zoo.config import DataConfig
from zoo.data.checks import MinSize
from zoo.errors import DataError, InputError
from zoo.finetune.losses import Objective
from zoo.finetune.processing import PackageProcessing, to_layout
from zoo.trainers.datasets import split_indices


@dataclass(frozen=True)
class Sizes:
    """The spatial sizes the package's input takes (zoo.bioimage.tensors.ValidSizes per axis letter) and its batch."""

    spatial: str  # "yx" or "zyx", in the input's order
    valid: dict[str, ValidSizes]
    batch: int | None  # a batch fixed by the rdf (1), or None when free

    @classmethod
    def of(cls, spec: TensorSpec, layout: str) -> Sizes:
        valid = {}
        for axis, letter in zip(spec.axes, layout):
            if letter in "zyx":
                if axis.sizes is None:
                    raise InputError(f"input {spec.id} axis {axis.id} has no size zoo can read: run `zoo validate`")
                valid[letter] = axis.sizes
        batch = spec.of_kind("batch")
        fixed = batch[0].sizes.min if batch and batch[0].sizes is not None and batch[0].sizes.step == 0 else None
        return cls("".join(a for a in layout if a in "zyx"), valid, fixed)

    @property
    def minimum(self) -> dict[str, int]:
        return {letter: sizes.min for letter, sizes in self.valid.items()}

    @property
    def step(self) -> dict[str, int]:
        return {letter: sizes.step for letter, sizes in self.valid.items()}

    def side(self, wanted: int, smallest_image: int) -> int:
        """The side of the square training crops: the largest size every spatial axis accepts, ≤ both limits (the
        rdf's minimum when it fixes the size)."""
        limit = max(min(wanted, smallest_image), max(self.minimum.values()))
        for side in range(limit, 0, -1):
            if all(sizes.is_valid(side) for sizes in self.valid.values()):
                return side
        raise InputError(f"the package's input takes no square size up to {limit} px: zoo finetune trains on squares")


@dataclass
class Window:
    """One evaluation input (the package's input layout, batch of one) with its target."""

    image: np.ndarray
    target: np.ndarray


@dataclass
class FinetuneData:
    train_images: list[np.ndarray]  # pre-processed, spatial (natural z, y, x order)
    train_targets: list[np.ndarray]  # spatial masks, labels or pre-processed target images
    validation: list[Window]
    test: list[Window]
    provenance: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def load_finetune_data(
    folder: Path,
    objective: Objective,
    processing: PackageProcessing,
    sizes: Sizes,
    output_layout: str,
    config: DataConfig,
) -> FinetuneData:
    """Read, check, split and pre-process the folder (DataError lines name the file and the fix)."""
    from zoo.data import folder as loaders

    ndim, layout = len(sizes.spatial), processing.layout
    smallest = max(sizes.minimum.values())
    reason = f"the package takes inputs of at least {smallest} px (its rdf)"
    min_size = MinSize(smallest, reason)
    if objective.loss == "bce-dice":
        data = loaders.load_image_mask_folder(folder, ndim=ndim, min_size=min_size)
    elif objective.loss == "cross-entropy":
        data = loaders.load_image_label_folder(folder, n_classes=objective.channels, ndim=ndim, min_size=min_size)
    else:
        data = loaders.load_image_target_folder(folder, ndim=ndim, min_size=min_size)
    train, validation, test = split_indices(len(data.images), config)
    images = [processing.preprocess(image) for image in data.images]
    if objective.loss == "mse":  # the clean target in its noisy input's units, as the model sees that input
        targets = [processing.preprocess(t, like=raw) for t, raw in zip(data.masks, data.images)]
    else:
        targets = list(data.masks)
    provenance = {
        "source": "folder",
        "folder_name": Path(folder).name,
        "n_files": data.n_files,
        "sha256": data.sha256,
        "split": {"train": len(train), "validation": len(validation), "test": len(test)},
        "seed": config.seed,
    }
    return FinetuneData(
        train_images=[images[i] for i in train],
        train_targets=[targets[i] for i in train],
        validation=windows(
            [images[i] for i in validation], [targets[i] for i in validation], sizes, objective, layout, output_layout
        ),
        test=windows([images[i] for i in test], [targets[i] for i in test], sizes, objective, layout, output_layout),
        provenance=provenance,
        warnings=list(data.warnings),
    )


def windows(
    images: list[np.ndarray],
    targets: list[np.ndarray],
    sizes: Sizes,
    objective: Objective,
    input_layout: str,
    output_layout: str,
) -> list[Window]:
    """Each image at sizes the rdf accepts: the centre at the largest valid size, or for a fixed size the image cut
    into as many whole windows of it as fit."""
    natural = [a for a in "zyx" if a in sizes.spatial]
    found = []
    for image, target in zip(images, targets):
        grids = []
        for letter, length in zip(natural, image.shape):
            side = sizes.valid[letter].at_most(length)
            if side is None:
                raise DataError(f"an image of {image.shape} px is smaller than the package's input takes")
            if sizes.step[letter] == 0:
                grids.append([slice(k * side, (k + 1) * side) for k in range(length // side)])
            else:
                start = (length - side) // 2
                grids.append([slice(start, start + side)])
        for box in np.ndindex(*[len(g) for g in grids]):
            index = tuple(g[k] for g, k in zip(grids, box))
            found.append(
                Window(
                    to_layout(image[index], input_layout),
                    target_tensor(target[index], objective, output_layout),
                )
            )
    return found


def target_tensor(target: np.ndarray, objective: Objective, output_layout: str) -> np.ndarray:
    """A spatial target as the loss takes it for one image (batch of one): a float mask or image in the output's
    layout, or int64 class labels in that layout without its channel axis."""
    if objective.loss == "cross-entropy":
        layout = output_layout.replace("c", "")
        return to_layout(np.asarray(target, dtype=np.int64), layout)
    return to_layout(np.asarray(target, dtype=np.float32), output_layout)


def training_batch(
    data: FinetuneData,
    rng: np.random.Generator,
    batch_size: int,
    side: int,
    objective: Objective,
    input_layout: str,
    output_layout: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Random augmented crops (zoo's augmentation: crop, 90° rotations, flips, intensity jitter) stacked along the
    batch axes of the input and target layouts."""
    from zoo.trainers.torch_trainer import augment

    xs, ys = [], []
    target_is_image = objective.loss == "mse"
    for _ in range(batch_size):
        i = int(rng.integers(len(data.train_images)))
        x, y = augment(rng, data.train_images[i], data.train_targets[i], side, target_is_image)
        xs.append(to_layout(x, input_layout))
        ys.append(target_tensor(y, objective, output_layout))
    batch_in, batch_out = input_layout.index("b"), output_layout.replace("c", "").index("b")
    if objective.loss != "cross-entropy":
        batch_out = output_layout.index("b")
    return np.concatenate(xs, axis=batch_in), np.concatenate(ys, axis=batch_out)


__all__ = ["FinetuneData", "Sizes", "Window", "load_finetune_data", "training_batch", "windows"]
