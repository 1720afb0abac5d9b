"""Checkpoints and export results as each trainer writes them, built by hand (no training)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from zoo.packaging.agreement import Agreement, CaseDifference
from zoo.packaging.export import ExportResult, Geometry
from zoo.packaging.exporters import ExportedWeights
from zoo.trainers.checkpoint import Checkpoint

TRAINER_KINDS = ("unet2d", "unet2d-keras", "unet2d-multiclass", "care2d", "n2v2d", "classifier2d", "unet3d")
CLASSES = {"unet2d-multiclass": ["background", "nucleus", "boundary"], "classifier2d": ["interphase", "mitotic"]}
CONFUSION = [[40, 2], [5, 13]]


def history(epochs: int = 12) -> list[dict[str, float]]:
    return [
        {"epoch": e, "train_loss": 0.2 + 0.8 * math.exp(-e / 3), "val_loss": 0.25 + 0.8 * math.exp(-e / 3)}
        for e in range(1, epochs + 1)
    ]


def metrics_for(trainer: str) -> dict[str, float]:
    common = {"best_val_loss": 0.2512, "best_epoch": 12.0}
    if trainer == "unet2d-multiclass":
        return {
            "test_mean_iou": 0.71,
            "test_iou_background": 0.95,
            "test_iou_nucleus": 0.8,
            "test_iou_boundary": 0.38,
            **common,
        }
    if trainer in ("care2d", "n2v2d"):
        return {"test_psnr": 31.2, "test_psnr_input": 22.5, "test_psnr_gain": 8.7, "test_ssim": 0.88, **common}
    if trainer == "classifier2d":
        return {"test_accuracy": 0.883, "test_accuracy_interphase": 0.952, "test_accuracy_mitotic": 0.722, **common}
    return {"test_iou": 0.842, **common}


def task_for(trainer: str) -> dict:
    if trainer == "unet2d-multiclass":
        return {
            "kind": "multiclass",
            "output_id": "probabilities",
            "output_channels": CLASSES[trainer],
            "extra": {"class_names": CLASSES[trainer]},
        }
    if trainer in ("care2d", "n2v2d"):
        return {"kind": "restoration", "output_id": "restored", "output_channels": ["restored"]}
    if trainer == "classifier2d":
        return {
            "kind": "classification",
            "output_id": "class_probabilities",
            "fixed_size": [64, 64],
            "output_channels": CLASSES[trainer],
            "extra": {"class_names": CLASSES[trainer], "confusion_matrix": CONFUSION},
        }
    if trainer == "unet3d":
        return {"kind": "segmentation", "spatial": "zyx"}
    return {}


def make_checkpoint(trainer: str = "unet2d", **overrides) -> Checkpoint:
    keras = trainer == "unet2d-keras"
    values = dict(
        trainer=trainer,
        architecture="unet2d",
        architecture_class="UNet2d",
        architecture_kwargs={"depth": 2},
        state_dict={},
        config={
            "trainer": trainer,
            "data": {"seed": 0},
            "epochs": 20,
            "batch_size": 4,
            "patch_size": 64,
            "lr": 0.002,
            "base_channels": 8,
            "depth": 2,
            "seed": 0,
            "device": "auto",
            "early_stopping_patience": 5,
            "out": "/home/someone/runs/x",
        },
        metrics=metrics_for(trainer),
        history=history(),
        data={
            "source": "synthetic",
            "generator": "zoo.data.synthetic.make_nuclei",
            "n_images": 240,
            "image_size": 128,
            "seed": 0,
            "split": {"train": 168, "validation": 36, "test": 36},
        },
        environment=({"tensorflow": "2.21.0", "keras": "3.10.0"} if keras else {"torch": "2.13.0"})
        | {"python": "3.11.9", "device": "cpu", "duration_s": "312.4"},
        sample={},
        framework="keras" if keras else "pytorch",
    )
    if "task" in {f.name for f in dataclasses.fields(Checkpoint)}:
        values["task"] = task_for(trainer)
    values.update(overrides)
    return Checkpoint(**values)


def make_exported(trainer: str = "unet2d", geometry: Geometry | None | str = "default") -> ExportResult:
    agreement = Agreement("torchscript", 1e-4, [CaseDifference("test", (1, 1, 64, 64), 3e-7, 1e-6, 0, (0, 0, 1, 2))])
    weights = [
        ExportedWeights("pytorch_state_dict", Path("weights.pt"), "pytorch", "2.13.0"),
        ExportedWeights(
            "torchscript",
            Path("weights.torchscript.pt"),
            "pytorch",
            "2.13.0",
            parent="pytorch_state_dict",
            agreement=agreement,
        ),
    ]
    if geometry == "default":
        geometry = Geometry(min_size=64, step=0, halo=0) if trainer == "classifier2d" else Geometry(80, 8, 36)
    layout = "bczyx" if trainer == "unet3d" else "bcyx"
    values = dict(weights=weights, failures={"onnx": "opset 17 not available"}, geometry=geometry, layout=layout)
    if "output_layout" in {f.name for f in dataclasses.fields(ExportResult)}:
        values["output_layout"] = "bc" if trainer == "classifier2d" else layout
    return ExportResult(**values)
