"""Prediction with the tiny package: tiled equals whole, files in and out, trust, resume, atomic writes."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import tifffile

from tests.conftest import load_rdf, save_rdf
from zoo import api
from zoo.errors import ImageError, InputError, WeightsError
from zoo.inference.model import load_model
from zoo.inference.predict import predict_arrays


@pytest.fixture(scope="module")
def tiny_model(tiny_package):
    model = load_model(tiny_package, device="cpu")
    yield model
    model.close()


def nuclei_like(shape, seed=0) -> np.ndarray:
    """Blobs on a gradient with noise, in photon-like units."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    image = 30 + 0.05 * y + rng.normal(0, 3, shape)
    for cy, cx in rng.uniform(0, 1, (12, 2)) * shape:
        image += 120 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 40)
    return image.astype(np.float32)


def whole(model, image: np.ndarray) -> np.ndarray:
    return predict_arrays(model, image[None, None], tile="none")["probability"][0, 0]


@pytest.mark.parametrize("shape", [(131, 97), (128, 96)])  # padded up to a valid size; a valid size (unpadded)
@pytest.mark.parametrize("tile,batch_size", [((44, 44), 1), ((64, 48), 3), ((100, 200), 2)])
def test_tiled_output_equals_whole_image_output(tiny_model, tile, batch_size, shape):
    image = nuclei_like(shape)
    tiled = predict_arrays(tiny_model, image[None, None], tile=tile, batch_size=batch_size)["probability"]
    assert tiled.shape == (1, 1, *shape)
    assert np.abs(tiled[0, 0] - whole(tiny_model, image)).max() < 1e-5


def test_batch_entries_are_normalised_and_predicted_separately(tiny_model):
    stack = np.stack([nuclei_like((60, 70), 1), 3 * nuclei_like((60, 70), 2) + 50])
    out = predict_arrays(tiny_model, stack[:, None], tile=(40, 40))["probability"]
    for i in range(2):
        assert np.abs(out[i, 0] - whole(tiny_model, stack[i])).max() < 1e-5


def test_test_input_reproduces_test_output(tiny_model):
    root = tiny_model.opened.root
    expected = np.load(root / "test_output.npy")
    out = predict_arrays(tiny_model, np.load(root / "test_input.npy"))["probability"]
    assert out.shape == expected.shape
    # the test input is a size the model takes: one call on it as it is, borders included, as bioimageio.core's
    # test run makes it
    assert np.abs(out - expected).max() < 1e-4


def write_inputs(folder, image):
    import imageio.v3 as iio
    import zarr

    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", image)
    np.save(folder / "b.npy", image)
    iio.imwrite(folder / "c.png", np.clip(image, 0, 255).astype(np.uint8))
    tifffile.imwrite(folder / "pages.tif", np.stack([image, image[::-1]]))
    group = zarr.open_group(str(folder / "d.ome.zarr"), mode="w", zarr_format=2)
    array = group.create_array("0", shape=image.shape, chunks=(32, 32), dtype=image.dtype)
    array[:] = image
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "datasets": [{"path": "0"}],
            "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        }
    ]


def test_tiff_png_npy_zarr_and_pages_round_trip(tiny_package, tiny_model, tmp_path):
    import zarr

    image = nuclei_like((70, 90))
    write_inputs(tmp_path / "in", image)
    result = api.predict(tiny_package, [tmp_path / "in"], tmp_path / "out", device="cpu", tile=(48, 48))
    assert result.exit_code == 0 and result.weight_format == "onnx"
    names = sorted(p.name for i in result.items for p in i.outputs.values())
    assert names == [
        "a_probability.tif",
        "b_probability.tif",
        "c_probability.tif",
        "d_probability.zarr",
        "pages_probability.tif",
    ]
    expected = whole(tiny_model, image)
    for stem in ("a", "b"):
        assert np.abs(tifffile.imread(tmp_path / "out" / f"{stem}_probability.tif") - expected).max() < 1e-5
    png = np.clip(image, 0, 255).astype(np.uint8).astype(np.float32)
    assert np.abs(tifffile.imread(tmp_path / "out" / "c_probability.tif") - whole(tiny_model, png)).max() < 1e-5
    group = zarr.open_group(str(tmp_path / "out" / "d_probability.zarr"), mode="r")
    assert [a["name"] for a in group.attrs["multiscales"][0]["axes"]] == ["c", "y", "x"]
    assert np.abs(np.asarray(group["0"])[0] - expected).max() < 1e-5
    with tifffile.TiffFile(tmp_path / "out" / "pages_probability.tif") as tif:
        assert tif.series[0].axes == "QCYX"
        pages = tif.series[0].asarray()
    assert np.abs(pages[1, 0] - whole(tiny_model, image[::-1])).max() < 1e-5


