"""The target domain (zoo.data.shifted), images laid out in a tensor's axes, valid sizes and evaluation windows."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from zoo.bioimage.tensors import ValidSizes
from zoo.data.shifted import SEVERE_SHIFT, make_shifted_nuclei, write_image_mask_folder
from zoo.data.synthetic import make_nuclei
from zoo.finetune.data import Sizes, windows
from zoo.finetune.losses import choose_objective
from zoo.finetune.processing import to_layout


def test_target_domain_differs_from_the_source_as_described(tmp_path):
    source, source_masks = make_nuclei(6, (96, 96), seed=4)
    target, target_masks = make_shifted_nuclei(6, (96, 96), seed=4)
    again, _ = make_shifted_nuclei(6, (96, 96), seed=4)
    assert np.array_equal(target, again) and set(np.unique(target_masks)) <= {0, 1}

    def contrast(images, masks):  # nucleus minus background, over the background's spread
        return np.mean([(i[m > 0].mean() - i[m == 0].mean()) / i[m == 0].std() for i, m in zip(images, masks)])

    def nucleus_area(masks):
        return np.mean([np.bincount(ndimage.label(m)[0].ravel())[1:].mean() for m in masks])

    assert contrast(target, target_masks) < 0.5 * contrast(source, source_masks)
    assert nucleus_area(target_masks) > 1.5 * nucleus_area(source_masks)
    assert np.median(target[target_masks == 0]) > 1.5 * np.median(source[source_masks == 0])
    severe, severe_masks = make_shifted_nuclei(6, (96, 96), seed=4, shift=SEVERE_SHIFT)
    assert contrast(severe, severe_masks) < 0.5 * contrast(target, target_masks)
    folder = write_image_mask_folder(tmp_path / "data", target, target_masks)
    assert len(list((folder / "images").glob("*.tif"))) == len(list((folder / "masks").glob("*.tif"))) == 6


def test_layouts_sizes_and_windows():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert to_layout(image, "bcyx").shape == (1, 1, 3, 4)
    assert to_layout(image, "byxc").shape == (1, 3, 4, 1)
    assert np.array_equal(to_layout(image, "bcxy")[0, 0], image.T)

    parameterized = Sizes("yx", {"y": ValidSizes(36, 4), "x": ValidSizes(36, 4)}, None)
    assert parameterized.side(128, 70) == 68 and parameterized.side(16, 70) == 36
    fixed = Sizes("yx", {"y": ValidSizes(32), "x": ValidSizes(32)}, 1)
    assert fixed.side(128, 100) == 32

    mask = np.zeros((1, 1, 8, 8), dtype=np.float32)
    objective = choose_objective("auto", mask + 0.5, "bcyx", [], None)
    big = [np.zeros((70, 100), dtype=np.float32)]
    (centre,) = windows(big, [np.zeros((70, 100), np.uint8)], parameterized, objective, "bcyx", "bcyx")
    assert centre.image.shape == (1, 1, 68, 100) and centre.target.shape == (1, 1, 68, 100)
    tiles = windows(big, [np.zeros((70, 100), np.uint8)], fixed, objective, "bcyx", "bcyx")
    assert len(tiles) == 2 * 3 and all(t.image.shape == (1, 1, 32, 32) for t in tiles)
