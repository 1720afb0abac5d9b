import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile

from zoo.data.folder import (
    ClassFolderData,
    load_class_folder,
    load_image_folder,
    load_image_label_folder,
    load_image_mask_folder,
    load_image_target_folder,
)
from zoo.errors import DataError


def write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array)
    return path


def image(seed: int, shape=(24, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, size=shape, dtype=np.uint16)


def labels(shape=(24, 32), top: int = 2, dtype=np.uint8) -> np.ndarray:
    result = np.zeros(shape, dtype=dtype)
    result[..., 2:8, 2:8] = 1
    result[..., 12:20, 10:30] = top
    return result


def message_of(excinfo) -> str:
    return str(excinfo.value)


# --- load_image_label_folder ---


@pytest.fixture
def label_folder(tmp_path):
    for seed, name in enumerate(["b", "a"]):
        write(tmp_path / "images" / f"{name}.tif", image(seed))
        write(tmp_path / "masks" / f"{name}.tif", labels(top=2 + seed))  # b: 0..2, a: 0..3
    return tmp_path


def test_label_folder_round_trip_infers_the_class_count(label_folder):
    data = load_image_label_folder(label_folder)
    assert data.names == ["a", "b"]
    assert data.n_files == 2
    assert data.n_classes == 4
    np.testing.assert_array_equal(data.images[0], image(1).astype(np.float32))
    np.testing.assert_array_equal(data.masks[0], labels(top=3))
    assert all(m.dtype == np.uint8 for m in data.masks)
    assert all(i.dtype == np.float32 for i in data.images)


def test_label_folder_checksum_is_the_mask_folders(label_folder):
    assert load_image_label_folder(label_folder).sha256 == load_image_mask_folder(label_folder).sha256


def test_label_folder_given_class_count(label_folder):
    assert load_image_label_folder(label_folder, n_classes=6).n_classes == 6


def test_label_folder_accepts_whole_numbers_stored_as_floats(tmp_path):
    write(tmp_path / "images" / "x.tif", image(0))
    write(tmp_path / "masks" / "x.tif", labels().astype(np.float32))
    data = load_image_label_folder(tmp_path)
    assert data.n_classes == 3
    np.testing.assert_array_equal(data.masks[0], labels())


@pytest.mark.parametrize(
    ("mask", "n_classes", "expected"),
    [
        (labels().astype(np.float32) + 0.5, None, "non-integer"),
        (labels(dtype=np.int16) * -1, None, "-2"),
        (labels(top=5), 3, "5"),
        (labels(top=700, dtype=np.uint16), None, "700"),
    ],
    ids=["fractional", "negative", "above-n_classes", "instance-labels"],
)
def test_label_folder_rejects_masks_that_are_not_class_labels(tmp_path, mask, n_classes, expected):
    write(tmp_path / "images" / "good.tif", image(0))
    write(tmp_path / "masks" / "good.tif", labels())
    write(tmp_path / "images" / "bad.tif", image(1))
    bad = write(tmp_path / "masks" / "bad.tif", mask)
    with pytest.raises(DataError) as excinfo:
        load_image_label_folder(tmp_path, n_classes=n_classes)
    assert str(bad) in message_of(excinfo)
    assert expected in message_of(excinfo)


@pytest.mark.parametrize("n_classes", [1, 0, 2.5, True, 300])
def test_label_folder_rejects_a_bad_class_count(label_folder, n_classes):
    with pytest.raises(DataError, match="n_classes"):
        load_image_label_folder(label_folder, n_classes=n_classes)


def test_label_folder_reads_z_stacks(tmp_path):
    write(tmp_path / "images" / "v.tif", image(0, (5, 24, 32)))
    write(tmp_path / "masks" / "v.tif", labels((5, 24, 32)))
    data = load_image_label_folder(tmp_path, ndim=3)
    assert data.images[0].shape == data.masks[0].shape == (5, 24, 32)
    assert data.n_classes == 3
    np.testing.assert_array_equal(data.masks[0], labels((5, 24, 32)))


def test_z_stack_singleton_axes_are_dropped(tmp_path):
    write(tmp_path / "images" / "v.tif", image(0, (5, 1, 24, 32)))
    write(tmp_path / "masks" / "v.tif", labels((1, 5, 24, 32)))
    data = load_image_label_folder(tmp_path, ndim=3)
    assert data.images[0].shape == data.masks[0].shape == (5, 24, 32)


def test_label_folder_unpaired(label_folder):
    write(label_folder / "images" / "lonely.tif", image(5))
    with pytest.raises(DataError) as excinfo:
        load_image_label_folder(label_folder)
    assert "lonely.tif" in message_of(excinfo)


def test_label_folder_empty(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="no TIFF"):
        load_image_label_folder(tmp_path)


def test_label_folder_shape_mismatch(tmp_path):
    image_path = write(tmp_path / "images" / "x.tif", image(0, (24, 32)))
    mask_path = write(tmp_path / "masks" / "x.tif", labels((24, 30)))
    with pytest.raises(DataError) as excinfo:
        load_image_label_folder(tmp_path)
    for expected in (str(image_path), str(mask_path), "(24, 32)", "(24, 30)"):
        assert expected in message_of(excinfo)


# --- dimensionality, for every pair loader ---


@pytest.mark.parametrize("loader", [load_image_label_folder, load_image_target_folder])
@pytest.mark.parametrize("ndim", [2, 3])
def test_mixed_dimensionality_names_a_file_of_each(tmp_path, loader, ndim):
    partner = "masks" if loader is load_image_label_folder else "targets"
    flat = write(tmp_path / "images" / "a_flat.tif", image(0))
    write(tmp_path / partner / "a_flat.tif", labels())
    stack = write(tmp_path / "images" / "b_stack.tif", image(1, (4, 24, 32)))
    write(tmp_path / partner / "b_stack.tif", labels((4, 24, 32)))
    with pytest.raises(DataError) as excinfo:
        loader(tmp_path, ndim=ndim)
    message = message_of(excinfo)
    assert "mixed dimensionality" in message
    assert str(flat) in message
    assert str(stack) in message
    assert "(4, 24, 32)" in message


def test_z_stacks_asked_for_but_planes_found(tmp_path):
    path = write(tmp_path / "images" / "x.tif", image(0))
    write(tmp_path / "masks" / "x.tif", labels())
    with pytest.raises(DataError) as excinfo:
        load_image_label_folder(tmp_path, ndim=3)
    assert str(path) in message_of(excinfo)
    assert "z-stack" in message_of(excinfo)


def test_planes_asked_for_but_z_stacks_found(tmp_path):
    path = write(tmp_path / "images" / "x.tif", image(0, (4, 24, 32)))
    write(tmp_path / "masks" / "x.tif", labels((4, 24, 32)))
    with pytest.raises(DataError) as excinfo:
        load_image_label_folder(tmp_path, ndim=2)
    assert str(path) in message_of(excinfo)
    assert "(4, 24, 32)" in message_of(excinfo)
    assert "2D plane" in message_of(excinfo)


def test_four_dimensional_file_is_rejected(tmp_path):
    path = write(tmp_path / "images" / "x.tif", image(0, (2, 3, 24, 32)))
    write(tmp_path / "masks" / "x.tif", labels())
    with pytest.raises(DataError) as excinfo:
        load_image_label_folder(tmp_path, ndim=3)
    assert str(path) in message_of(excinfo)
    assert "(2, 3, 24, 32)" in message_of(excinfo)


@pytest.mark.parametrize("ndim", [1, 4])
def test_bad_ndim_is_rejected(label_folder, ndim):
    with pytest.raises(DataError, match="ndim"):
        load_image_label_folder(label_folder, ndim=ndim)


# --- load_image_target_folder ---


@pytest.fixture
def target_folder(tmp_path):
    for seed, name in enumerate(["n1", "n0"]):
        noisy = image(seed)
        write(tmp_path / "images" / f"{name}.tif", noisy)
        write(tmp_path / "targets" / f"{name}.tif", (noisy / 7.0).astype(np.float32))
    return tmp_path


def test_target_folder_round_trip(target_folder):
    data = load_image_target_folder(target_folder)
    assert data.names == ["n0", "n1"]
    assert data.n_files == 2
    assert data.n_classes is None
    for seed, (noisy, clean) in enumerate(zip(data.images, data.masks, strict=True)):
        assert noisy.dtype == clean.dtype == np.float32
        np.testing.assert_array_equal(noisy, image(1 - seed).astype(np.float32))
        np.testing.assert_allclose(clean, image(1 - seed) / 7.0, rtol=1e-6)


def test_target_folder_checksum_covers_image_then_target_bytes(target_folder):
    digest = hashlib.sha256()
    for name in ("n0", "n1"):
        for part in ("images", "targets"):
            data = (target_folder / part / f"{name}.tif").read_bytes()
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    assert load_image_target_folder(target_folder).sha256 == digest.hexdigest()


def test_target_folder_reads_z_stacks(tmp_path):
    write(tmp_path / "images" / "v.tif", image(0, (3, 24, 32)))
    write(tmp_path / "targets" / "v.tif", image(1, (3, 24, 32)))
    data = load_image_target_folder(tmp_path, ndim=3)
    assert data.images[0].shape == data.masks[0].shape == (3, 24, 32)


def test_target_folder_missing_targets(tmp_path):
    write(tmp_path / "images" / "x.tif", image(0))
    with pytest.raises(DataError) as excinfo:
        load_image_target_folder(tmp_path)
    assert "targets/" in message_of(excinfo)


def test_target_folder_unpaired(target_folder):
    write(target_folder / "targets" / "orphan.tif", image(3))
    with pytest.raises(DataError) as excinfo:
        load_image_target_folder(target_folder)
    assert "orphan.tif" in message_of(excinfo)
    assert "target(s)" in message_of(excinfo)


def test_target_folder_shape_mismatch(tmp_path):
    write(tmp_path / "images" / "x.tif", image(0, (24, 32)))
    target = write(tmp_path / "targets" / "x.tif", image(0, (32, 24)))
    with pytest.raises(DataError) as excinfo:
        load_image_target_folder(tmp_path)
    assert str(target) in message_of(excinfo)
    assert "(32, 24)" in message_of(excinfo)


def test_target_folder_rejects_nan(tmp_path):
    write(tmp_path / "images" / "x.tif", image(0))
    clean = image(0).astype(np.float32)
    clean[3, 4] = np.nan
    target = write(tmp_path / "targets" / "x.tif", clean)
    with pytest.raises(DataError) as excinfo:
        load_image_target_folder(tmp_path)
    assert str(target) in message_of(excinfo)
    assert "NaN" in message_of(excinfo)


def test_target_folder_empty(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "targets").mkdir()
    with pytest.raises(DataError, match="no TIFF"):
        load_image_target_folder(tmp_path)


# --- load_image_folder ---


@pytest.mark.parametrize("inside_images", [True, False])
def test_image_folder_reads_the_folder_or_its_images(tmp_path, inside_images):
    directory = tmp_path / "images" if inside_images else tmp_path
    write(directory / "b.tiff", image(1))
    write(directory / "a.tif", image(0))
    (directory / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path)
    assert data.names == ["a", "b"]
    assert data.masks == []
    assert data.n_files == 2
    np.testing.assert_array_equal(data.images[1], image(1).astype(np.float32))
    assert data.images[1].dtype == np.float32


def test_image_folder_checksum_follows_file_bytes(tmp_path):
    write(tmp_path / "a.tif", image(0))
    first = load_image_folder(tmp_path).sha256
    assert load_image_folder(tmp_path).sha256 == first
    write(tmp_path / "a.tif", image(1))
    assert load_image_folder(tmp_path).sha256 != first


def test_image_folder_reads_z_stacks(tmp_path):
    write(tmp_path / "v.tif", image(0, (6, 24, 32)))
    assert load_image_folder(tmp_path, ndim=3).images[0].shape == (6, 24, 32)


@pytest.mark.parametrize("with_images_subfolder", [True, False])
def test_image_folder_empty(tmp_path, with_images_subfolder):
    if with_images_subfolder:
        (tmp_path / "images").mkdir()
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path)
    assert "no TIFF" in message_of(excinfo)


