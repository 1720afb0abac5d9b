"""Predictions never replace an existing output without --overwrite; a Zarr output resumes instead."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tests.packages import batch, channel, space_in, space_out, write_package
from zoo import api
from zoo.errors import InputError


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    import torch

    module = torch.nn.Conv2d(1, 1, 3, padding=1)
    example = np.random.default_rng(0).random((1, 1, 32, 32)).astype(np.float32)
    return write_package(
        tmp_path_factory.mktemp("overwrite") / "package",
        module,
        example,
        [batch(), channel("raw"), space_in("y", (16, 1)), space_in("x", (16, 1))],
        [batch(), channel("out"), space_out("y", halo=1), space_out("x", halo=1)],
    )


def test_an_existing_tiff_is_refused_untouched_and_replaced_with_overwrite(package, tmp_path):
    image = tmp_path / "cells.tif"
    tifffile.imwrite(image, np.random.default_rng(1).random((40, 48)).astype(np.float32))
    out = tmp_path / "out"
    first = api.predict(package, [str(image)], out, progress=False)
    [written] = first.items[0].outputs.values()
    before = written.read_bytes()
    written.write_bytes(b"the user's edited result")
    with pytest.raises(InputError, match="--overwrite"):
        api.predict(package, [str(image)], out, progress=False)
    assert written.read_bytes() == b"the user's edited result"
    api.predict(package, [str(image)], out, overwrite=True, progress=False)
    assert written.read_bytes() == before
