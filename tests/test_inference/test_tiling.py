"""Tiling arithmetic: valid sizes, padding index maps, plans that cover the image exactly once."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.errors import InputError
from zoo.inference.tiling import AxisTiling, ValidSizes, plan_axis, source_indices


def test_valid_sizes_round_to_min_plus_n_steps():
    sizes = ValidSizes(36, 4)
    assert (sizes.at_least(10), sizes.at_least(37), sizes.at_least(40)) == (36, 40, 40)
    assert (sizes.at_most(35), sizes.at_most(43)) == (None, 40)
    fixed = ValidSizes(512)
    assert (fixed.at_least(100), fixed.at_least(513), fixed.at_most(600)) == (512, None, 512)


def test_valid_sizes_intersect_for_inputs_tiled_in_lock_step():
    assert ValidSizes(32, 16).intersect(ValidSizes(40, 8)) == ValidSizes(48, 16)
    assert ValidSizes(10, 4).intersect(ValidSizes(11, 4)) is None
    assert ValidSizes(512).intersect(ValidSizes(32, 16)) == ValidSizes(512)


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "edge"])
@pytest.mark.parametrize("length", [1, 2, 5])
def test_padding_index_map_matches_numpy_pad(mode, length):
    if mode == "reflect" and length == 1:
        pytest.skip("numpy cannot reflect a single element")
    data = np.arange(length) * 10
    pad = 13
    expected = np.pad(data, pad, mode=mode)
    assert (data[source_indices(-pad, length + pad, length, mode)] == expected).all()


def test_constant_padding_marks_outside_positions():
    assert source_indices(-2, 3, 2, "constant").tolist() == [-1, -1, 0, 1, -1]


@pytest.mark.parametrize("length", [36, 100, 257, 1000])
@pytest.mark.parametrize("target", [36, 64, 200])
def test_plan_covers_every_pixel_once_with_the_halo_inside_each_window(length, target):
    sizes = ValidSizes(36, 4)
    tiling = plan_axis("y", length, sizes, 16, 4, target=target)
    owned = np.zeros(length, dtype=int)
    for k in range(tiling.count):
        lo, hi = tiling.inner(k)
        start, stop = tiling.window(k)
        owned[lo:hi] += 1
        assert sizes.is_valid(stop - start)
        if sizes.is_valid(length):  # a size the model takes: windows inside the image, on the pooling grid
            assert 0 <= start and stop <= length and start % 4 == 0
            assert start <= max(lo - 16, 0) and stop >= min(hi + 16, length)
            assert (start, stop) == (0, length) if tiling.count == 1 else True
        else:  # padded by the halo at the borders
            assert start <= lo - 16 and stop >= hi + 16
            assert (start + 16) % 4 == 0 if tiling.count > 1 else start == -16
    assert (owned == 1).all()


def test_an_image_the_model_takes_whole_is_one_unpadded_window():
    """A fixed 512 model with a halo of 32, on a 512 image: one call on the image as it is (as bioimageio.core's
    test run does), not four padded tiles."""
    tiling = plan_axis("y", 512, ValidSizes(512), 32, 64, target=576)
    assert (tiling.count, tiling.window(0)) == (1, (0, 512))
    assert plan_axis("y", 512, ValidSizes(512), 32, 64, whole=True).window(0) == (0, 512)
    assert plan_axis("y", 300, ValidSizes(512), 32, 64, target=576).window(0) == (-32, 480)  # padded up to 512


def test_plan_balances_tiles_and_aligns_strides():
    tiling = plan_axis("y", 4096, ValidSizes(72, 8), 32, 8, target=1088)
    assert (tiling.count, tiling.tile, tiling.stride) == (4, 1088, 1024)


def test_tile_too_small_for_the_halo_names_the_least_size():
    with pytest.raises(InputError, match="36"):
        plan_axis("y", 100, ValidSizes(8, 4), 16, 4, requested=32)


def test_whole_image_on_a_fixed_size_model_that_is_too_small_says_to_tile():
    with pytest.raises(InputError, match="--tile auto"):
        plan_axis("y", 600, ValidSizes(512), 32, 64, whole=True)


def test_blend_weights_sum_to_one_across_tiles():
    tiling = AxisTiling("x", 300, 164, 100, 0, overlap=32)
    total = np.zeros(300)
    for k in range(tiling.count):
        lo, hi = tiling.kept(k)
        total[lo:hi] += tiling.blend_weights(k)
    assert np.allclose(total, 1)


def test_whole_axis_in_one_window_when_it_exceeds_the_target_only_by_rounding():
    # 70 + 2·16 = 102 is no valid size (36 + n·4): one window of 104, not two
    tiling = plan_axis("x", 70, ValidSizes(36, 4), 16, 4, target=102)
    assert (tiling.count, tiling.tile) == (1, 104)


@pytest.mark.parametrize("length", [30, 101, 257])
def test_context_after_each_tile_covers_a_cropping_model(length):
    """halo 0 before, 5 after (a model that crops 5 px): every window reaches 5 px past what its tile owns."""
    sizes = ValidSizes(8, 2)
    tiling = plan_axis("y", length, sizes, 0, 2, requested=24, halo_after=5)
    owned = np.zeros(length, dtype=int)
    for k in range(tiling.count):
        lo, hi = tiling.inner(k)
        start, stop = tiling.window(k)
        owned[lo:hi] += 1
        assert sizes.is_valid(stop - start) and start <= lo and stop >= min(hi + 5, length)
        if sizes.is_valid(length):  # inside the image: the last window ends at its border
            assert 0 <= start and stop <= length
        else:
            assert start == lo and stop >= hi + 5
    assert (owned == 1).all() and tiling.after == 5


def test_neighbours_are_the_tiles_whose_blended_range_reaches_in():
    from zoo.inference.tiling import TilePlan

    plan = TilePlan((AxisTiling("y", 300, 164, 100, 0, overlap=32), AxisTiling("x", 100, 100, 100, 0)), batch=2)
    tiles = plan.tiles()
    assert len(tiles) == 6 and plan.index(1, (2, 0)) == 5
    assert plan.neighbours(tiles[0]) == [0, 1] and plan.neighbours(tiles[4]) == [3, 4, 5]
