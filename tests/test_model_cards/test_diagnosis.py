import math

import numpy as np
import pytest

from zoo.model_cards.diagnosis import (
    GOOD_FIT,
    OVERFITTING,
    TOO_SHORT,
    UNDERFITTING,
    UNREPRESENTATIVE_VALIDATION,
    diagnose,
)

EPOCHS = np.arange(40)


def curves(train, val) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": float(t), "val_loss": float(v)} for i, (t, v) in enumerate(zip(train, val))]


def noise(scale: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, len(EPOCHS))


def decay(floor: float, tau: float = 5.0) -> np.ndarray:
    return floor + 0.8 * np.exp(-EPOCHS / tau)


def test_converged_curves_are_a_good_fit():
    found = diagnose(curves(decay(0.2) + noise(0.005), decay(0.25) + noise(0.005, 1)))
    assert found.verdict == GOOD_FIT
    assert found.evidence["best_epoch"] > 20


def test_validation_rising_while_training_falls_is_overfitting():
    val = decay(0.3) + 0.01 * np.maximum(0, EPOCHS - 12) + noise(0.005)
    found = diagnose(curves(decay(0.05, 6), val))
    assert found.verdict == OVERFITTING
    assert found.evidence["val_rise"] > 0.3
    assert 10 <= found.evidence["best_epoch"] <= 18
    assert f"epoch {int(found.evidence['best_epoch'])}" in found.explanation


def test_a_single_noisy_validation_spike_at_the_end_is_not_overfitting():
    val = decay(0.25) + noise(0.005)
    val[-1] *= 1.4  # one bad epoch; the median of the last epochs ignores it
    assert diagnose(curves(decay(0.2) + noise(0.005, 1), val)).verdict == GOOD_FIT


def test_small_rise_within_the_noise_is_not_overfitting():
    val = decay(0.25) + 0.0005 * np.maximum(0, EPOCHS - 20) + noise(0.01)
    assert diagnose(curves(decay(0.2), val)).verdict != OVERFITTING


def test_training_loss_still_falling_steeply_is_underfitting():
    train = 1 - 0.015 * EPOCHS
    found = diagnose(curves(train, train + 0.05))
    assert found.verdict == UNDERFITTING
    assert found.evidence["end_rate"] == pytest.approx(0.015, rel=1e-6)


def test_training_loss_that_barely_fell_is_underfitting():
    flat = 1 + noise(0.003)
    found = diagnose(curves(flat, flat + 0.02))
    assert found.verdict == UNDERFITTING
    assert found.evidence["train_drop"] < 0.1


def test_underfitting_quotes_the_last_value_the_plot_shows():
    """The text once quoted the median of the last epochs as if it were the end of the plotted curve."""
    train = np.array([1.514, 1.45, 1.41, 1.42, 1.40, 1.38, 1.27])
    found = diagnose(curves(train, train + 0.02))
    assert found.verdict == UNDERFITTING
    assert found.evidence["train_last"] == pytest.approx(1.27)
    assert found.evidence["train_end"] == pytest.approx(1.38)
    assert "1.27 at epoch" in found.explanation


def test_validation_far_below_training_is_unrepresentative():
    train = decay(0.2)
    found = diagnose(curves(train, 0.5 * train))
    assert found.verdict == UNREPRESENTATIVE_VALIDATION
    assert found.evidence["median_val_train_ratio"] == pytest.approx(0.5)


def test_validation_much_noisier_than_training_is_unrepresentative():
    found = diagnose(curves(decay(0.2) + noise(0.002), decay(0.25) + noise(0.1, 1)))
    assert found.verdict == UNREPRESENTATIVE_VALIDATION
    assert found.evidence["val_noise"] > 3 * found.evidence["train_noise"]


@pytest.mark.parametrize("epochs", [0, 1, 2])
def test_fewer_than_three_epochs_are_too_short(epochs):
    assert diagnose(curves([1.0, 0.5][:epochs], [1.0, 0.6][:epochs])).verdict == TOO_SHORT


def test_non_finite_epochs_are_left_out_and_said_so():
    history = curves(decay(0.2), decay(0.25))
    history[3]["val_loss"] = math.nan
    history[5]["train_loss"] = math.inf
    found = diagnose(history)
    assert found.verdict == GOOD_FIT
    assert "2 epoch(s) with a non-finite loss" in found.explanation


def test_only_non_finite_losses_are_too_short():
    assert diagnose(curves([math.nan] * 5, [math.nan] * 5)).verdict == TOO_SHORT


def test_equal_losses_every_epoch_are_underfitting_not_an_error():
    assert diagnose(curves([0.5] * 10, [0.5] * 10)).verdict == UNDERFITTING
