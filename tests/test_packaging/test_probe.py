"""Probing models someone else made: what the probe finds is checked against what each model really does, by
running the model here on every size of a range, tiling it, batching it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import foreign_models
from tests.conftest import one_torch_thread
from tests.foreign_models import as_predict
from zoo.bioimage.halo import TILING_ATOL, centre_tile_difference
from zoo.errors import InputError
from zoo.packaging.probe import Probe, ProbeError, probe_model, sizes_that_work
from zoo.packaging.source_model import SourceModel


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run faster on one thread than on cores shared with other work."""
    with one_torch_thread():
        yield


def image(*shape: int, seed: int = 1) -> np.ndarray:
    """A smooth normalised image with some noise, as a user's sample would be."""
    grids = np.meshgrid(*(np.linspace(0, 3 * np.pi, n) for n in shape), indexing="ij")
    smooth = np.sin(sum(grids)) * np.cos(grids[-1] / 2)
    return (0.5 + 0.4 * smooth + 0.05 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def keeps_relation(predict, probe: Probe, size: int) -> bool:
    """The model runs on noise of `size` along every spatial axis and its output has the size `probe` predicts."""
    dims = len(probe.spatial)
    shape = {"b": 1, "c": probe.channels, **dict.fromkeys(probe.spatial, size)}
    x = np.random.default_rng(size).standard_normal([shape[a] for a in probe.layout]).astype(np.float32)
    try:
        out = predict(x)
    except Exception:
        return False
    if probe.relation == "none":
        return out.shape == (1, probe.output_channels)
    expected = {"same": size, "scaled": size * probe.scale, "offset": size + probe.offset}[probe.relation]
    spatial = [out.shape[probe.output_layout.index(a)] for a in probe.spatial]
    return out.ndim == dims + 2 and spatial == [expected] * dims


def assert_sizes_are_true(predict, probe: Probe, sizes: range) -> None:
    truth = {s: keeps_relation(predict, probe, s) for s in sizes}
    assert {s: probe.valid(s) for s in sizes} == truth


def assert_tiles_match_whole(predict, probe: Probe, seed: int = 7) -> None:
    """A tile predicted with the probed halo equals the whole-image prediction, on an image the probe never saw;
    one step less was not enough when the probe measured it."""
    core = 8 * probe.step if len(probe.spatial) == 2 else 4 * probe.step
    size = core + 2 * (probe.halo + 2 * probe.step)
    shape = {"b": 1, "c": probe.channels, **dict.fromkeys(probe.spatial, size)}
    x = np.random.default_rng(seed).standard_normal([shape[a] for a in probe.layout]).astype(np.float32)
    whole = predict(x)
    difference = centre_tile_difference(predict, x, whole, probe.layout, probe.halo, core, probe.step)
    assert difference <= TILING_ATOL
    if probe.halo > probe.step:
        assert probe.halo_measurement.max_abs_below > TILING_ATOL / 10


def test_unet_with_four_poolings_takes_multiples_of_16_and_tiles_exactly_with_its_halo():
    model = foreign_models.unet_four_poolings()
    predict = as_predict(model)
    probe = probe_model(predict, image(100, 100))
    assert (probe.layout, probe.sample_axes, probe.channels, probe.spatial) == ("bcyx", "yx", 1, "yx")
    assert (probe.min_size, probe.step) == (16, 16)
    assert_sizes_are_true(predict, probe, range(8, 81))
    assert (probe.relation, probe.scale, probe.offset) == ("same", 1.0, 0)
    assert (probe.output_layout, probe.output_channels, probe.output_dtype) == ("bcyx", 1, "float32")
    assert probe.probability_like and 0.0 <= probe.output_range[0] <= probe.output_range[1] <= 1.0
    assert probe.batch_independent
    assert probe.halo is not None and probe.halo % 16 == 0
    assert_tiles_match_whole(predict, probe)
    assert probe.tile_min_size == 2 * probe.halo + 16
    # the sample's 100x100 is not valid: recorded, with the sizes to crop to
    assert probe.largest_valid(100) == 96
    assert sizes_that_work(probe, 100) == [96, 112]
    assert sizes_that_work(probe, 96) == [96]
    assert probe.calls < 250


def test_a_sample_at_a_valid_size_is_probed_as_it_is():
    predict = as_predict(foreign_models.unet_four_poolings())
    sample = image(64, 80)
    probe = probe_model(predict, sample)
    assert probe.model_input(sample).shape == (1, 1, 64, 80)
    expected = predict(sample[None, None])
    assert probe.output_range == (float(expected.min()), float(expected.max()))
    assert not any("fails on the sample" in note for note in probe.notes)


def test_valid_convolutions_give_an_output_6_px_smaller_and_need_no_halo():
    predict = as_predict(foreign_models.valid_convolutions())
    probe = probe_model(predict, image(64, 64))
    assert (probe.min_size, probe.step) == (7, 1)
    assert_sizes_are_true(predict, probe, range(1, 81))
    assert (probe.relation, probe.offset) == ("offset", -6)
    assert probe.halo == 0 and probe.halo_measurement.max_abs <= TILING_ATOL / 10
    # a tile whose input window is 6 px wider than its output matches the whole image's output
    x = np.random.default_rng(3).standard_normal((1, 1, 60, 60)).astype(np.float32)
    whole, tile = predict(x), predict(x[..., 20:46, 20:46])
    np.testing.assert_allclose(tile, whole[..., 20:40, 20:40], atol=TILING_ATOL)


def test_upsampling_doubles_the_output_and_its_halo_is_exact():
    predict = as_predict(foreign_models.upsampling_x2())
    probe = probe_model(predict, image(40, 40))
    assert (probe.min_size, probe.step) == (1, 1)
    assert_sizes_are_true(predict, probe, range(1, 41))
    assert (probe.relation, probe.scale, probe.offset) == ("scaled", 2.0, 0)
    assert not probe.probability_like and probe.output_range[0] < 0
    halo = probe.halo
    assert halo is not None and probe.halo_measurement.max_abs_below > TILING_ATOL / 10
    x = np.random.default_rng(3).standard_normal((1, 1, 40, 40)).astype(np.float32)
    whole, tile = predict(x), predict(x[..., 10 - halo : 30 + halo, 10 - halo : 30 + halo])
    inner = tile[..., 2 * halo : 2 * halo + 40, 2 * halo : 2 * halo + 40]
    np.testing.assert_allclose(inner, whole[..., 20:60, 20:60], atol=TILING_ATOL)


def test_classifier_takes_exactly_its_input_size_and_gives_probabilities_per_class():
    predict = as_predict(foreign_models.classifier_fixed(size=32, classes=3))
    probe = probe_model(predict, image(32, 32))
    assert (probe.min_size, probe.step) == (32, 0)
    assert_sizes_are_true(predict, probe, range(8, 81))
    assert (probe.relation, probe.output_layout, probe.output_channels) == ("none", "bc", 3)
    assert probe.probability_like
    assert probe.halo is None and probe.tile_min_size == 32
    assert probe.largest_valid(40) == 32 and probe.largest_valid(31) is None
    assert sizes_that_work(probe, 100) == [32]


def test_a_larger_sample_is_cropped_to_the_classifiers_size():
    predict = as_predict(foreign_models.classifier_fixed(size=32, classes=3))
    sample = image(50, 50)
    probe = probe_model(predict, sample)
    expected = predict(sample[None, None, 9:41, 9:41])
    assert probe.output_range == (float(expected.min()), float(expected.max()))


@pytest.mark.parametrize("sample_shape", [(3, 48, 48), (48, 48, 3)])
def test_three_channels_in_two_out_either_channel_position_of_the_sample(sample_shape):
    predict = as_predict(foreign_models.multichannel_net(channels=3))
    sample = image(*sample_shape)
    probe = probe_model(predict, sample)
    assert (probe.layout, probe.channels, probe.output_channels) == ("bcyx", 3, 2)
    assert probe.sample_axes == ("cyx" if sample_shape[0] == 3 else "yxc")
    assert probe.model_input(sample).shape == (1, 3, 48, 48)
    assert (probe.min_size, probe.step, probe.relation) == (1, 1, "same")
    assert_sizes_are_true(predict, probe, range(1, 33))
    assert_tiles_match_whole(predict, probe)


@pytest.mark.parametrize("channels_last", [True, None])
def test_a_channels_last_model_is_found_when_told_or_unsure(channels_last):
    predict = as_predict(foreign_models.channels_last_net(channels=3))
    probe = probe_model(predict, image(48, 48, 3), channels_last=channels_last)
    assert (probe.layout, probe.sample_axes, probe.output_layout, probe.output_channels) == ("byxc", "yxc", "byxc", 2)
    assert_tiles_match_whole(predict, probe)


def test_a_unet_in_3d_takes_cubes_of_multiples_of_4():
    predict = as_predict(foreign_models.unet3d_two_poolings())
    probe = probe_model(predict, image(20, 20, 20))
    assert (probe.layout, probe.sample_axes, probe.spatial) == ("bczyx", "zyx", "zyx")
    assert (probe.min_size, probe.step, probe.relation) == (4, 4, "same")
    assert_sizes_are_true(predict, probe, range(2, 21))
    assert_tiles_match_whole(predict, probe)
    assert probe.tile_min_size == 2 * probe.halo + 4


def test_dropout_left_on_is_refused_with_eval_as_the_fix():
    with pytest.raises(ProbeError, match=r"model\.eval\(\)"):
        probe_model(as_predict(foreign_models.with_dropout()), image(64, 64))


def test_batch_statistics_left_on_are_refused():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4)).train()
    with pytest.raises(ProbeError, match=r"depends on the others in its batch .*model\.eval\(\)") as raised:
        probe_model(as_predict(model), image(64, 64))
    assert "\n" not in str(raised.value)


