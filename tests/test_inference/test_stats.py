"""Statistics over the whole image, block by block: equal to numpy's over the whole array."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.inference.axes import ArrayImage
from zoo.inference.stats import compute_statistics, iter_blocks

AXES = ("batch", "channel", "y", "x")


def measures(member="raw", axes=("y", "x")):
    from bioimageio.core.axis import AxisId
    from bioimageio.core.common import MemberId
    from bioimageio.core.stat_measures import SampleMean, SampleQuantile, SampleStd

    ids = tuple(AxisId(a) for a in axes)
    return [
        SampleMean(member_id=MemberId(member), axes=ids),
        SampleStd(member_id=MemberId(member), axes=ids),
        SampleQuantile(member_id=MemberId(member), axes=ids, q=0.03),
        SampleQuantile(member_id=MemberId(member), axes=ids, q=0.998),
    ]


def test_blocks_cover_the_image_once():
    image = ArrayImage(np.zeros((2, 3, 50, 7)), AXES)
    seen = np.zeros((2, 3, 50, 7), dtype=int)
    for region in iter_blocks(image, 64):
        seen[tuple(slice(*region[a]) for a in AXES)] += 1
    assert (seen == 1).all()


@pytest.mark.parametrize("budget", [1 << 30, 4096], ids=["in-memory", "streamed"])
def test_statistics_equal_numpy_over_the_whole_image(budget):
    rng = np.random.default_rng(0)
    data = rng.gamma(2.0, 50.0, size=(2, 2, 61, 47)) + rng.integers(0, 3, size=(2, 2, 1, 1)) * 100
    data = data.astype(np.float32)
    values = compute_statistics(measures(), {"raw": [ArrayImage(data, AXES)]}, budget)
    mean, std, low, high = (values[m] for m in measures())
    assert mean.dims == ("batch", "channel")
    as64 = data.astype(np.float64)
    np.testing.assert_allclose(mean.data, as64.mean(axis=(2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std.data, as64.std(axis=(2, 3)), rtol=1e-5)
    np.testing.assert_allclose(low.data, np.quantile(as64, 0.03, axis=(2, 3)), rtol=1e-6)
    np.testing.assert_allclose(high.data, np.quantile(as64, 0.998, axis=(2, 3)), rtol=1e-6)
