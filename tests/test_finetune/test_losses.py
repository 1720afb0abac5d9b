"""The loss and metric chosen from a package's output, and what they compute."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.errors import InputError
from zoo.finetune.losses import choose_objective


def test_the_loss_follows_the_output():
    rng = np.random.default_rng(0)
    probability = rng.uniform(0, 1, (1, 1, 8, 8)).astype(np.float32)
    logits = rng.normal(0, 5, (1, 1, 8, 8)).astype(np.float32)
    softmax = rng.uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)
    softmax /= softmax.sum(axis=1, keepdims=True)

    post = choose_objective("auto", logits, "bcyx", ["sigmoid"], None)
    assert (post.loss, post.logits, post.leave_out_activation, post.shipped_activation) == (
        "bce-dice",
        True,
        False,
        "sigmoid",
    )
    inside = choose_objective("auto", probability, "bcyx", [], "sigmoid")
    assert (inside.loss, inside.logits, inside.leave_out_activation) == ("bce-dice", True, True)
    traced = choose_objective("auto", probability, "bcyx", [], None)
    assert (traced.loss, traced.logits) == ("bce-dice", False)
    classes = choose_objective("auto", softmax, "bcyx", [], None)
    assert (classes.loss, classes.channels, classes.metric) == ("cross-entropy", 3, "mean IoU")
    restoration = choose_objective("auto", logits, "bcyx", [], None)
    assert (restoration.loss, restoration.metric) == ("mse", "PSNR")
    assert choose_objective("mse", probability, "bcyx", [], None).loss == "mse"
    with pytest.raises(InputError, match="cross-entropy"):
        choose_objective("bce-dice", softmax, "bcyx", [], None)


@pytest.mark.parametrize("op", ["stardist_postprocessing", "cellpose_flow_dynamics"])
def test_a_network_behind_an_instance_label_post_processing_is_refused_in_one_line(op):
    prob_and_distances = np.random.default_rng(0).random((1, 64, 64, 33), dtype=np.float32)
    with pytest.raises(InputError, match=f"instance labels made by {op}.*zoo train --trainer stardist2d"):
        choose_objective("auto", prob_and_distances, "byxc", ["zero_mean_unit_variance", op], None)


def test_losses_and_scores_have_their_values():
    target = np.zeros((1, 1, 8, 8), dtype=np.float32)
    target[..., 2:6, 2:6] = 1
    objective = choose_objective("auto", target * 0.9, "bcyx", [], None)  # probabilities
    perfect, wrong = torch.from_numpy(target * 0.999 + 0.0005), torch.from_numpy(1 - target)
    assert float(objective.loss_fn(perfect, torch.from_numpy(target))) < 0.01
    assert float(objective.loss_fn(wrong, torch.from_numpy(target))) > 1.0
    assert objective.score([target], [target]) == {"IoU": 1.0}
    assert objective.score([np.zeros_like(target)], [target]) == {"IoU": 0.0}

    logits = choose_objective("auto", target, "bcyx", ["sigmoid"], None)
    assert logits.score([(target - 0.5) * 10], [target]) == {"IoU": 1.0}  # the rdf's sigmoid applied first

    labels = np.zeros((1, 8, 8), dtype=np.int64)
    labels[0, :4] = 1
    one_hot = np.stack([labels == 0, labels == 1], axis=1).astype(np.float32)
    classes = choose_objective("auto", one_hot * 0.98 + 0.01, "bcyx", [], None)
    assert classes.score([one_hot], [labels])["mean IoU"] == 1.0
    assert float(classes.loss_fn(torch.from_numpy(one_hot * 0.98 + 0.01), torch.from_numpy(labels))) < 0.05
