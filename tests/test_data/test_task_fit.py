"""A user's folder is checked against the task it is given to before any training: layout, mask values,
empty masks, image size and colour. Tiny synthetic TIFF folders; assertions on the error type and the
values the message names."""

import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile

from zoo.data.checks import MinSize
from zoo.data.folder import (
    load_class_folder,
    load_image_folder,
    load_image_label_folder,
    load_image_mask_folder,
    load_image_target_folder,
)
from zoo.errors import DataError, InputError
from zoo.trainers import default_config, get_trainer


def write(path: Path, array: np.ndarray, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array, **options)
    return path


def image(seed: int, shape=(24, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, size=shape, dtype=np.uint16)


def mask(shape=(24, 32), value: int = 1, dtype=np.uint8) -> np.ndarray:
    result = np.zeros(shape, dtype=dtype)
    result[..., 4:12, 6:18] = value
    return result


def pairs(root: Path, masks: list[np.ndarray], partner: str = "masks", shape=None) -> Path:
    for i, m in enumerate(masks):
        write(root / "images" / f"img{i}.tif", image(i, shape or m.shape))
        write(root / partner / f"img{i}.tif", m)
    return root


def class_folder(root: Path, shape=(16, 16), classes=("alive", "dead")) -> Path:
    for k, name in enumerate(classes):
        for i in range(2):
            write(root / name / f"{name}{i}.tif", image(10 * k + i, shape))
    return root


def message(excinfo) -> str:
    return str(excinfo.value)


def splits_for(trainer: str, folder: Path, tmp_path: Path, **overrides):
    """What the trainer would train on, without training: its data are read and checked as in `zoo train`."""
    config = default_config(trainer, data={"folder": folder}, out=tmp_path / "run", device="cpu", **overrides)
    return get_trainer(trainer).load_splits(config)


# --- layout: a folder laid out for another task -------------------------------------------------------


@pytest.mark.parametrize(("partner", "trainer"), [("masks", "unet2d"), ("targets", "care2d")])
def test_classifier_refuses_a_pair_layout(tmp_path, partner, trainer):
    pairs(tmp_path, [mask(), mask(), mask()], partner=partner)
    with pytest.raises(DataError) as excinfo:
        load_class_folder(tmp_path)
    assert str(tmp_path) in message(excinfo)
    assert "images/" in message(excinfo) and f"{partner}/" in message(excinfo)
    assert trainer in message(excinfo)


def test_classifier2d_trainer_refuses_a_segmentation_folder(tmp_path):
    pairs(tmp_path, [mask(), mask(), mask()])
    with pytest.raises(InputError) as excinfo:
        splits_for("classifier2d", tmp_path, tmp_path)
    assert "masks/" in message(excinfo)


@pytest.mark.parametrize("loader", [load_image_mask_folder, load_image_label_folder, load_image_target_folder])
def test_pair_loaders_name_a_classification_layout(tmp_path, loader):
    class_folder(tmp_path, classes=("alive", "dead", "dividing"))
    with pytest.raises(DataError) as excinfo:
        loader(tmp_path)
    assert "3 sub-folders" in message(excinfo)
    assert "alive/" in message(excinfo) and "dividing/" in message(excinfo)
    assert "classifier2d" in message(excinfo)


def test_segmentation_refuses_a_restoration_layout(tmp_path):
    pairs(tmp_path, [image(5), image(6), image(7)], partner="targets")
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    assert "targets/" in message(excinfo) and "care2d" in message(excinfo)


def test_restoration_refuses_a_segmentation_layout(tmp_path):
    pairs(tmp_path, [mask(), mask(), mask()])
    with pytest.raises(DataError) as excinfo:
        load_image_target_folder(tmp_path)
    assert "masks/" in message(excinfo) and "targets/" in message(excinfo)
    assert "unet2d" in message(excinfo)


def test_noisy_images_loader_names_class_subfolders(tmp_path):
    class_folder(tmp_path)
    with pytest.raises(DataError) as excinfo:
        load_image_folder(tmp_path)
    assert "alive/" in message(excinfo) and "dead/" in message(excinfo)
    assert "classifier2d" in message(excinfo)


# --- K-class labels -----------------------------------------------------------------------------------


def test_multiclass_refuses_0_255_masks_naming_the_values_and_the_fix(tmp_path):
    pairs(tmp_path, [mask(value=255) for _ in range(3)])
    with pytest.raises(DataError) as excinfo:
        load_image_label_folder(tmp_path)
    assert str(tmp_path / "masks") in message(excinfo)
    assert "3 masks" in message(excinfo)
    assert "2 distinct values [0, 255]" in message(excinfo)
    assert "divide them by 255" in message(excinfo)


def test_unet2d_multiclass_trainer_refuses_0_255_masks(tmp_path):
    pairs(tmp_path, [mask((96, 96), value=255) for _ in range(3)])
    with pytest.raises(InputError) as excinfo:
        splits_for("unet2d-multiclass", tmp_path, tmp_path)
    assert "[0, 255]" in message(excinfo)


def test_multiclass_refuses_labels_with_a_gap(tmp_path):
    labels = mask(value=3)
    labels[20:, :4] = 1
    pairs(tmp_path, [labels, labels.copy()])
    with pytest.raises(DataError) as excinfo:
        load_image_label_folder(tmp_path)
    assert "3 distinct values [0, 1, 3]" in message(excinfo)
    assert "[2] never occur" in message(excinfo)
    assert "0..2" in message(excinfo)


def test_multiclass_refuses_masks_of_background_only(tmp_path):
    pairs(tmp_path, [np.zeros((24, 32), np.uint8) for _ in range(4)])
    for n_classes in (None, 3):
        with pytest.raises(DataError) as excinfo:
            load_image_label_folder(tmp_path, n_classes=n_classes)
        assert "all 4 masks" in message(excinfo)
        assert str(tmp_path / "masks") in message(excinfo)


def test_multiclass_warns_about_many_classes_and_background_only_masks(tmp_path, caplog):
    many = np.arange(24 * 32, dtype=np.uint8).reshape(24, 32) % 20  # classes 0..19
    pairs(tmp_path, [many, many.copy(), np.zeros((24, 32), np.uint8)])
    with caplog.at_level(logging.WARNING, logger="zoo.data.folder"):
        data = load_image_label_folder(tmp_path)
    assert data.n_classes == 20
    assert len(data.warnings) == 2
    many_classes, background_only = data.warnings
    assert "20 classes" in many_classes and "unet2d" in many_classes
    assert "1 of 3 masks" in background_only and "img2.tif" in background_only
    assert all(w in caplog.text for w in data.warnings)


# --- binary masks -------------------------------------------------------------------------------------


def test_binary_refuses_all_empty_masks(tmp_path):
    pairs(tmp_path, [np.zeros((24, 32), np.uint8) for _ in range(3)])
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    assert "all 3 masks" in message(excinfo)
    assert str(tmp_path / "masks") in message(excinfo)


def test_binary_warns_about_a_few_empty_masks_and_keeps_the_warning(tmp_path, caplog):
    pairs(tmp_path, [mask(), np.zeros((24, 32), np.uint8), mask(), mask()])
    with caplog.at_level(logging.WARNING, logger="zoo.data.folder"):
        data = load_image_mask_folder(tmp_path)
    assert data.n_files == 4
    assert len(data.warnings) == 1
    assert "1 of 4 masks" in data.warnings[0] and "img1.tif" in data.warnings[0]
    assert data.warnings[0] in caplog.text


def test_binary_refuses_masks_without_background(tmp_path):
    pairs(tmp_path, [image(20) + 1 for _ in range(3)])  # intensity images in masks/
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    assert "3 masks" in message(excinfo)
    assert str(tmp_path / "masks") in message(excinfo)


def test_binary_refuses_fractional_masks(tmp_path):
    probability = mask().astype(np.float32) * 0.75
    pairs(tmp_path, [mask(), probability])
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    assert str(tmp_path / "masks" / "img1.tif") in message(excinfo)
    assert "0.75" in message(excinfo)


def test_binary_warns_when_masks_hold_class_labels(tmp_path):
    labels = mask(value=2)
    labels[20:, :4] = 1
    pairs(tmp_path, [labels, labels.copy()])
    data = load_image_mask_folder(tmp_path)
    assert len(data.warnings) == 1
    assert "3 distinct values [0, 1, 2]" in data.warnings[0]
    assert "unet2d-multiclass" in data.warnings[0]


def test_unet3d_treats_masks_as_binary_beyond_256_labels(tmp_path):
    for i in range(3):
        instances = np.zeros((32, 32, 32), np.uint16)
        instances[4:12, 4:12, 4:12] = 300 + i  # object numbers, not classes
        write(tmp_path / "images" / f"v{i}.tif", image(i, (32, 32, 32)))
        write(tmp_path / "masks" / f"v{i}.tif", instances)
    splits = splits_for("unet3d", tmp_path, tmp_path)
    assert {int(v) for m in splits.train_masks for v in np.unique(m)} <= {0, 1}


def test_trainer_splits_carry_the_data_warnings(tmp_path):
    pairs(tmp_path, [mask((96, 96)), np.zeros((96, 96), np.uint8), mask((96, 96)), mask((96, 96))])
    splits = splits_for("unet2d", tmp_path, tmp_path)
    assert len(splits.data_warnings) == 1
    assert "1 of 4 masks" in splits.data_warnings[0]


# --- image size ---------------------------------------------------------------------------------------


def test_images_smaller_than_the_training_patch_are_refused(tmp_path):
    pairs(tmp_path, [mask((32, 32)) for _ in range(3)])
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path, min_size=MinSize.for_patches(96, 3))
    assert str(tmp_path / "images" / "img0.tif") in message(excinfo)
    assert "32x32 px" in message(excinfo)
    assert "minimum of 96 px" in message(excinfo)
    assert "3 of 3 images are smaller than 96 px" in message(excinfo)
    assert "96x96 px" in message(excinfo)