def test_a_sample_both_readings_of_which_run_asks_for_the_axes():
    predict = as_predict(foreign_models.two_or_three_d(channels=3))
    sample = image(3, 64, 64)
    with pytest.raises(ProbeError, match="--axes cyx or --axes zyx") as raised:
        probe_model(predict, sample)
    assert isinstance(raised.value, InputError) and "\n" not in str(raised.value)
    as_2d = probe_model(predict, sample, layout="bcyx")
    as_3d = probe_model(predict, sample, layout="bczyx")
    assert (as_2d.sample_axes, as_2d.channels, as_2d.spatial) == ("cyx", 3, "yx")
    assert (as_3d.sample_axes, as_3d.channels, as_3d.spatial) == ("zyx", 1, "zyx")


def test_no_reading_that_runs_names_the_shape_and_the_readings():
    with pytest.raises(ProbeError) as raised:
        probe_model(as_predict(foreign_models.unet_four_poolings()), image(2, 64, 64))
    message = str(raised.value)
    assert "(2, 64, 64)" in message and all(f"{axes} as" in message for axes in ("cyx", "yxc", "zyx"))
    assert "\n" not in message


class _TwoOutputs(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, 2 * x


def test_a_model_with_several_outputs_is_one_line_whatever_the_reading():
    model = SourceModel("torchscript", "bcyx", torch.jit.script(_TwoOutputs()))
    with pytest.raises(InputError, match="returns 2 outputs: zoo packages models with one") as raised:
        probe_model(model.predict, image(64, 64))
    assert "\n" not in str(raised.value)


class _Raises(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the weights are not loaded")


def test_a_torchscript_model_that_raises_is_named_by_its_own_error_not_the_interpreters_traceback():
    model = SourceModel("torchscript", "bcyx", torch.jit.script(_Raises()))
    with pytest.raises(ProbeError, match="RuntimeError: the weights are not loaded") as raised:
        probe_model(model.predict, image(64, 64))
    assert "\n" not in str(raised.value)


def test_an_output_with_nan_or_inf_on_the_sample_is_refused_naming_preprocessing():
    model = torch.nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(0.0)
    sample = image(64, 64)
    sample[10, 10] = np.inf  # the model passes it on
    with pytest.raises(ProbeError, match=r"NaN or Inf on the sample \(1 of 4096 output values\).*--preprocessing"):
        probe_model(as_predict(model), sample)


def test_sizes_that_run_with_a_wrong_output_size_are_not_valid():
    """Pooling and upsampling without skip connections: odd sizes run but lose a pixel."""

    def predict(x: np.ndarray) -> np.ndarray:
        even = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
        pooled = even.reshape(*even.shape[:-2], even.shape[-2] // 2, 2, even.shape[-1] // 2, 2).mean(axis=(-3, -1))
        return pooled.repeat(2, axis=-2).repeat(2, axis=-1)

    probe = probe_model(predict, image(64, 64))
    assert (probe.min_size, probe.step, probe.relation) == (2, 2, "same")
    assert_sizes_are_true(predict, probe, range(1, 41))
    assert probe.halo is not None
    assert_tiles_match_whole(predict, probe)


def test_a_model_that_is_not_local_gets_no_halo():
    probe = probe_model(lambda x: x - x.mean(axis=(-2, -1), keepdims=True), image(64, 64))
    assert probe.relation == "same" and probe.halo is None
    assert probe.halo_measurement.max_abs > TILING_ATOL / 10
    assert probe.tile_min_size == probe.min_size


def test_progress_advances_through_the_five_stages():
    class Stages:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def start(self, task: str, total: int | None) -> None:
            self.total = total

        def advance(self, steps: int = 1, **info) -> None:
            self.seen.append(info["stage"])

        def finish(self) -> None:
            self.finished = True

    stages = Stages()
    probe_model(as_predict(foreign_models.multichannel_net()), image(3, 32, 32), progress=stages)
    assert (stages.total, stages.seen, stages.finished) == (5, ["axes", "sizes", "batch", "output", "halo"], True)


def test_rows_give_the_values_found():
    probe = probe_model(as_predict(foreign_models.unet_four_poolings()), image(64, 64))
    rows = dict(probe.rows())
    assert rows["input axes"] == "bcyx" and rows["valid sizes"] == "16 + n·16"
    assert rows["halo"].startswith(f"{probe.halo} px")
    assert rows["model runs"].startswith(f"{probe.calls} in")
