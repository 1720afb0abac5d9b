from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import tiny_train_config
from zoo.errors import DataError, InputError
from zoo.trainers import get_trainer
from zoo.trainers.architectures.unet2d import UNet2d
from zoo.trainers.checkpoint import load_checkpoint
from zoo.trainers.datasets import load_segmentation_splits, normalize_image
from zoo.trainers.unet2d import iou, resolve_device


def test_iou_of_known_masks():
    truth = np.zeros((4, 4), np.uint8)
    truth[:2] = 1
    prediction = np.zeros((4, 4), np.float32)
    prediction[:1] = 0.9
    assert iou(prediction, truth) == pytest.approx(0.5)
    assert iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0


def test_normalize_image_gives_zero_mean_unit_variance():
    image = np.random.default_rng(0).uniform(100, 300, (32, 32))
    normalized = normalize_image(image)
    assert normalized.dtype == np.float32
    assert abs(normalized.mean()) < 1e-5 and abs(normalized.std() - 1) < 1e-4


def test_unet_keeps_spatial_size_for_valid_sizes():
    model = UNet2d(base_channels=4, depth=2).eval()
    with torch.no_grad():
        y = model(torch.zeros(2, 1, 20, 28))
    assert y.shape == (2, 1, 20, 28)
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_checkpoint_round_trip(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    assert checkpoint.trainer == "unet2d"
    assert {"test_iou", "best_val_loss"} <= set(checkpoint.metrics)
    assert checkpoint.data["source"] == "synthetic" and checkpoint.data["seed"] == 0
    assert len(checkpoint.history) == 1 and {"train_loss", "val_loss"} <= set(checkpoint.history[0])
    model = checkpoint.build_model()
    assert not model.training


@pytest.mark.slow
def test_training_is_reproducible_with_a_seed(tmp_path):
    trainer = get_trainer("unet2d")
    from zoo.progress import SilentProgress

    a = trainer.train(tiny_train_config(tmp_path / "a", data={"n_images": 8, "image_size": 32}), SilentProgress())
    b = trainer.train(tiny_train_config(tmp_path / "b", data={"n_images": 8, "image_size": 32}), SilentProgress())
    assert a.history == b.history


def test_splits_are_disjoint_and_cover_all_images():
    from zoo.config import DataConfig

    splits = load_segmentation_splits(DataConfig(n_images=20, image_size=32), multiple_of=8)
    assert len(splits.train_images) + len(splits.val_images) + len(splits.test_images) == 20
    assert len(splits.test_images) == 3 and len(splits.val_images) == 3


def test_images_smaller_than_the_network_allows_are_a_data_error():
    from zoo.config import DataConfig

    with pytest.raises(DataError, match="smaller than 64"):
        load_segmentation_splits(DataConfig(n_images=8, image_size=32), multiple_of=64)


def test_cuda_without_cuda_is_an_input_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InputError, match="--device cuda"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


def test_unknown_trainer():
    with pytest.raises(InputError, match="unet2d"):
        get_trainer("resnet")


def test_trains_on_a_folder_of_tiff_pairs(tmp_path):
    import tifffile

    from zoo import api
    from zoo.config import DataConfig
    from zoo.data.synthetic import make_nuclei

    images, masks = make_nuclei(6, (32, 32), seed=3)
    for i, (image, mask) in enumerate(zip(images, masks)):
        (tmp_path / "data" / "images").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "masks").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(tmp_path / "data" / "images" / f"cell{i}.tif", image)
        tifffile.imwrite(tmp_path / "data" / "masks" / f"cell{i}.tif", mask * 255)
    config = tiny_train_config(tmp_path / "run", data=DataConfig(folder=tmp_path / "data"), patch_size=32)
    result = api.train(config)
    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint.data["source"] == "folder" and checkpoint.data["n_files"] == 6
    assert len(checkpoint.data["sha256"]) == 64


def test_folder_with_an_unpaired_image_is_a_cli_usage_error(tmp_path):
    import tifffile
    from typer.testing import CliRunner

    from zoo.cli import app

    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "masks").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "data" / "images" / "lonely.tif", np.zeros((32, 32), np.float32))
    result = CliRunner().invoke(
        app, ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--quick"]
    )
    assert result.exit_code == 2
    assert "lonely" in result.output
