"""Instance label images compared object by object (zoo.bioimage.instances) and star-convex post-processing
(zoo.bioimage.star_convex)."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.bioimage.instances import instance_scores, overlaps, relabel_sequential
from zoo.bioimage.star_convex import Candidates, StarConvexParams, find_candidates, labels_from_prob_dist, render


def squares(shape=(40, 40)) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    labels[2:12, 2:12] = 1
    labels[2:12, 12:22] = 2  # touching the first
    labels[20:30, 5:15] = 3
    return labels


def test_a_relabelled_image_matches_itself_exactly():
    truth = squares()
    relabelled = np.select([truth == 1, truth == 2, truth == 3], [70, 5, 9000], 0)
    scores = instance_scores([(truth, relabelled)])
    assert scores.at(0.9).tp == 3 and scores.at(0.9).fp == 0 and scores.at(0.9).fn == 0
    assert scores.at(0.5).panoptic_quality == 1.0
    assert scores.mean_average_precision == 1.0


def test_a_lost_and_a_merged_object_count_as_missed_and_spurious():
    truth = squares()
    prediction = truth.copy()
    prediction[prediction == 3] = 0  # lost
    prediction[prediction == 2] = 1  # merged with its neighbour: IoU 0.5 with each, no match above 0.5
    found = overlaps(truth, prediction)
    assert (found.n_true, found.n_pred) == (3, 1)
    counts = instance_scores([(truth, prediction)], (0.5, 0.55)).per_threshold
    assert (counts[0].tp, counts[0].fp, counts[0].fn) == (1, 0, 2)  # IoU exactly 0.5 matches at 0.5
    assert (counts[1].tp, counts[1].fp, counts[1].fn) == (0, 1, 3)
    assert counts[0].average_precision == pytest.approx(1 / 3)


def test_split_objects_are_found():
    truth = squares()
    prediction = truth.copy()
    prediction[2:12, 7:12] = 4  # the first square cut in two halves
    found = overlaps(truth, prediction)
    assert list(found.true_ids[found.split_true()]) == [1]
    assert found.best_iou_per_true()[0] == pytest.approx(0.5)


def test_scores_agree_with_stardist_matching():
    from stardist.data import test_image_nuclei_2d
    from stardist.matching import matching

    _, truth = test_image_nuclei_2d(return_mask=True)
    prediction = np.roll(truth, 2, axis=1)
    prediction[prediction == 5] = 0
    for threshold in (0.5, 0.7, 0.8):
        reference = matching(truth, prediction, thresh=threshold)
        ours = instance_scores([(truth, prediction)], (threshold,)).at(threshold)
        assert (ours.tp, ours.fp, ours.fn) == (reference.tp, reference.fp, reference.fn)
        assert ours.average_precision == pytest.approx(reference.accuracy)
        assert ours.f1 == pytest.approx(reference.f1)
        assert ours.panoptic_quality == pytest.approx(reference.panoptic_quality)


def test_relabel_sequential_numbers_objects_in_order_of_first_pixel():
    labels = np.array([[0, 9, 9], [4, 4, 0], [70000, 0, 0]])
    relabelled = relabel_sequential(labels)
    assert relabelled.dtype == np.uint16
    assert relabelled.tolist() == [[0, 1, 1], [2, 2, 0], [3, 0, 0]]


def test_overlaps_refuses_other_shapes_and_fractions():
    with pytest.raises(ValueError, match="shapes"):
        overlaps(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="non-integer"):
        overlaps(np.zeros((3, 3)), np.full((3, 3), 0.5))


def prob_dist_of(labels: np.ndarray, n_rays: int = 16) -> np.ndarray:
    """A perfect network output for `labels`: the normalised distance transform and the true ray distances."""
    from stardist import edt_prob, star_dist

    return np.concatenate([edt_prob(labels)[None], np.moveaxis(star_dist(labels, n_rays), -1, 0)]).astype(np.float32)


def test_labels_from_a_perfect_output_recover_the_objects():
    truth = squares((48, 48))
    params = StarConvexParams(n_rays=16, prob_threshold=0.5, nms_threshold=0.4)
    labels = labels_from_prob_dist(prob_dist_of(truth), params)
    assert labels.dtype == np.int32
    assert instance_scores([(truth, labels)], (0.75,)).at(0.75).tp == 3


def test_rendering_a_region_equals_the_same_region_of_the_whole_image():
    truth = squares((48, 48))
    params = StarConvexParams(n_rays=16, prob_threshold=0.5, nms_threshold=0.4)
    found = find_candidates(prob_dist_of(truth), params)
    whole = render(found, (48, 48))
    ids = np.arange(1, len(found) + 1)
    np.testing.assert_array_equal(
        render(found, (20, 30), origin=(5, 8), ids=ids), render(found, (48, 48), ids=ids)[5:25, 8:38]
    )
    assert sorted(np.unique(whole))[1:] == list(range(1, len(found) + 1))
    assert len(Candidates.concatenate([found.take([0]), Candidates.empty(16), found.take([1, 2])], 16)) == 3


def test_params_round_trip_through_rdf_kwargs():
    params = StarConvexParams(32, 0.48, 0.3, border=2)
    assert StarConvexParams.from_kwargs(params.to_kwargs()) == params
    assert StarConvexParams.from_kwargs({**params.to_kwargs(), "b": [[1, 3], [2, 2]]}).border == 3