def test_image_folder_missing(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message_of(excinfo)


def test_image_folder_mixed_dimensionality(tmp_path):
    flat = write(tmp_path / "a.tif", image(0))
    stack = write(tmp_path / "b.tif", image(1, (3, 24, 32)))
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path, ndim=3)
    assert str(flat) in message_of(excinfo)
    assert str(stack) in message_of(excinfo)


def test_image_folder_corrupt_file(tmp_path):
    write(tmp_path / "a.tif", image(0))
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path)
    assert "broken.tif" in message_of(excinfo)


# --- load_class_folder ---


@pytest.fixture
def class_folder(tmp_path):
    write(tmp_path / "mitotic" / "m1.tif", image(10, (16, 16)))
    write(tmp_path / "interphase" / "i2.tif", image(11, (16, 16)))
    write(tmp_path / "interphase" / "i1.tiff", image(12, (16, 16)))
    write(tmp_path / "apoptotic" / "i1.tif", image(13, (16, 16)))  # same stem in another class is fine
    return tmp_path


def test_class_folder_round_trip(class_folder):
    data = load_class_folder(class_folder)
    assert isinstance(data, ClassFolderData)
    assert data.class_names == ["apoptotic", "interphase", "mitotic"]
    assert data.names == ["apoptotic/i1", "interphase/i1", "interphase/i2", "mitotic/m1"]
    assert data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.labels, [0, 1, 1, 2])
    assert data.n_files == 4
    assert len(data.images) == 4
    np.testing.assert_array_equal(data.images[2], image(11, (16, 16)).astype(np.float32))
    assert all(i.dtype == np.float32 for i in data.images)


