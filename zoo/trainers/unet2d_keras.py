"""Trainer `unet2d-keras`: the unet2d task (same data, augmentation, loss and metric) in Keras on TensorFlow."""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from pathlib import Path

import numpy as np

from zoo.bioimage.devices import resolve_device
from zoo.bioimage.files import atomic_path
from zoo.config import TrainConfig
from zoo.data.checks import MinSize
from zoo.errors import InputError
from zoo.progress import Progress
from zoo.trainers.base import TrainResult
from zoo.trainers.checkpoint import Checkpoint, save_checkpoint
from zoo.trainers.datasets import load_segmentation_splits
from zoo.trainers.unet2d import Augmenter, iou

logger = logging.getLogger(__name__)

KERAS_STATE_NAME = "train_state.npz"


def _bce_dice(y_true, y_pred):
    import keras

    bce = keras.losses.binary_crossentropy(y_true, y_pred)
    intersection = keras.ops.sum(y_true * y_pred)
    dice = 1 - (2 * intersection + 1) / (keras.ops.sum(y_true) + keras.ops.sum(y_pred) + 1)
    return keras.ops.mean(bce) + dice


class UNet2dKerasTrainer:
    name = "unet2d-keras"
    framework = "keras"
    data_layout = "images/<name>.tif + masks/<name>.tif (0 background, >0 foreground)"
    description = "2D U-Net (Keras/TensorFlow) for binary segmentation of nuclei; BCE + Dice loss, IoU metric"

    def train(self, config: TrainConfig, progress: Progress) -> TrainResult:
        import keras
        import tensorflow as tf

        from zoo.trainers.architectures.unet2d_keras import build_unet2d_keras

        started = time.perf_counter()
        device = resolve_device(config.device, "tensorflow")
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
        rng = np.random.default_rng(config.seed)
        splits = load_segmentation_splits(
            config.data, multiple_of=2**config.depth, min_size=MinSize.for_patches(config.patch_size, config.depth)
        )
        kwargs = dict(
            in_channels=1,
            out_channels=1,
            base_channels=config.base_channels,
            depth=config.depth,
            final_activation="sigmoid",
        )
        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            model = build_unet2d_keras(**kwargs)
            model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.lr), loss=_bce_dice)
            history, best_epoch, best_weights = self._fit(model, config, splits, rng, progress)
            model.set_weights(best_weights)
            predictions = [
                model(image[None, :, :, None], training=False).numpy()[0, :, :, 0] for image in splits.test_images
            ]
        metrics = {
            "test_iou": iou(
                np.concatenate([p.ravel() for p in predictions]), np.concatenate([m.ravel() for m in splits.test_masks])
            ),
            "best_val_loss": min(h["val_loss"] for h in history),
            "best_epoch": float(best_epoch),
        }
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        model_file = "checkpoint.keras"
        model.save(out / model_file)
        duration = time.perf_counter() - started
        checkpoint = Checkpoint(
            trainer=self.name,
            architecture="unet2d_keras",
            architecture_class="build_unet2d_keras",
            architecture_kwargs=kwargs,
            state_dict={},
            config=config.model_dump(mode="json"),
            metrics=metrics,
            history=history,
            data=splits.provenance,
            environment={
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "python": platform.python_version(),
                "device": device,
                "duration_s": f"{duration:.1f}",
            },
            sample=_sample(splits),
            framework="keras",
            model_file=model_file,
        )
        path = save_checkpoint(checkpoint, out / "checkpoint.pt")
        return TrainResult(
            path, metrics, history, len(history), duration, device, extra={"data_warnings": list(splits.data_warnings)}
        )

    def _fit(self, model, config: TrainConfig, splits, rng, progress: Progress):
        augmenter = Augmenter(rng, config.patch_size)
        steps = max(1, math.ceil(len(splits.train_images) / config.batch_size))
        val_x = [image[None, :, :, None] for image in splits.val_images]
        val_y = [mask[None, :, :, None].astype(np.float32) for mask in splits.val_masks]
        Path(config.out).mkdir(parents=True, exist_ok=True)  # the state is written after the first epoch
        state_path = Path(config.out) / KERAS_STATE_NAME
        history: list[dict[str, float]] = []
        best = (math.inf, 0, model.get_weights())
        start, stopped = 1, False
        if config.resume and state_path.is_file():
            history, best, start, stopped = _load_keras_state(state_path, model, rng, config)
        progress.start("training unet2d-keras", max(0, config.epochs - start + 1) * steps)
        for epoch in range(start, config.epochs + 1):
            if stopped:
                break
            model.optimizer.learning_rate = config.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config.epochs))
            losses = []
            for _ in range(steps):
                x, y = augmenter.batch(splits.train_images, splits.train_masks, config.batch_size)
                loss = model.train_on_batch(x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1))
                losses.append(float(np.asarray(loss).ravel()[0]))
                progress.advance(1, epoch=epoch, loss=round(losses[-1], 4))
            val_loss = float(np.mean([float(_bce_dice(y, model(x, training=False))) for x, y in zip(val_x, val_y)]))
            history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss})
            logger.info("epoch %d: train loss %.4f, validation loss %.4f", epoch, history[-1]["train_loss"], val_loss)
            if val_loss < best[0]:
                best = (val_loss, epoch, model.get_weights())
            elif epoch - best[1] >= config.early_stopping_patience:
                logger.info("early stop at epoch %d: no better validation loss since epoch %d", epoch, best[1])
                stopped = True
            _save_keras_state(state_path, model, rng, config, epoch, history, best, stopped)
        progress.finish()
        return history, best[1], best[2]


def _save_keras_state(path: Path, model, rng, config: TrainConfig, epoch: int, history, best, stopped: bool) -> None:
    """One .npz per epoch (weights, optimizer variables, best weights, run facts), replaced atomically."""
    meta = {
        "config": config.model_dump(mode="json"),
        "epoch": epoch,
        "history": history,
        "best_loss": best[0],
        "best_epoch": best[1],
        "stopped": stopped,
        "rng": rng.bit_generator.state,
    }
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"o{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
    arrays.update({f"b{i}": w for i, w in enumerate(best[2])})
    with atomic_path(path, suffix=".npz") as tmp:  # np.savez appends .npz to any other name
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)


def _load_keras_state(path: Path, model, rng, config: TrainConfig):
    from zoo.trainers.loop import changed_settings

    with np.load(path, allow_pickle=False) as stored:
        meta = json.loads(str(stored["meta"]))
        changed = changed_settings(meta["config"], config.model_dump(mode="json"))
        if changed:
            raise InputError(
                f"cannot resume from {path}: the run was started with other settings "
                f"({', '.join(changed)}); use the same settings or another --out folder"
            )
        count = sum(1 for k in stored.files if k.startswith("w"))
        model.set_weights([stored[f"w{i}"] for i in range(count)])
        model.optimizer.build(model.trainable_variables)
        for i, variable in enumerate(model.optimizer.variables):
            variable.assign(stored[f"o{i}"])
        best_weights = [stored[f"b{i}"] for i in range(count)]
    rng.bit_generator.state = meta["rng"]
    logger.info("resuming unet2d-keras after epoch %d of %d", meta["epoch"], config.epochs)
    best = (float(meta["best_loss"]), int(meta["best_epoch"]), best_weights)
    return list(meta["history"]), best, int(meta["epoch"]) + 1, bool(meta["stopped"])


def _sample(splits) -> dict:
    import torch

    return {
        "image": torch.from_numpy(splits.test_raw[0].copy()),
        "mask": torch.from_numpy(splits.test_masks[0].astype(np.uint8)),
    }
