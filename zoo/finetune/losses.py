"""What fine-tuning optimises and how it is scored, chosen from the package's output: a sigmoid (in the model or in the
rdf's post-processing) → BCE + Dice and IoU, a softmax over K channels → cross-entropy and mean IoU, an unbounded
image → mean squared error and PSNR. The user may override the loss; the metric follows it. Losses work on logits
where the model can give them (the sigmoid of the rdf's post-processing, zoo's architectures, ONNX graphs ending in
one): on probabilities a confident mistake has no gradient left."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoo.bioimage.instances import INSTANCE_OPS
from zoo.errors import InputError
from zoo.trainers.metrics import class_ious, iou, psnr, ssim

LOSSES = ("bce-dice", "cross-entropy", "mse")
METRICS = {"bce-dice": "IoU", "cross-entropy": "mean IoU", "mse": "PSNR"}  # higher is better, each
PROBABILITY_TOLERANCE = 1e-3
EPSILON = 1e-6


@dataclass(frozen=True)
class Objective:
    loss: str  # one of LOSSES
    why: str
    logits: bool  # the output while training is logits (the model's activation left out, or the rdf applies it)
    leave_out_activation: bool  # the model's own final activation is left out while training
    shipped_activation: str | None  # the activation the rdf's post-processing applies to the model's output
    channel_axis: int  # of the output, batch axis included
    channels: int

    @property
    def metric(self) -> str:
        return METRICS[self.loss]

    def loss_fn(self, output, target):
        """The loss of a training output (logits when `logits`) against a target (a mask or image with the output's
        shape, or class labels without the channel axis)."""
        import torch
        import torch.nn.functional as F

        if self.loss == "mse":
            return F.mse_loss(output, target)
        if self.loss == "cross-entropy":
            output = torch.movedim(output, self.channel_axis, 1)
            if self.logits:
                return F.cross_entropy(output, target)
            return F.nll_loss(torch.log(output.clamp(EPSILON, 1.0)), target)
        if self.logits:
            bce = F.binary_cross_entropy_with_logits(output, target)
            probability = torch.sigmoid(output)
        else:
            probability = output.clamp(EPSILON, 1.0 - EPSILON)
            bce = F.binary_cross_entropy(probability, target)
        intersection = (probability * target).sum()
        return bce + 1 - (2 * intersection + 1) / (probability.sum() + target.sum() + 1)

    def score(self, outputs: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
        """The metric(s) of the model as shipped (one output per image, batch axis included) against the targets."""
        if self.loss == "mse":
            values = [
                (psnr(o.squeeze(), t.squeeze()), ssim(o.squeeze(), t.squeeze())) for o, t in zip(outputs, targets)
            ]
            return {"PSNR": float(np.mean([v[0] for v in values])), "SSIM": float(np.mean([v[1] for v in values]))}
        probabilities = [self.probabilities(o) for o in outputs]
        if self.loss == "cross-entropy":
            predicted = np.concatenate([p.argmax(axis=self.channel_axis).ravel() for p in probabilities])
            labels = np.concatenate([t.ravel() for t in targets])
            ious = class_ious(predicted, labels, self.channels)
            return {"mean IoU": float(np.nanmean(ious)), **{f"IoU class {k}": v for k, v in enumerate(ious)}}
        return {
            "IoU": iou(np.concatenate([p.ravel() for p in probabilities]), np.concatenate([t.ravel() for t in targets]))
        }

    def probabilities(self, shipped: np.ndarray) -> np.ndarray:
        """The model's output as shipped, as probabilities (the rdf's sigmoid applied where it is post-processing)."""
        if self.shipped_activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-shipped))
        if self.shipped_activation == "softmax":
            shifted = np.exp(shipped - shipped.max(axis=self.channel_axis, keepdims=True))
            return shifted / shifted.sum(axis=self.channel_axis, keepdims=True)
        return shipped


def choose_objective(
    requested: str,
    output: np.ndarray,
    output_layout: str,
    postprocessing: list[str],
    model_activation: str | None,
) -> Objective:
    """The loss for a model whose shipped output on the test input is `output` (in `output_layout`), whose rdf
    post-processes with `postprocessing` (operator ids) and whose own final activation can be left out
    (`model_activation`); `requested` ("auto" or one of LOSSES) overrides the choice."""
    instance_op = next((p for p in postprocessing if p in INSTANCE_OPS), None)
    if instance_op is not None:
        raise InputError(
            f"the package's output is instance labels made by {instance_op}: zoo finetune trains models whose output "
            "is the image it is scored on (probabilities, classes, a restored image), not the network behind a label "
            "post-processing; train one on your labelled images with `zoo train --trainer stardist2d --data FOLDER`"
        )
    if "c" not in output_layout or not {"y", "x"} <= set(output_layout):
        raise InputError(
            f"the output has axes {output_layout}: zoo finetune trains models whose output is an image (channel, y, x)"
        )
    axis = output_layout.index("c")
    channels = int(output.shape[axis])
    post = next((p for p in postprocessing if p in ("sigmoid", "softmax")), None)
    in_unit = bool(np.isfinite(output).all() and output.min() >= -PROBABILITY_TOLERANCE)
    in_unit = in_unit and output.max() <= 1 + PROBABILITY_TOLERANCE
    sums_to_one = channels > 1 and bool(np.allclose(output.sum(axis=axis), 1.0, atol=PROBABILITY_TOLERANCE))
    if post is not None:
        activation, why = post, f"the package's post-processing applies a {post}"
    elif model_activation is not None:
        activation, why = model_activation, f"the model ends in a {model_activation}"
    elif in_unit and sums_to_one:
        activation, why = "softmax", f"its {channels} output channels are probabilities that sum to 1"
    elif in_unit:
        activation, why = "sigmoid", "its output lies in [0, 1]"
    else:
        activation = None
        why = f"its output is unbounded ({float(np.nanmin(output)):.3g} to {float(np.nanmax(output)):.3g}): restoration"
    automatic = {"sigmoid": "bce-dice", "softmax": "cross-entropy", None: "mse"}[activation]
    if requested == "auto":
        loss = automatic
        why = f"{loss}: {why}"
    elif requested in LOSSES:
        loss = requested
        why = f"{loss}: asked for (from the output, {why}, it would be {automatic})"
    else:
        raise InputError(f"--loss {requested}: choose auto, {', '.join(LOSSES)}")
    if loss == "bce-dice" and channels != 1:
        raise InputError(
            f"--loss bce-dice trains one foreground channel, the output has {channels}: use cross-entropy for "
            f"{channels} classes"
        )
    if loss == "cross-entropy" and channels < 2:
        raise InputError("--loss cross-entropy needs one output channel per class, the output has 1: use bce-dice")
    if loss == "mse" and channels != 1:
        raise InputError(f"--loss mse trains one image channel, the output has {channels}")
    leave_out = post is None and model_activation is not None and loss != "mse"
    return Objective(
        loss=loss,
        why=why,
        logits=loss != "mse" and (post is not None or leave_out),
        leave_out_activation=leave_out,
        shipped_activation=post if loss != "mse" else None,
        channel_axis=axis,
        channels=channels,
    )


__all__ = ["LOSSES", "METRICS", "Objective", "choose_objective"]