def test_class_folder_checksum_follows_class_names_and_bytes(class_folder):
    first = load_class_folder(class_folder).sha256
    assert load_class_folder(class_folder).sha256 == first
    (class_folder / "mitotic").rename(class_folder / "zz_mitotic")
    renamed = load_class_folder(class_folder).sha256
    assert renamed != first
    write(class_folder / "zz_mitotic" / "m1.tif", image(99, (16, 16)))
    assert load_class_folder(class_folder).sha256 != renamed


def test_class_folder_skips_hidden_folders_and_warns_about_loose_files(class_folder, caplog):
    write(class_folder / ".ipynb_checkpoints" / "x.tif", image(0, (16, 16)))
    write(class_folder / "loose.tif", image(0, (16, 16)))
    with caplog.at_level(logging.WARNING, logger="zoo.data.folder"):
        data = load_class_folder(class_folder)
    assert data.class_names == ["apoptotic", "interphase", "mitotic"]
    assert "loose.tif" in caplog.text


def test_class_folder_odd_shape(class_folder):
    odd = write(class_folder / "mitotic" / "m2.tif", image(0, (16, 20)))
    with pytest.raises(DataError) as excinfo:
        load_class_folder(class_folder)
    message = message_of(excinfo)
    assert str(odd) in message
    assert "(16, 20)" in message
    assert "(16, 16)" in message
    assert str(class_folder / "apoptotic" / "i1.tif") in message


