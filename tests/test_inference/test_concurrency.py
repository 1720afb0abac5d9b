"""Blended tiles under contention: model calls that finish out of order in several threads give the same output, bit
for bit, as one model thread (Zarr chunks and whole TIFF outputs alike)."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
import tifffile

from tests.packages import batch, channel, space_in, space_out, write_package
from tests.test_inference.test_predict import nuclei_like
from zoo import api
from zoo.inference import model as model_module
from zoo.inference.model import PredictionModel

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def blending_package(tmp_path_factory):
    """A per-pixel ONNX model without a halo: tiles are blended by default."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.Sigmoid())
    example = np.random.default_rng(0).random((1, 1, 32, 32)).astype(np.float32)
    return write_package(
        tmp_path_factory.mktemp("blend") / "package",
        module,
        example,
        [batch(), channel("raw"), space_in("y", (16, 8)), space_in("x", (16, 8))],
        [batch(), channel("a", "b"), space_out("y"), space_out("x")],
        formats=("onnx",),
        trace=True,
        normalize=True,
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    import zarr

    folder = tmp_path_factory.mktemp("inputs")
    image = nuclei_like((150, 140))
    tifffile.imwrite(folder / "a.tif", image)
    group = zarr.open_group(str(folder / "d.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("0", shape=image.shape, chunks=(16, 16), dtype=image.dtype)[:] = image
    group.attrs["multiscales"] = [
        {"version": "0.4", "datasets": [{"path": "0"}], "axes": [{"name": "y"}, {"name": "x"}]}
    ]
    return [folder / "a.tif", folder / "d.ome.zarr"]


def _predict(package, inputs, out, monkeypatch, workers: int, jitter: bool):
    import zarr

    monkeypatch.setattr(model_module, "_workers", lambda weight_format, device: workers)
    if jitter:
        run = PredictionModel.run
        rng = random.Random()

        def late(self, arrays):
            time.sleep(rng.random() * 0.004)  # calls finish in any order
            return run(self, arrays)

        monkeypatch.setattr(PredictionModel, "run", late)
    result = api.predict(package, inputs, out, device="cpu", tile=(24, 24), batch_size=1)
    monkeypatch.undo()
    assert result.exit_code == 0 and "blend" in result.items[0].plan and result.tiles >= 2 * 60
    return (
        tifffile.imread(out / "a_out.tif"),
        np.asarray(zarr.open_group(str(out / "d_out.zarr"), mode="r")["0"]),
    )


@pytest.mark.slow
def test_blended_outputs_are_identical_to_one_model_thread_under_contention(
    blending_package, inputs, tmp_path, monkeypatch
):
    reference = _predict(blending_package, inputs, tmp_path / "reference", monkeypatch, workers=1, jitter=False)
    for run in range(4):
        tiff, chunks = _predict(blending_package, inputs, tmp_path / f"run{run}", monkeypatch, workers=4, jitter=True)
        assert np.array_equal(tiff, reference[0]), f"run {run}: {np.count_nonzero(tiff != reference[0])} differ"
        assert np.array_equal(chunks, reference[1]), f"run {run}: {np.count_nonzero(chunks != reference[1])} differ"
