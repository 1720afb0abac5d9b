"""The trainers of issue 6 on tiny data: what each records, resume, defaults, and the whole chain per trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import tiny_train_config
from zoo import api
from zoo.config import DataConfig
from zoo.errors import DataError, InputError
from zoo.progress import SilentProgress
from zoo.trainers import TRAINERS, default_config, default_package_config
from zoo.trainers.checkpoint import load_checkpoint

NEW_TRAINERS = ["unet2d-multiclass", "care2d", "n2v2d", "classifier2d", "unet3d"]


def tiny(trainer: str, out, **overrides):
    values = dict(trainer=trainer)
    if trainer == "unet3d":
        values.update(data=DataConfig(n_images=8, image_size=64), patch_size=16, batch_size=1)
    if trainer == "classifier2d":
        values.update(data=DataConfig(n_images=12, image_size=32))
    values.update(overrides)
    return tiny_train_config(out, **values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each new trainer trained for one epoch on tiny synthetic data."""
    return {name: api.train(tiny(name, tmp_path_factory.mktemp(name))) for name in NEW_TRAINERS}


EXPECTED = {
    "unet2d-multiclass": ("multiclass", "test_mean_iou"),
    "care2d": ("restoration", "test_psnr_gain"),
    "n2v2d": ("restoration", "test_psnr_gain"),
    "classifier2d": ("classification", "test_accuracy"),
    "unet3d": ("segmentation", "test_iou"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_TRAINERS)
def test_trainer_records_its_task_metrics_and_a_model_of_the_right_shape(trained, name):
    result = trained[name]
    checkpoint = load_checkpoint(result.checkpoint)
    task = checkpoint.task_spec
    kind, metric = EXPECTED[name]
    assert task.kind == kind
    assert metric in result.metrics and np.isfinite(result.metrics[metric])
    assert len(checkpoint.history) == result.epochs_run == 1
    image = checkpoint.sample["image"].numpy()
    model = checkpoint.build_model()
    with torch.no_grad():
        output = model(torch.from_numpy(image[None, None].copy())).numpy()
    if task.dense:
        assert output.shape[2:] == image.shape  # same spatial size in and out
        assert output.shape[1] == len(task.output_channels)
    else:
        assert output.shape == (1, len(task.output_channels))
        assert np.allclose(output.sum(), 1, atol=1e-5)  # softmax probabilities
    if kind == "multiclass":
        assert np.allclose(output.sum(axis=1), 1, atol=1e-5)
    if name == "unet3d":
        assert task.spatial == "zyx" and image.ndim == 3


def test_classifier_records_a_confusion_matrix_over_the_test_split(trained):
    checkpoint = load_checkpoint(trained["classifier2d"].checkpoint)
    matrix = np.array(checkpoint.task["extra"]["confusion_matrix"])
    k = len(checkpoint.task_spec.output_channels)
    assert matrix.shape == (k, k)
    assert matrix.sum() == checkpoint.data["split"]["test"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(checkpoint.metrics["test_accuracy"])


class StopAtEpoch(SilentProgress):
    """Interrupts training like Ctrl-C at the first step of `epoch`."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def advance(self, steps: int = 1, **info) -> None:
        if info.get("epoch") == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    """Interrupt a 3-epoch run in its third epoch, resume: history and weights equal a straight run (CPU, seeded)."""
    straight = api.train(tiny("care2d", tmp_path / "straight", epochs=3))
    with pytest.raises(KeyboardInterrupt):
        api.train(tiny("care2d", tmp_path / "resumed", epochs=3), StopAtEpoch(3))
    assert not (tmp_path / "resumed" / "checkpoint.pt").exists()
    resumed = api.train(tiny("care2d", tmp_path / "resumed", epochs=3, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for a, b in zip(straight.history, resumed.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    first, second = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for key, value in first.state_dict.items():
        assert torch.allclose(value.float(), second.state_dict[key].float(), atol=1e-5), key
    assert second.environment["resumed_after_epoch"] == "2"


def test_resume_with_other_settings_is_refused(tmp_path):
    api.train(tiny("care2d", tmp_path, epochs=1))
    with pytest.raises(InputError, match="lr"):
        api.train(tiny("care2d", tmp_path, epochs=2, lr=0.5, resume=True))


def test_default_configs_follow_the_trainer():
    config = default_config("unet3d")
    assert (config.depth, config.patch_size, str(config.out)) == (2, 32, "runs/unet3d")
    quick = default_config("classifier2d", quick=True, epochs=5)
    assert quick.epochs == 5 and quick.data.n_images < default_config("classifier2d").data.n_images
    assert default_package_config("care2d").name != default_package_config("unet2d").name
    assert set(NEW_TRAINERS) <= set(TRAINERS)


def test_classifier_images_must_fit_the_network(tmp_path):
    with pytest.raises(DataError, match="multiple of 8"):
        api.train(tiny("classifier2d", tmp_path, data=DataConfig(n_images=12, image_size=36), depth=3))


def test_n2v_blind_spot_hides_pixels_behind_neighbours():
    from zoo.trainers.restoration import N2v2dTrainer

    patch = np.arange(32 * 32, dtype=np.float32).reshape(32, 32)  # every value unique
    masked, target = N2v2dTrainer().blind_spot(np.random.default_rng(0), patch)
    hidden = target[1] == 1
    assert hidden.sum() >= 1
    assert np.array_equal(target[0], patch)
    assert np.all(masked[hidden] != patch[hidden])  # never the pixel itself
    assert np.array_equal(masked[~hidden], patch[~hidden])


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_TRAINERS)
def test_package_of_every_trainer_passes_zoo_and_the_reference(trained, name, tmp_path):
    """The tiny model of each trainer, packaged (validated by zoo while built), then `bioimageio test`."""
    packaged = api.package(trained[name].checkpoint, tmp_path)
    assert packaged.report.status == "passed"
    assert packaged.report.deepimagej_verdict == "runs"
    from bioimageio.core import test_description

    summary = test_description(packaged.zip_path)
    assert summary.status == "passed", summary.format()