@pytest.mark.parametrize(
    ("trainer", "partner", "minimum"),
    [("unet2d", "masks", 96), ("unet2d-multiclass", "masks", 96), ("care2d", "targets", 96), ("n2v2d", None, 96)],
)
def test_trainers_refuse_images_below_their_minimum(tmp_path, trainer, partner, minimum):
    if partner is None:
        for i in range(3):
            write(tmp_path / f"img{i}.tif", image(i, (32, 32)))
    else:
        pairs(tmp_path, [mask((32, 32)) for _ in range(3)], partner=partner)
    with pytest.raises(InputError) as excinfo:
        splits_for(trainer, tmp_path, tmp_path)
    assert "img0.tif" in message(excinfo)
    assert f"minimum of {minimum} px" in message(excinfo)


def test_unet3d_refuses_thin_z_stacks(tmp_path):
    for i in range(3):
        write(tmp_path / "images" / f"v{i}.tif", image(i, (8, 64, 64)))
        write(tmp_path / "masks" / f"v{i}.tif", mask((8, 64, 64)))
    with pytest.raises(InputError) as excinfo:
        splits_for("unet3d", tmp_path, tmp_path)
    assert "v0.tif" in message(excinfo)
    assert "8x64x64 px" in message(excinfo) and "minimum of 32 px" in message(excinfo)