@pytest.mark.parametrize("n_classes", [0, 1])
def test_class_folder_needs_two_classes(tmp_path, n_classes):
    for k in range(n_classes):
        write(tmp_path / f"class{k}" / "x.tif", image(k, (16, 16)))
    with pytest.raises(DataError) as excinfo:
        load_class_folder(tmp_path)
    assert "at least 2 class" in message_of(excinfo)


def test_class_folder_empty_class(class_folder):
    (class_folder / "necrotic").mkdir()
    (class_folder / "necrotic" / "readme.txt").write_text("to do")
    with pytest.raises(DataError) as excinfo:
        load_class_folder(class_folder)
    assert str(class_folder / "necrotic") in message_of(excinfo)


def test_class_folder_z_stack_among_planes(class_folder):
    stack = write(class_folder / "mitotic" / "m2.tif", image(0, (3, 16, 16)))
    with pytest.raises(DataError) as excinfo:
        load_class_folder(class_folder)
    assert str(stack) in message_of(excinfo)
    assert "mixed dimensionality" in message_of(excinfo)


def test_class_folder_missing(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_class_folder(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message_of(excinfo)


# --- load_image_mask_folder keeps its behaviour ---


def test_mask_folder_checksum_is_unchanged(label_folder):
    digest = hashlib.sha256()
    for name in ("a", "b"):
        for part in ("images", "masks"):
            data = (label_folder / part / f"{name}.tif").read_bytes()
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    data = load_image_mask_folder(label_folder)
    assert data.sha256 == digest.hexdigest()
    assert data.n_classes is None
    np.testing.assert_array_equal(data.masks[0], (labels(top=3) != 0).astype(np.uint8))