def test_rgb_image_into_the_one_channel_model_is_refused_before_any_compute(tiny_package, tmp_path):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "rgb.png", np.zeros((40, 40, 3), dtype=np.uint8))
    with pytest.raises(ImageError, match="rgb.png: 3 channels"):
        api.predict(tiny_package, [tmp_path / "rgb.png"], tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()


def test_code_executing_weights_need_trust(tiny_package, tiny_model, tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", nuclei_like((50, 50)))
    with pytest.raises(WeightsError, match="--trust"):
        api.predict(tiny_package, [tmp_path / "a.tif"], tmp_path / "out", weights="pytorch_state_dict", device="cpu")
    result = api.predict(
        tiny_package, [tmp_path / "a.tif"], tmp_path / "out", weights="pytorch_state_dict", device="cpu", trust=True
    )
    assert result.weight_format == "pytorch_state_dict"
    out = tifffile.imread(tmp_path / "out" / "a_probability.tif")
    assert np.abs(out - whole(tiny_model, nuclei_like((50, 50)))).max() < 1e-4


def test_package_with_only_untrusted_weights_says_why_nothing_ran(package_folder, tmp_path):
    folder = package_folder()
    rdf = load_rdf(folder)
    rdf["weights"] = {"pytorch_state_dict": rdf["weights"]["pytorch_state_dict"]}
    save_rdf(folder, rdf)
    with pytest.raises(WeightsError, match="pytorch_state_dict: .*--trust"):
        load_model(folder, device="cpu")


class StopAfter:
    """A Progress that interrupts the run after some tiles, as Ctrl-C would."""

    def __init__(self, tiles: int):
        self.tiles = tiles
        self.seen = 0

    def start(self, task, total):
        pass

    def advance(self, steps=1, **info):
        self.seen += steps
        if self.seen >= self.tiles:
            raise KeyboardInterrupt

    def finish(self):
        pass


@pytest.mark.slow
def test_zarr_output_resumes_without_recomputing_finished_tiles(tiny_package, tmp_path):
    import zarr

    write_inputs(tmp_path / "in", nuclei_like((150, 150)))
    source = tmp_path / "in" / "d.ome.zarr"
    with pytest.raises(KeyboardInterrupt):
        api.predict(tiny_package, [source], tmp_path / "out", device="cpu", tile=(52, 52), progress=StopAfter(10))
    record = json.loads((tmp_path / "out" / f"d{'.zoo-predict.json'}").read_text())
    assert record["complete"] is False and len(record["done"]) >= 10
    resumed = api.predict(tiny_package, [source], tmp_path / "out", device="cpu", tile=(52, 52)).items[0]
    fresh = api.predict(tiny_package, [source], tmp_path / "fresh", device="cpu", tile=(52, 52)).items[0]
    assert resumed.resumed_tiles == len(record["done"])
    assert (resumed.tiles + resumed.resumed_tiles, fresh.resumed_tiles) == (fresh.tiles, 0)
    a = np.asarray(zarr.open_group(str(tmp_path / "out" / "d_probability.zarr"), mode="r")["0"])
    b = np.asarray(zarr.open_group(str(tmp_path / "fresh" / "d_probability.zarr"), mode="r")["0"])
    assert np.array_equal(a, b)
    again = api.predict(tiny_package, [source], tmp_path / "out", device="cpu", tile=(52, 52)).items[0]
    assert (again.tiles, again.resumed_tiles) == (0, fresh.tiles)


def test_interrupted_tiff_run_leaves_nothing_behind(tiny_package, tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", nuclei_like((120, 120)))
    with pytest.raises(KeyboardInterrupt):
        api.predict(
            tiny_package, [tmp_path / "a.tif"], tmp_path / "out", device="cpu", tile=(52, 52), progress=StopAfter(3)
        )
    assert list((tmp_path / "out").iterdir()) == []


def test_failed_tiff_write_leaves_no_partial_file(tiny_package, tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "a.tif", nuclei_like((60, 60)))

    def write_then_fail(path, data, **kwargs):
        path.write_bytes(b"II*\x00 the first bytes of a TIFF")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", write_then_fail)
    result = api.predict(tiny_package, [tmp_path / "a.tif"], tmp_path / "out", device="cpu")
    assert result.exit_code == 1 and "disk full" in result.items[0].error
    assert list((tmp_path / "out").iterdir()) == []


def test_format_0_4_description_predicts_like_0_5(tiny_package, tiny_model, tmp_path):
    folder = tmp_path / "v04"
    with zipfile.ZipFile(tiny_package) as archive:
        archive.extractall(folder)
    save_rdf(
        folder,
        {
            "format_version": "0.4.10",
            "type": "model",
            "name": "tiny in 0.4",
            "description": "tiny zoo U-Net",
            "authors": [{"name": "zoo"}],
            "cite": [{"text": "zoo", "url": "https://bioimage.io"}],
            "license": "CC-BY-4.0",
            "documentation": "README.md",
            "covers": ["cover.png"],
            "tags": ["unet"],
            "timestamp": "2024-01-01T00:00:00",
            "test_inputs": ["test_input.npy"],
            "test_outputs": ["test_output.npy"],
            "inputs": [
                {
                    "name": "raw",
                    "axes": "bcyx",
                    "data_type": "float32",
                    "data_range": [float("-inf"), float("inf")],
                    "shape": {"min": [1, 1, 36, 36], "step": [0, 0, 4, 4]},
                    "preprocessing": [
                        {"name": "zero_mean_unit_variance", "kwargs": {"mode": "per_sample", "axes": "yx"}}
                    ],
                }
            ],
            "outputs": [
                {
                    "name": "probability",
                    "axes": "bcyx",
                    "data_type": "float32",
                    "data_range": [0, 1],
                    "halo": [0, 0, 16, 16],
                    "shape": {"reference_tensor": "raw", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]},
                }
            ],
            "weights": {"onnx": {"source": "weights.onnx", "opset_version": 17}},
        },
    )
    old = load_model(folder, device="cpu")
    try:
        image = nuclei_like((80, 70))
        out = predict_arrays(old, image[None, None], tile=(48, 48))["probability"][0, 0]
    finally:
        old.close()
    assert np.abs(out - whole(tiny_model, image)).max() < 1e-5


def test_post_processing_with_output_statistics_sees_the_whole_output(package_folder, tiny_model):
    folder = package_folder()
    rdf = load_rdf(folder)
    rdf["outputs"][0]["postprocessing"] = [
        {"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": 5.0, "max_percentile": 95.0}}
    ]
    save_rdf(folder, rdf)
    model = load_model(folder, device="cpu")
    try:
        assert model.deferred_post_ops
        image = nuclei_like((90, 90))
        out = predict_arrays(model, image[None, None], tile=(40, 40))["probability"][0, 0]
    finally:
        model.close()
    raw = whole(tiny_model, image)
    low, high = np.percentile(raw, [5, 95])
    # the untrained model's outputs span about 0.01, so float32 rounding is magnified a hundredfold
    np.testing.assert_allclose(out, (raw - low) / (high - low + 1e-6), atol=1e-3)


@pytest.fixture
def halo_free_package(package_folder):
    """The tiny package with its halo removed from the rdf: tiles are blended by default."""
    folder = package_folder()
    rdf = load_rdf(folder)
    for axis in rdf["outputs"][0]["axes"][2:]:
        del axis["halo"]
    save_rdf(folder, rdf)
    return folder


def test_model_without_halo_is_blended_alike_for_tiff_and_zarr_with_warnings(halo_free_package, tmp_path):
    import zarr

    write_inputs(tmp_path / "in", nuclei_like((150, 150)))
    inputs = [tmp_path / "in" / "a.tif", tmp_path / "in" / "d.ome.zarr"]
    result = api.predict(halo_free_package, inputs, tmp_path / "out", device="cpu", tile=(100, 100))
    assert result.exit_code == 0
    assert [i.plan.count("blend") for i in result.items] == [2, 2]
    assert [w.split(":")[0] for w in result.warnings] == [
        "the model declares no halo along y",
        "the model declares no halo along x",
        "d",
    ]
    assert "blended into the Zarr output" in result.warnings[2]
    tiff = tifffile.imread(tmp_path / "out" / "a_probability.tif")
    chunked = np.asarray(zarr.open_group(str(tmp_path / "out" / "d_probability.zarr"), mode="r")["0"])[0]
    assert np.abs(tiff - chunked).max() < 1e-6
    cut = api.predict(halo_free_package, inputs[1:], tmp_path / "cut", device="cpu", tile=(100, 100), blend=0)
    assert "blend" not in cut.items[0].plan and "may show seams" in cut.warnings[0]
    seams = np.asarray(zarr.open_group(str(tmp_path / "cut" / "d_probability.zarr"), mode="r")["0"])[0]
    assert np.abs(seams - chunked).max() > 1e-4  # blending changed something


@pytest.mark.slow
def test_blended_zarr_output_holds_a_few_rows_of_tiles_and_resumes(halo_free_package, tmp_path, monkeypatch):
    import zarr

    from zoo.inference.outputs import ZarrSink

    write_inputs(tmp_path / "in", nuclei_like((300, 260)))
    source = tmp_path / "in" / "d.ome.zarr"
    held = []
    real_accumulate = ZarrSink._accumulate

    def watch(self, region, weighted, full_shape):
        real_accumulate(self, region, weighted, full_shape)
        held.append(self.held_bytes)

    monkeypatch.setattr(ZarrSink, "_accumulate", watch)
    fresh = api.predict(halo_free_package, [source], tmp_path / "fresh", device="cpu", tile=(64, 64)).items[0]
    assert fresh.tiles == 90 and "(stride 32, halo" in fresh.plan and "blend 15)" in fresh.plan  # 10 × 9 tiles
    whole_output = 300 * 260 * 4
    assert held[-1] == 0 and 0 < max(held) < whole_output / 2  # at most about three rows of 32 px in memory
    with pytest.raises(KeyboardInterrupt):
        api.predict(halo_free_package, [source], tmp_path / "out", device="cpu", tile=(64, 64), progress=StopAfter(60))
    record = json.loads((tmp_path / "out" / "d.zoo-predict.json").read_text())
    assert record["complete"] is False and len(record["done"]) >= 30  # chunks whose neighbours were all in
    resumed = api.predict(halo_free_package, [source], tmp_path / "out", device="cpu", tile=(64, 64)).items[0]
    assert resumed.resumed_tiles > 0 and resumed.tiles + resumed.resumed_tiles == 90
    a, b = (
        np.asarray(zarr.open_group(str(tmp_path / d / "d_probability.zarr"), mode="r")["0"]) for d in ("out", "fresh")
    )
    assert np.abs(a - b).max() < 1e-6


def test_blending_a_zarr_output_beyond_the_memory_budget_is_refused_before_compute(halo_free_package, tmp_path):
    write_inputs(tmp_path / "in", nuclei_like((300, 260)))
    with pytest.raises(InputError, match="--blend 0"):
        api.predict(
            halo_free_package,
            [tmp_path / "in" / "d.ome.zarr"],
            tmp_path / "out",
            device="cpu",
            tile=(64, 64),
            memory_limit=300_000,  # a 16² window's call fits; three rows of blended 300×260 chunks do not
        )
    assert not (tmp_path / "out").exists()


def test_folder_of_small_images_is_batched_across_images_with_each_normalised_alone(
    tiny_package, tiny_model, tmp_path, monkeypatch
):
    from zoo.inference.model import PredictionModel

    folder = tmp_path / "in"
    folder.mkdir()
    images = {}
    for i in range(7):
        shape = (60, 70) if i != 4 else (50, 50)  # one of another size: its window shape differs
        images[f"img{i}"] = nuclei_like(shape, seed=i) * (1 + i) + 20 * i
        tifffile.imwrite(folder / f"img{i}.tif", images[f"img{i}"])
    calls = []
    real_run = PredictionModel.run

    def count(self, arrays):
        calls.append(arrays[0].shape[0])
        return real_run(self, arrays)

    monkeypatch.setattr(PredictionModel, "run", count)
    result = api.predict(tiny_package, [folder], tmp_path / "out", device="cpu", batch_size=3)
    assert result.exit_code == 0 and [i.tiles for i in result.items] == [1] * 7
    assert sorted(calls) == [1, 1, 2, 3]  # img0-2 together; img3 alone before img4's other size; img4; img5-6
    for name, array in images.items():
        out = tifffile.imread(tmp_path / "out" / f"{name}_probability.tif")
        assert np.abs(out - whole(tiny_model, array)).max() < 1e-5


def test_folder_images_are_read_one_at_a_time(tiny_package, tmp_path, monkeypatch):
    from zoo.inference.image_io import ImageSource

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        tifffile.imwrite(folder / f"img{i}.tif", nuclei_like((40, 40), seed=i))
    opened, loaded = [], []
    real_init, real_close = ImageSource.__init__, ImageSource.close

    def track(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    def note(self):
        loaded.append(sum(1 for image in opened if image._data is not None))
        real_close(self)

    monkeypatch.setattr(ImageSource, "__init__", track)
    monkeypatch.setattr(ImageSource, "close", note)
    result = api.predict(tiny_package, [folder], tmp_path / "out", device="cpu")
    assert result.exit_code == 0 and len(list((tmp_path / "out").iterdir())) == 5
    assert len(opened) == 5 and max(loaded) == 1  # headers of all first, then the pixels of one image at a time
