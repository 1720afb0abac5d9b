"""Hostile inputs to prediction: NaN and infinite pixels are counted and named, NaN in the outputs is measured and an
output that is NaN throughout exits 1 (written anyway); --memory-limit bounds a run for real: refused before any
compute when the smallest window does not fit, and the resident memory a run adds stays under it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from tests.packages import batch, channel, space_in, space_out, write_package
from tests.test_inference.test_predict import nuclei_like
from zoo import api
from zoo.cli import app

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
runner = CliRunner()


def per_pixel_package(folder, *, normalize: bool = True, size=(16, 8)):
    """A 1x1 convolution (each output pixel sees its input pixel only); `size` an int for a fixed input size."""
    torch.manual_seed(0)
    side = size if isinstance(size, int) else 32
    example = np.random.default_rng(0).random((1, 1, side, side)).astype(np.float32)
    return write_package(
        folder,
        torch.nn.Conv2d(1, 1, 1),
        example,
        [batch(), channel("raw"), space_in("y", size), space_in("x", size)],
        [batch(), channel("out"), space_out("y"), space_out("x")],
        formats=("onnx",),
        normalize=normalize,
        trace=True,
    )


@pytest.fixture(scope="module")
def normalizing(tmp_path_factory):
    return per_pixel_package(tmp_path_factory.mktemp("normalizing") / "package")


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return per_pixel_package(tmp_path_factory.mktemp("raw") / "package", normalize=False)


def poisoned(shape=(90, 80), nan=100, inf=5):
    image = nuclei_like(shape)
    flat = image.reshape(-1)
    flat[np.random.default_rng(1).choice(flat.size, nan + inf, replace=False)] = [np.nan] * nan + [np.inf] * inf
    return image


def write_zarr(path, image):
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", shape=image.shape, chunks=(32, 32), dtype=image.dtype)[:] = image
    group.attrs["multiscales"] = [
        {"version": "0.4", "datasets": [{"path": "0"}], "axes": [{"name": "y"}, {"name": "x"}]}
    ]
    return path


def test_nan_and_inf_input_pixels_are_counted_once_over_overlapping_tiles(normalizing, tmp_path):
    import zarr

    tifffile.imwrite(tmp_path / "bad.tif", poisoned())
    tifffile.imwrite(tmp_path / "good.tif", nuclei_like((90, 80)))
    write_zarr(tmp_path / "bad.ome.zarr", poisoned())
    inputs = [tmp_path / "bad.tif", tmp_path / "good.tif", tmp_path / "bad.ome.zarr"]
    result = api.predict(normalizing, inputs, tmp_path / "out", device="cpu", tile=(32, 32))
    bad, good, bad_zarr = result.items
    assert "blend" in bad.plan and bad.tiles > 9  # overlapping windows: each pixel counted once all the same
    assert bad.nonfinite_inputs == {"raw": 105} and bad_zarr.nonfinite_inputs == {"raw": 105}
    assert good.nonfinite_inputs == {"raw": 0} and good.nan_share == {"out": 0.0}
    # the normalisation's mean is NaN: every output pixel is NaN, written as it is, and the run exits 1
    assert bad.nan_share == {"out": 1.0} and bad_zarr.nan_share == {"out": 1.0}
    assert np.isnan(tifffile.imread(tmp_path / "out" / "bad_out.tif")).all()
    assert np.isnan(np.asarray(zarr.open_group(str(tmp_path / "out" / "bad_out.zarr"), mode="r")["0"])).all()
    assert result.nan_items == [bad, bad_zarr] and result.exit_code == 1
    assert sum("105" in w and "bad.tif" in w for w in result.warnings) == 1


def test_nan_pixels_without_normalisation_leave_nan_where_they_were_and_exit_0(raw, tmp_path):
    tifffile.imwrite(tmp_path / "bad.tif", poisoned(inf=0))
    result = api.predict(raw, [tmp_path / "bad.tif"], tmp_path / "out", device="cpu", tile=(32, 32), blend=0)
    (item,) = result.items
    assert item.nonfinite_inputs == {"raw": 100} and item.nan_share == {"out": 100 / (90 * 80)}
    assert np.isnan(tifffile.imread(tmp_path / "out" / "bad_out.tif")).sum() == 100
    assert result.exit_code == 0


def test_cli_writes_an_all_nan_output_names_the_file_and_count_and_exits_1(normalizing, tmp_path):
    tifffile.imwrite(tmp_path / "bad.tif", poisoned())
    cli = runner.invoke(
        app, ["predict", str(normalizing), str(tmp_path / "bad.tif"), "--out", str(tmp_path / "out"), "--device", "cpu"]
    )
    assert cli.exit_code == 1
    assert np.isnan(tifffile.imread(tmp_path / "out" / "bad_out.tif")).all()
    squeezed = "".join(cli.output.split())  # the console wraps long lines
    assert "bad.tif:105NaN" in squeezed and "bad_out.tif:100.00%" in squeezed


def test_smallest_window_over_the_memory_limit_is_refused_before_any_compute(tmp_path):
    from zoo.inference.model import load_model
    from zoo.inference.planning import CALL_FACTOR, call_tensor_bytes

    package = per_pixel_package(tmp_path / "package", size=512)
    tifffile.imwrite(tmp_path / "a.tif", nuclei_like((600, 600)))
    model = load_model(package, device="cpu")
    need = CALL_FACTOR * call_tensor_bytes(model, {"y": 512, "x": 512})
    model.close()
    assert need == 16 * 2 * 512 * 512 * 4
    arguments = ["predict", str(package), str(tmp_path / "a.tif"), "--out", str(tmp_path / "out"), "--device", "cpu"]
    cli = runner.invoke(app, [*arguments, "--memory-limit", "16MB"])
    assert cli.exit_code == 2 and "Traceback" not in cli.output
    (line,) = [line for line in cli.output.splitlines() if str(need) in line]
    assert "512×512" in line and "16.0 MB" in line
    assert not (tmp_path / "out").exists()
    assert runner.invoke(app, [*arguments, "--memory-limit", f"{need}"]).exit_code == 0


PEAK = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from zoo import api
    from zoo.inference.model import load_model

    def status(field):
        return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0]) * 1024

    package, image, out, limit = sys.argv[1:]
    load_model(Path(package), device="cpu").close()  # libraries imported, runtime initialised
    Path("/proc/self/clear_refs").write_text("5")  # the peak so far (inherited from the parent at fork) reset
    base = status("VmRSS")
    result = api.predict(Path(package), [Path(image)], Path(out), device="cpu", memory_limit=limit)
    print(json.dumps({"added": status("VmHWM") - base, "base": base, "exit": result.exit_code, "tiles": result.tiles}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_a_run_adds_stays_under_the_limit_for_a_model_with_a_large_fixed_window(tmp_path):
    """A model that takes exactly 2048² on a 4096² image: before the limit bounded the calls in flight, the run
    added 898 MB at --memory-limit 640MB (two model calls side by side, six more batches queued)."""
    package = per_pixel_package(tmp_path / "package", size=2048)
    image = np.random.default_rng(0).random((4096, 4096), dtype=np.float32) * 100
    tifffile.imwrite(tmp_path / "a.tif", image)
    del image
    limit = 640 * 2**20
    run = subprocess.run(
        [sys.executable, "-c", PEAK, str(package), str(tmp_path / "a.tif"), str(tmp_path / "out"), str(limit)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    assert measured["exit"] == 0 and measured["tiles"] == 9
    assert measured["added"] < limit, f"{measured['added'] / 2**20:.0f} MB added"
    assert tifffile.imread(tmp_path / "out" / "a_out.tif").shape == (4096, 4096)
