import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from zoo.data.folder import load_image_mask_folder
from zoo.errors import DataError


def write_pair(root: Path, name: str, image: np.ndarray, mask: np.ndarray, suffix: str = ".tif"):
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(root / "images" / f"{name}{suffix}", image)
    tifffile.imwrite(root / "masks" / f"{name}{suffix}", mask)


def make_pair(seed: int, shape=(32, 32)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 4000, size=shape, dtype=np.uint16)
    labels = np.zeros(shape, dtype=np.uint16)
    labels[4:12, 4:12] = 3
    labels[20:28, 18:30] = 700
    return image, labels


@pytest.fixture
def good_folder(tmp_path):
    pairs = {name: make_pair(seed) for seed, name in enumerate(["c", "a", "b"])}
    for name, (image, labels) in pairs.items():
        write_pair(tmp_path, name, image, labels)
    return tmp_path, pairs


def test_round_trip(good_folder):
    folder, pairs = good_folder
    data = load_image_mask_folder(folder)
    assert data.names == ["a", "b", "c"]
    assert data.n_files == 3
    for name, image, mask in zip(data.names, data.images, data.masks, strict=True):
        expected_image, labels = pairs[name]
        assert image.dtype == np.float32
        assert mask.dtype == np.uint8
        np.testing.assert_array_equal(image, expected_image.astype(np.float32))
        np.testing.assert_array_equal(mask, (labels != 0).astype(np.uint8))
    assert re.fullmatch(r"[0-9a-f]{64}", data.sha256)


def test_checksum_is_stable_and_follows_file_bytes(good_folder):
    folder, _ = good_folder
    first = load_image_mask_folder(folder).sha256
    assert load_image_mask_folder(folder).sha256 == first
    _, labels = make_pair(0)
    labels[0, 0] = 1
    tifffile.imwrite(folder / "masks" / "b.tif", labels)
    assert load_image_mask_folder(folder).sha256 != first


def test_tiff_suffix_and_singleton_axes_are_accepted(tmp_path):
    image, labels = make_pair(0)
    write_pair(tmp_path, "x", image[None, :, :, None], labels[None], suffix=".tiff")
    data = load_image_mask_folder(tmp_path)
    assert data.names == ["x"]
    assert data.images[0].shape == (32, 32)
    np.testing.assert_array_equal(data.masks[0], (labels != 0).astype(np.uint8))


def test_missing_folder(tmp_path):
    folder = tmp_path / "nowhere"
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(folder)
    assert str(folder) in str(excinfo.value)


def test_missing_masks_subfolder(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    assert "masks/" in str(excinfo.value)
    assert str(tmp_path) in str(excinfo.value)


def test_no_tiff_found(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    assert str(tmp_path / "images") in str(excinfo.value)
    assert "no TIFF" in str(excinfo.value)


def test_unpaired_images_and_masks(good_folder):
    folder, _ = good_folder
    image, labels = make_pair(9)
    tifffile.imwrite(folder / "images" / "lonely_image.tif", image)
    tifffile.imwrite(folder / "masks" / "lonely_mask.tiff", labels)
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(folder)
    message = str(excinfo.value)
    assert "lonely_image.tif" in message
    assert "lonely_mask.tiff" in message


def test_unpaired_names_are_capped_at_five(tmp_path):
    image, labels = make_pair(0)
    write_pair(tmp_path, "paired", image, labels)
    for i in range(7):
        tifffile.imwrite(tmp_path / "images" / f"orphan{i}.tif", image)
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    message = str(excinfo.value)
    assert "orphan0.tif" in message
    assert "orphan4.tif" in message
    assert "orphan5.tif" not in message
    assert "and 2 more" in message


def test_duplicate_stem(good_folder):
    folder, _ = good_folder
    image, _ = make_pair(0)
    tifffile.imwrite(folder / "images" / "a.tiff", image)
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(folder)
    assert "a.tif" in str(excinfo.value)
    assert "a.tiff" in str(excinfo.value)


def test_shape_mismatch(tmp_path):
    image, _ = make_pair(0, shape=(32, 32))
    _, labels = make_pair(0, shape=(32, 40))
    write_pair(tmp_path, "odd", image, labels)
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    message = str(excinfo.value)
    assert str(tmp_path / "images" / "odd.tif") in message
    assert str(tmp_path / "masks" / "odd.tif") in message
    assert "(32, 32)" in message
    assert "(32, 40)" in message


def test_image_not_2d(tmp_path):
    image, labels = make_pair(0)
    write_pair(tmp_path, "stack", np.stack([image, image, image]), labels)
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    message = str(excinfo.value)
    assert "stack.tif" in message
    assert "(3, 32, 32)" in message


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_tiff(tmp_path, damage):
    image, labels = make_pair(0)
    write_pair(tmp_path, "broken", image, labels)
    path = tmp_path / "masks" / "broken.tif"
    data = path.read_bytes()
    path.write_bytes(b"this is not a tiff file" if damage == "garbage" else data[:40])
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    assert "broken.tif" in str(excinfo.value)