def test_classifier_refuses_images_below_its_down_sampling(tmp_path):
    class_folder(tmp_path, shape=(4, 4))
    with pytest.raises(InputError) as excinfo:
        splits_for("classifier2d", tmp_path, tmp_path)
    assert "alive0.tif" in message(excinfo)
    assert "minimum of 8 px" in message(excinfo)


def test_images_at_the_minimum_are_accepted(tmp_path):
    pairs(tmp_path, [mask((96, 96)) for _ in range(3)])
    splits = splits_for("unet2d", tmp_path, tmp_path)
    assert splits.provenance["n_files"] == 3


# --- colour -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["images", "masks"])
def test_colour_files_are_refused_naming_rgb(tmp_path, part):
    pairs(tmp_path, [mask(), mask(), mask()])
    colour = np.stack([image(1), image(2), image(3)], axis=-1)
    if part == "masks":
        colour = np.stack([mask(), mask(value=0), mask()], axis=-1)
    path = write(tmp_path / part / "img1.tif", colour, photometric="rgb")
    with pytest.raises(DataError) as excinfo:
        load_image_mask_folder(tmp_path)
    assert str(path) in message(excinfo)
    assert "RGB" in message(excinfo)
    assert "(24, 32, 3)" in message(excinfo)


def test_classifier_refuses_colour_images(tmp_path):
    class_folder(tmp_path)
    path = write(tmp_path / "dead" / "dead9.tif", np.stack([image(1, (16, 16))] * 2 + [image(2, (16, 16))], -1))
    with pytest.raises(DataError) as excinfo:
        load_class_folder(tmp_path)
    assert str(path) in message(excinfo) and "RGB" in message(excinfo)


def test_grey_saved_as_rgb_is_read_as_one_channel_with_a_warning(tmp_path):
    pairs(tmp_path, [mask(), mask(), mask()])
    grey = image(1)
    path = write(tmp_path / "images" / "img1.tif", np.stack([grey, grey, grey], axis=-1), photometric="rgb")
    write(tmp_path / "masks" / "img2.tif", np.stack([mask(value=255)] * 3, axis=-1), photometric="rgb")
    data = load_image_mask_folder(tmp_path)
    np.testing.assert_array_equal(data.images[1], grey.astype(np.float32))
    np.testing.assert_array_equal(data.masks[2], mask())
    assert len(data.warnings) == 1
    assert "2 grey file(s)" in data.warnings[0] and str(path) in data.warnings[0]


# --- the command line ---------------------------------------------------------------------------------


def test_zoo_train_exits_2_on_data_for_another_task(tmp_path):
    from typer.testing import CliRunner

    from zoo.cli import app

    pairs(tmp_path / "data", [mask((96, 96), value=255) for _ in range(3)])
    result = CliRunner().invoke(
        app,
        ["train", "--trainer", "unet2d-multiclass", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")],
    )
    assert result.exit_code == 2
    assert "255" in result.output
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
