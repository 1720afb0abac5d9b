"""What the training curves say about a run: a verdict with the numbers behind it.

The rules work on the per-epoch `history` of a checkpoint ({"epoch", "train_loss", "val_loss"}) and are
scale-free (relative changes), so they apply to any loss. Epochs with a non-finite loss are left out."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

GOOD_FIT = "good fit"
OVERFITTING = "overfitting"
UNDERFITTING = "underfitting"
UNREPRESENTATIVE_VALIDATION = "unrepresentative validation"
TOO_SHORT = "too short to tell"
VERDICTS = (GOOD_FIT, OVERFITTING, UNDERFITTING, UNREPRESENTATIVE_VALIDATION, TOO_SHORT)

MIN_EPOCHS = 3  # fewer epochs with finite losses: no verdict
END_WINDOW = 3  # the end of a curve is the median of its last epochs, so one noisy epoch decides nothing
OVERFIT_MIN_RISE = 0.10  # validation loss at the end ≥ 10 % above its minimum ...
OVERFIT_NOISE_MULTIPLE = 3.0  # ... and the rise ≥ 3 noise levels of the validation curve ...
OVERFIT_TRAIN_KEEPS_FALLING = 0.0  # ... while training loss fell (by more than this fraction) since that minimum
UNDERFIT_MIN_DROP = 0.10  # training loss fell by less than 10 % of its first value: the model barely learnt
UNDERFIT_END_RATE = 0.5  # training loss falls, over the last quarter, at ≥ half its average rate: still steep
UNDERFIT_MIN_EPOCHS_AT_END = 3  # the last quarter covers at least this many epochs
VAL_BELOW_TRAIN = 0.7  # validation loss below 70 % of training loss ...
VAL_BELOW_SHARE = 0.8  # ... in at least 80 % of the epochs: the validation set is easier than the training set
VAL_NOISE_RATIO = 3.0  # validation noise ≥ 3x the training noise ...
VAL_NOISE_MIN = 0.05  # ... and ≥ 5 % of the validation loss: too few or too unlike validation images
_MAD_TO_SIGMA = 1.65  # median |second difference| of white noise with std σ is ≈ 1.65 σ


@dataclass(frozen=True)
class Diagnosis:
    verdict: str  # one of VERDICTS
    explanation: str  # one or two sentences with the numbers that decided
    evidence: dict[str, float] = field(default_factory=dict)  # the measured quantities, for the rdf


def diagnose(history: list[dict]) -> Diagnosis:
    """The verdict on a run's loss curves: the first rule that applies among unrepresentative validation,
    overfitting and underfitting; a good fit when none does."""
    rows = [r for r in history if _finite(r.get("train_loss")) and _finite(r.get("val_loss"))]
    dropped = len(history) - len(rows)
    note = f" ({dropped} epoch(s) with a non-finite loss left out.)" if dropped else ""
    if len(rows) < MIN_EPOCHS:
        return Diagnosis(
            TOO_SHORT,
            f"{len(rows)} epoch(s) with finite losses; at least {MIN_EPOCHS} are needed to judge the curves.{note}",
            {"epochs": float(len(rows))},
        )
    epochs = [int(r.get("epoch", i + 1)) for i, r in enumerate(rows)]
    train = np.array([float(r["train_loss"]) for r in rows])
    val = np.array([float(r["val_loss"]) for r in rows])
    for rule in (_unrepresentative, _overfitting, _underfitting):
        found = rule(epochs, train, val)
        if found is not None:
            return Diagnosis(found.verdict, found.explanation + note, found.evidence)
    best = int(np.argmin(val))
    gap = _relative(val[-1] - train[-1], train[-1])
    return Diagnosis(
        GOOD_FIT,
        f"Both losses fell and levelled off: training loss {train[0]:.4g} → {train[-1]:.4g}, "
        f"validation loss lowest at epoch {epochs[best]} ({val[best]:.4g}), final "
        f"validation/training gap {gap:+.0%}.{note}",
        {"best_epoch": float(epochs[best]), "best_val_loss": float(val[best]), "final_gap": gap},
    )


def _unrepresentative(epochs: list[int], train: np.ndarray, val: np.ndarray) -> Diagnosis | None:
    if (train > 0).all() and (val > 0).all():
        ratio = val / train
        below = float(np.mean(ratio < VAL_BELOW_TRAIN))
        if below >= VAL_BELOW_SHARE:
            return Diagnosis(
                UNREPRESENTATIVE_VALIDATION,
                f"Validation loss stayed far below training loss (under {VAL_BELOW_TRAIN:.0%} of it in {below:.0%} "
                f"of the epochs, median ratio {np.median(ratio):.2f}): the validation images are easier than the "
                "training images or leak from them; its loss says little about new data.",
                {"share_val_below_train": below, "median_val_train_ratio": float(np.median(ratio))},
            )
    val_noise, train_noise = _relative_noise(val), _relative_noise(train)
    if val_noise >= VAL_NOISE_MIN and val_noise >= VAL_NOISE_RATIO * train_noise:
        return Diagnosis(
            UNREPRESENTATIVE_VALIDATION,
            f"Validation loss is much noisier than training loss (epoch-to-epoch noise {val_noise:.1%} of its level "
            f"vs {train_noise:.1%}): the validation set is too small or unlike the training set to rank epochs.",
            {"val_noise": val_noise, "train_noise": train_noise},
        )
    return None


def _overfitting(epochs: list[int], train: np.ndarray, val: np.ndarray) -> Diagnosis | None:
    best = int(np.argmin(val))
    val_end, train_end = _end(val), _end(train)
    rise = _relative(val_end - val[best], val[best])
    noise = _noise(val)
    train_drop = _relative(train[best] - train_end, train[best])
    if (
        rise >= OVERFIT_MIN_RISE
        and val_end - val[best] >= OVERFIT_NOISE_MULTIPLE * noise
        and train_drop > OVERFIT_TRAIN_KEEPS_FALLING
    ):
        return Diagnosis(
            OVERFITTING,
            f"Validation loss rose {rise:.0%} above its minimum ({val[best]:.4g} at epoch {epochs[best]} → "
            f"{val[-1]:.4g} at epoch {epochs[-1]}; {_end_text(val)}) while training loss kept falling "
            f"({train[best]:.4g} → {train[-1]:.4g}; {_end_text(train)}): the model memorises the training images; "
            f"the weights of epoch {epochs[best]} "
            "are the ones to use.",
            {
                "best_epoch": float(epochs[best]),
                "val_rise": rise,
                "train_drop_since_best": train_drop,
                "val_noise": float(noise),
            },
        )
    return None


def _underfitting(epochs: list[int], train: np.ndarray, val: np.ndarray) -> Diagnosis | None:
    drop = _relative(train[0] - _end(train), train[0])
    if drop < UNDERFIT_MIN_DROP:
        return Diagnosis(
            UNDERFITTING,
            f"Training loss barely fell ({train[0]:.4g} at epoch {epochs[0]} → {train[-1]:.4g} at epoch {epochs[-1]}; "
            f"{_end_text(train)}, {drop:.0%} below the start < {UNDERFIT_MIN_DROP:.0%}): the model did not learn the "
            "task; raise the learning rate, the model size or "
            "the number of epochs, or check the data.",
            {
                "train_drop": drop,
                "train_first": float(train[0]),
                "train_last": float(train[-1]),
                "train_end": _end(train),
            },
        )
    n = len(train)
    tail = max(UNDERFIT_MIN_EPOCHS_AT_END, n // 4)
    if tail < n:
        average_rate = (train[0] - train[-1]) / (n - 1)
        end_rate = -float(np.polyfit(np.arange(tail + 1), train[-tail - 1 :], 1)[0])
        if average_rate > 0 and end_rate >= UNDERFIT_END_RATE * average_rate:
            return Diagnosis(
                UNDERFITTING,
                f"Training loss was still falling steeply at the end ({end_rate:.3g} per epoch over the last "
                f"{tail} epochs, {end_rate / average_rate:.0%} of its average rate {average_rate:.3g}): more epochs "
                "would likely help.",
                {"end_rate": end_rate, "average_rate": float(average_rate), "train_drop": drop},
            )
    return None


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _end(values: np.ndarray) -> float:
    return float(np.median(values[-END_WINDOW:]))


def _end_text(values: np.ndarray) -> str:
    """The value the rules judge by, named as such (the plot shows every epoch, the last one included)."""
    return f"median of the last {min(END_WINDOW, len(values))} epochs {_end(values):.4g}"


def _relative(difference: float, reference: float) -> float:
    return float(difference / max(abs(reference), 1e-12))


def _noise(values: np.ndarray) -> float:
    """Standard deviation of the epoch-to-epoch jitter (second differences ignore linear trends)."""
    if len(values) < 3:
        return 0.0
    return float(np.median(np.abs(np.diff(values, 2))) / _MAD_TO_SIGMA)


def _relative_noise(values: np.ndarray) -> float:
    return _relative(_noise(values), float(np.median(np.abs(values))))
