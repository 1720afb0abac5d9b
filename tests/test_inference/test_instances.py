"""Instance segmentation of images of any size (zoo.inference.instances): objects found tile by tile, kept whole
and unique, written as uint16 labels."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tests.instance_packages import stardist_package
from zoo.bioimage.instances import overlaps
from zoo.bioimage.star_convex import StarConvexParams, labels_from_prob_dist
from zoo.data.instances import make_instances
from zoo.inference.geometry import Geometry
from zoo.inference.instances import context_margin, widen_for_instances


def test_tiles_are_widened_by_twice_the_halo_for_instance_outputs_only():
    geometry = Geometry(("y", "x"), {}, {"y": 48, "x": 40}, {"y": 8, "x": 8}, {}, batch_fixed=False)
    assert context_margin(geometry) == 96
    widened = widen_for_instances(geometry, {"labels": StarConvexParams(32, 0.5, 0.4)})
    assert widened.halo == {"y": 144, "x": 136} and widened.after("x") == 136
    assert widen_for_instances(geometry, {}) is geometry


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from zoo.inference.model import load_model

    loaded = load_model(stardist_package(tmp_path_factory.getbasetemp()), device="cpu")
    yield loaded
    loaded.close()


@pytest.mark.slow
def test_tiled_instances_equal_the_whole_image_post_processing(model):
    """Every object of bioimageio.core's whole-image computation (network on the whole image, then
    stardist_postprocessing) is found tiled, whole (IoU 1) and once."""
    from zoo.inference.predict import predict_arrays
    from zoo.trainers.datasets import normalize_image

    assert set(model.instance_outputs) == {"labels"} and model.instance_margin > 0
    image = make_instances(1, (400, 368), seed=11)[0][0]
    tiled = predict_arrays(model, image[None, None], tile="224,224")["labels"]
    assert tiled.dtype == np.uint16 and tiled.shape == (1, 400, 368, 1)
    network = model.run([normalize_image(image)[None, None]])[0][0]  # (y, x, 1 + n_rays)
    whole = labels_from_prob_dist(np.moveaxis(network, -1, 0), model.instance_outputs["labels"])
    found = overlaps(whole, tiled[0, :, :, 0])
    pairs, iou = found.matches(0.9)
    assert found.n_true > 30 and found.n_pred == found.n_true == len(pairs)
    assert len(found.split_true()) == 0 and iou.min() > 0.99


@pytest.mark.slow
def test_zoo_predict_writes_uint16_label_tiffs(model, tmp_path):
    from zoo.inference.predict import predict

    image = make_instances(1, (300, 260), seed=2)[0][0]
    tifffile.imwrite(tmp_path / "cells.tif", image)
    result = predict(model.opened.source, [tmp_path / "cells.tif"], tmp_path / "out", tile="224,224", device="cpu")
    assert not result.failed and result.tiles > 1
    labels = tifffile.imread(tmp_path / "out" / "cells_labels.tif")
    assert labels.dtype == np.uint16 and labels.shape == (300, 260)
    ids = np.unique(labels)[1:]
    assert list(ids) == list(range(1, len(ids) + 1)) and len(ids) > 10
