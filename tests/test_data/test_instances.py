"""Synthetic instance labels (zoo.data.instances) and a user's folder of instance labels
(zoo.data.instance_folder)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from zoo.data.instance_folder import load_instance_folder
from zoo.data.instances import MIN_OBJECT_PIXELS, make_instances
from zoo.data.synthetic import make_nuclei
from zoo.errors import DataError


def test_instances_are_the_nuclei_images_with_each_nucleus_numbered():
    images, labels = make_instances(6, (96, 80), seed=4)
    nuclei, masks = make_nuclei(6, (96, 80), seed=4)
    np.testing.assert_array_equal(images, nuclei)
    assert labels.dtype == np.uint16 and labels.shape == (6, 96, 80)
    differ = (labels > 0) != (masks > 0)
    assert not (differ & (labels > 0)).any()  # labels lie inside the mask; only slivers are dropped
    slivers, n = ndimage.label(differ)
    assert n == 0 or np.bincount(slivers.ravel())[1:].max() < MIN_OBJECT_PIXELS
    for image_labels in labels:
        ids = np.unique(image_labels)[1:]
        assert list(ids) == list(range(1, len(ids) + 1))


def test_instances_are_seeded_touch_and_stay_one_piece():
    first = make_instances(8, (128, 128), seed=1)[1]
    np.testing.assert_array_equal(first, make_instances(8, (128, 128), seed=1)[1])
    touching = pieces = 0
    for labels in first:
        for index, box in enumerate(ndimage.find_objects(labels)):
            if box is None:
                continue
            inside = labels == index + 1
            pieces += ndimage.label(labels[box] == index + 1)[1] > 1
            ring = ndimage.binary_dilation(inside) & ~inside
            touching += bool(((labels[ring] != 0) & (labels[ring] != index + 1)).any())
    assert touching >= 20  # many nuclei touch another
    assert pieces <= 3  # almost every nucleus is one piece


def write_pair(root, name, image, labels):
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(root / "images" / f"{name}.tif", image)
    tifffile.imwrite(root / "masks" / f"{name}.tif", labels)


@pytest.fixture
def folder(tmp_path):
    images, labels = make_instances(3, (64, 64), seed=0)
    for i, (image, label) in enumerate(zip(images, labels)):
        write_pair(tmp_path, f"img{i}", image, (label * 7).astype(np.uint16))  # numbers need not be consecutive
    return tmp_path


def test_a_folder_of_instance_labels_is_read_with_its_numbers(folder):
    data = load_instance_folder(folder)
    assert data.n_files == 3 and data.names == ["img0", "img1", "img2"]
    assert data.masks[0].dtype == np.int32
    assert set(np.unique(data.masks[0])) <= set(range(0, 7 * 200, 7))
    assert data.warnings == ()


def test_a_binary_mask_of_several_objects_is_refused_naming_the_file(folder):
    _, labels = make_instances(1, (64, 64), seed=0)
    write_pair(folder, "img1", np.ones((64, 64), np.float32), ((labels[0] > 0) * 255).astype(np.uint8))
    with pytest.raises(DataError, match=r"img1\.tif holds the one value 255 for \d+ separate objects"):
        load_instance_folder(folder)


@pytest.mark.parametrize(
    ("labels", "message"),
    [(np.full((64, 64), 0.5, np.float32), "fractional"), (np.full((64, 64), -1, np.int16), "negative label -1")],
)
def test_labels_that_are_not_numbers_of_objects_are_refused(folder, labels, message):
    write_pair(folder, "img2", np.ones((64, 64), np.float32), labels)
    with pytest.raises(DataError, match=message):
        load_instance_folder(folder)


def test_empty_masks_warn_and_all_empty_is_refused(folder):
    write_pair(folder, "img0", np.ones((64, 64), np.float32), np.zeros((64, 64), np.uint16))
    data = load_instance_folder(folder)
    assert any("1 of 3 masks" in w and "img0.tif" in w for w in data.warnings)
    for name in ("img1", "img2"):
        write_pair(folder, name, np.ones((64, 64), np.float32), np.zeros((64, 64), np.uint16))
    with pytest.raises(DataError, match="every mask in .* is empty"):
        load_instance_folder(folder)


def test_tiny_objects_and_objects_in_pieces_warn(folder):
    labels = np.zeros((64, 64), np.uint16)
    labels[10:20, 10:20] = 1
    labels[40:50, 40:50] = 1  # the same object in two places
    labels[30, 30] = 2  # one pixel
    write_pair(folder, "img0", np.ones((64, 64), np.float32), labels)
    warnings = load_instance_folder(folder).warnings
    assert any("under 9 pixels" in w for w in warnings)
    assert any("1 objects in 1 masks lie in several separate pieces (img0.tif)" in w for w in warnings)
