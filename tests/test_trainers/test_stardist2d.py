"""Trainer stardist2d: its targets, loss, threshold choice and what a run records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import tiny_train_config
from zoo import api
from zoo.bioimage.instances import instance_scores
from zoo.bioimage.star_convex import StarConvexParams, labels_from_prob_dist
from zoo.config import DataConfig
from zoo.data.instances import make_instances
from zoo.trainers.checkpoint import load_checkpoint
from zoo.trainers.instance_metrics import choose_thresholds, instance_metrics
from zoo.trainers.stardist2d import N_RAYS, star_loss, star_targets


def test_targets_are_the_centre_weighted_probability_and_the_ray_distances():
    labels = np.zeros((32, 32), np.int32)
    labels[8:24, 4:14] = 1  # 16 rows x 10 columns
    target = star_targets(labels)
    assert target.shape == (1 + N_RAYS, 32, 32) and target.dtype == np.float32
    assert target[0].max() == pytest.approx(1.0) and target[0][labels == 0].max() == 0
    centre = target[1:, 16, 9]  # ray 0 points right (+x), ray n/4 down (+y): to the boundary at x 13.5, y 23.5
    assert centre[0] == pytest.approx(4.5) and centre[N_RAYS // 4] == pytest.approx(7.5)


def test_the_loss_is_lowest_for_the_targets_themselves():
    _, labels = make_instances(1, (64, 64), seed=2)
    target = torch.from_numpy(star_targets(labels[0])[None])
    perfect = target.clone()
    perfect[:, :1] = torch.logit(target[:, :1].clamp(1e-4, 1 - 1e-4))
    wrong = perfect.clone()
    wrong[:, 1:] += 2.0
    perfect, wrong = perfect.movedim(1, -1), wrong.movedim(1, -1)  # the network gives channels last
    assert float(star_loss(perfect, target)) < float(star_loss(wrong, target))


def test_thresholds_are_chosen_where_the_validation_score_is_best():
    from stardist import edt_prob, star_dist

    _, labels = make_instances(3, (64, 64), seed=5)
    outputs = []
    for truth in labels:
        prob = edt_prob(truth) * 0.7  # a network that is never sure: a threshold of 0.8 finds nothing
        outputs.append(np.concatenate([prob[None], np.moveaxis(star_dist(truth, N_RAYS), -1, 0)]).astype(np.float32))

    choice = choose_thresholds(outputs, list(labels), N_RAYS, prob_thresholds=(0.4, 0.8), nms_thresholds=(0.4,))
    assert (choice.prob_threshold, choice.nms_threshold, choice.tried) == (0.4, 0.4, 2)
    assert choice.mean_ap > 0.5
    direct = [labels_from_prob_dist(o, StarConvexParams(N_RAYS, 0.4, 0.4)) for o in outputs]
    assert instance_scores(zip(labels, direct)).mean_average_precision == pytest.approx(choice.mean_ap)


def test_thresholds_that_make_most_pixels_candidates_are_skipped():
    flat = np.full((1 + N_RAYS, 32, 32), 0.5, np.float32)  # an untrained network: probability 0.5 everywhere
    choice = choose_thresholds([flat], [np.zeros((32, 32), np.int32)], N_RAYS, (0.3, 0.6), (0.4,))
    assert choice.skipped == (0.3,) and choice.prob_threshold == 0.6 and choice.tried == 1


@pytest.mark.slow
def test_a_run_records_instance_metrics_thresholds_and_the_task(tmp_path):
    config = tiny_train_config(
        tmp_path, trainer="stardist2d", data=DataConfig(n_images=10, image_size=64), base_channels=4, patch_size=32
    )
    result = api.train(config)
    checkpoint = load_checkpoint(result.checkpoint)
    task = checkpoint.task_spec
    assert task.kind == "instances" and task.output_id == "labels"
    kwargs = task.extra["stardist"]
    assert kwargs["n_rays"] == N_RAYS and kwargs["grid"] == [1, 1]
    assert kwargs["prob_threshold"] == task.extra["thresholds"]["prob_threshold"]
    assert {"test_ap_50", "test_ap_75", "test_f1_50", "test_panoptic_quality", "test_objects_true"} <= set(
        checkpoint.metrics
    )
    assert checkpoint.metrics["test_objects_true"] > 0
    output = checkpoint.build_model()(torch.zeros(1, 1, 32, 32))
    assert tuple(output.shape) == (1, 32, 32, 1 + N_RAYS)


def test_metric_names_cover_the_card():
    from zoo.bioimage.instances import instance_scores
    from zoo.trainers import card_for

    _, labels = make_instances(2, (64, 64), seed=0)
    metrics = instance_metrics(instance_scores(zip(labels, labels)))
    assert set(card_for("stardist2d").metrics) == set(metrics)
    assert metrics["test_ap_90"] == 1.0 and metrics["test_count_error"] == 0.0
