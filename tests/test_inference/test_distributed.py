"""--scheduler: files and Zarr tiles over Dask workers give the single-process results."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tests.test_inference.test_predict import nuclei_like, write_inputs
from zoo import api

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def scheduler():
    """Two workers in threads of this process: no process start-up, the same code path as a real cluster."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    yield cluster.scheduler_address
    cluster.close()


@pytest.mark.slow
def test_files_and_zarr_tiles_on_workers_equal_the_single_process_run(tiny_package, tmp_path, scheduler):
    import zarr

    write_inputs(tmp_path / "in", nuclei_like((130, 120)))
    inputs = [tmp_path / "in" / "a.tif", tmp_path / "in" / "pages.tif", tmp_path / "in" / "d.ome.zarr"]
    options = dict(device="cpu", tile=(52, 52))
    spread = api.predict(tiny_package, inputs, tmp_path / "dask", scheduler=scheduler, **options)
    single = api.predict(tiny_package, inputs, tmp_path / "single", **options)
    assert spread.exit_code == 0 and [i.tiles for i in spread.items] == [i.tiles for i in single.items]
    for name in ("a_probability.tif", "pages_probability.tif"):
        assert np.array_equal(tifffile.imread(tmp_path / "dask" / name), tifffile.imread(tmp_path / "single" / name))
    a, b = (
        np.asarray(zarr.open_group(str(tmp_path / d / "d_probability.zarr"), mode="r")["0"]) for d in ("dask", "single")
    )
    assert np.array_equal(a, b)


def test_blended_zarr_output_is_written_by_the_client_with_a_warning(package_folder, tmp_path, scheduler):
    import zarr

    from tests.conftest import load_rdf, save_rdf

    folder = package_folder()
    rdf = load_rdf(folder)
    for axis in rdf["outputs"][0]["axes"][2:]:
        del axis["halo"]
    save_rdf(folder, rdf)
    write_inputs(tmp_path / "in", nuclei_like((130, 120)))
    source = [tmp_path / "in" / "d.ome.zarr"]
    spread = api.predict(folder, source, tmp_path / "dask", scheduler=scheduler, device="cpu", tile=(64, 64))
    single = api.predict(folder, source, tmp_path / "single", device="cpu", tile=(64, 64)).items[0]
    assert spread.exit_code == 0 and spread.items[0].plan == single.plan and "blend" in single.plan
    assert any("run in this process, not on the workers" in w for w in spread.warnings)
    a, b = (
        np.asarray(zarr.open_group(str(tmp_path / d / "d_probability.zarr"), mode="r")["0"]) for d in ("dask", "single")
    )
    assert np.array_equal(a, b)
