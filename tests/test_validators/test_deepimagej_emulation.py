"""DJE001: the emulation of deepImageJ's computation agrees with the Python pipeline where JDLL computes alike, and
finds the difference where it does not (a per-row scale_linear gain list: JDLL applies the first value)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_rdf, save_rdf
from zoo.bioimage.rdf_tensors import tensors
from zoo.validators.deepimagej import emulation


def run_rules(folder: Path, rule_ids: tuple[str, ...]) -> dict[str, list]:
    import zoo.validators.checks  # noqa: F401
    from zoo.bioimage.source import open_source
    from zoo.validators import load_package, run_rule
    from zoo.validators.context import PackageUnderTest

    with open_source(folder) as opened:
        pkg = PackageUnderTest(opened)
        load_package(pkg)
        try:
            return {rule_id: run_rule(pkg, rule_id) for rule_id in rule_ids}
        finally:
            pkg.close()


def without_tf(folder: Path) -> Path:
    """The package without its TF weights: TF loads slowly and adds nothing to what these tests show."""
    rdf = load_rdf(folder)
    del rdf["weights"]["tensorflow_saved_model_bundle"]
    save_rdf(folder, rdf)
    return folder


def rewrite_test_output(folder: Path) -> None:
    """Re-create the test output with bioimageio.core's pipeline (onnx), so that the package stays valid (REP001)."""
    from bioimageio.core.digest_spec import get_test_input_sample

    from tests.conftest import rehash
    from zoo.bioimage.source import open_source
    from zoo.validators import load_package
    from zoo.validators.checks.reproduction import run_on_test_input
    from zoo.validators.context import PackageUnderTest

    with open_source(folder) as opened:
        pkg = PackageUnderTest(opened)
        load_package(pkg)
        assert pkg.descr is not None, pkg.invalid
        outputs = run_on_test_input(pkg.pipeline("onnx"), get_test_input_sample(pkg.descr))
        np.save(folder / "test_output.npy", outputs.members["probability"].data.to_numpy())
        pkg.close()
    rehash(folder, "test_output.npy")


@pytest.mark.slow
def test_emulation_agrees_with_python_pipeline_on_tiny_package(package_folder):
    findings = run_rules(without_tf(package_folder()), ("REP001", "DJE001"))
    assert {f.status for f in findings["REP001"] if f.location.startswith("weights.onnx")} == {"passed"}
    emulated = {f.details["weight_format"]: f for f in findings["DJE001"]}
    assert set(emulated) == {"onnx", "torchscript"}
    for finding in emulated.values():
        assert finding.status == "passed", finding.message
        assert finding.details["mismatched"] == 0
        assert finding.details["max_abs"] <= 1e-5


@pytest.mark.slow
def test_emulation_finds_per_row_gain_list(package_folder):
    folder = without_tf(package_folder())
    rdf = load_rdf(folder)
    raw = rdf["inputs"][0]
    y_axis = next(axis for axis in raw["axes"] if axis.get("id") == "y")
    rows = int(np.load(folder / "test_input.npy").shape[2])
    y_axis["size"] = rows
    gains = [round(0.5 + i / rows, 4) for i in range(rows)]
    raw["preprocessing"].insert(-1, {"id": "scale_linear", "kwargs": {"axis": "y", "gain": gains}})
    save_rdf(folder, rdf)
    rewrite_test_output(folder)

    findings = run_rules(folder, ("REP001", "DIJ30", "DJE001"))
    assert {f.status for f in findings["REP001"] if f.location.startswith(("weights.onnx", "weights.torchscript"))} == {
        "passed"
    }
    assert {f.status for f in findings["DIJ30"]} == {"failed"}
    emulated = {f.details["weight_format"]: f for f in findings["DJE001"]}
    for finding in emulated.values():
        assert finding.status == "failed"
        assert finding.details["mismatched"] > 0
        index = tuple(finding.details["worst_index"])
        assert finding.details["worst_actual"] != pytest.approx(finding.details["worst_expected"], abs=1.5e-4)
        assert len(index) == 4


@pytest.mark.slow
@pytest.mark.parametrize("target", ["run_tiled", "apply_processing"])
def test_emulation_error_is_never_a_verdict_on_the_package(package_folder, monkeypatch, target):
    """zoo's own emulation failing (inside the per-format run, or before it) is skipped with the reason: it must not
    read as "runs but gives different numbers" (before, it was a failed DJE001 of severity wrong)."""
    from zoo.validators.checks import deepimagej_emulation
    from zoo.validators.report import ValidationReport

    def broken(*args, **kwargs):
        raise KeyError("an internal bug")

    monkeypatch.setattr(deepimagej_emulation, target, broken)
    findings = run_rules(without_tf(package_folder()), ("DJE001",))["DJE001"]
    assert findings and {f.status for f in findings} == {"skipped"}
    assert all("KeyError" in f.details["internal_error"] for f in findings)
    report = ValidationReport(source="tiny", findings=findings)
    assert report.deepimagej_verdict is None
    assert report.verdict("deepimagej").status != "failed"


def test_nearest_rank_percentile_differs_from_numpy():
    values = np.arange(10, dtype=np.float32)
    assert emulation.nearest_rank_percentile(values, 50) == 4.0
    assert emulation.nearest_rank_percentile(values, 99.8) == 9.0
    assert emulation.nearest_rank_percentile(values, 0) == 0.0
    assert np.percentile(values, 50) == 4.5


def _view(axes: list[dict], halo: int = 0) -> tuple:
    rdf = {
        "format_version": "0.5.4",
        "inputs": [{"id": "raw", "axes": axes}],
        "outputs": [
            {
                "id": "out",
                "axes": [
                    {**a, "size": {"tensor_id": "raw", "axis_id": a["id"]}, "halo": halo} if a["type"] == "space" else a
                    for a in axes
                ],
            }
        ],
    }
    return tensors(rdf, "inputs")[0], tensors(rdf, "outputs")


def _box_filter(image: np.ndarray, radius: int) -> np.ndarray:
    padded = np.pad(image, [(0, 0), (0, 0), (radius, radius), (radius, radius)], mode="symmetric")
    out = np.zeros_like(image)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out += padded[:, :, dy : dy + image.shape[2], dx : dx + image.shape[3]]
    return out / (2 * radius + 1) ** 2


def test_tiles_stitched_with_halo_equal_the_whole_image(monkeypatch):
    axes = [
        {"id": "batch", "type": "batch"},
        {"id": "channel", "type": "channel", "channel_names": ["a"]},
        {"id": "y", "type": "space", "size": {"min": 16, "step": 8}},
        {"id": "x", "type": "space", "size": {"min": 16, "step": 8}},
    ]
    input_view, outputs = _view(axes, halo=4)
    image = np.random.default_rng(0).random((1, 1, 70, 53), dtype=np.float32)
    monkeypatch.setattr(emulation, "MAX_INPUT_TILE_ELEMENTS", 32 * 32)
    seen = []

    def model(tile):
        seen.append(tile.shape)
        return {"out": _box_filter(tile, 2)}

    result = emulation.run_tiled(input_view, outputs, image, model)["out"]
    assert len(seen) > 4 and all(np.prod(shape) <= 32 * 32 for shape in seen)
    np.testing.assert_allclose(result, _box_filter(image, 2), atol=1e-6)


def test_fixed_size_tile_mirrors_a_small_image_and_refuses_under_a_third():
    axes = [
        {"id": "batch", "type": "batch"},
        {"id": "channel", "type": "channel", "channel_names": ["a"]},
        {"id": "y", "type": "space", "size": 64},
        {"id": "x", "type": "space", "size": 64},
    ]
    input_view, outputs = _view(axes)
    image = np.random.default_rng(1).random((1, 1, 40, 30), dtype=np.float32)
    shapes = []
    result = emulation.run_tiled(input_view, outputs, image, lambda t: shapes.append(t.shape) or {"out": t * 2})
    assert shapes == [(1, 1, 64, 64)]
    np.testing.assert_allclose(result["out"], image * 2)
    with pytest.raises(emulation.NotEmulated, match="third"):
        emulation.run_tiled(input_view, outputs, image[:, :, :20], lambda t: {"out": t})


def test_processing_quirks_of_jdll():
    axes = [
        {"id": "batch", "type": "batch"},
        {"id": "channel", "type": "channel", "channel_names": ["a", "b"]},
        {"id": "y", "type": "space", "size": 4},
        {"id": "x", "type": "space", "size": 4},
    ]
    data = np.stack([np.arange(16.0).reshape(4, 4), 100 + 10 * np.arange(16.0).reshape(4, 4)])[None]
    rdf = {
        "format_version": "0.5.4",
        "inputs": [
            {
                "id": "raw",
                "axes": axes,
                "preprocessing": [
                    {"id": "scale_linear", "kwargs": {"axis": "channel", "gain": [2.0, 3.0], "offset": [1.0, 5.0]}}
                ],
            }
        ],
    }
    np.testing.assert_allclose(emulation.apply_processing(tensors(rdf, "inputs")[0], data), data * 2 + 1)
    rdf["inputs"][0]["preprocessing"] = [
        {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["x", "y"]}},
        {"id": "ensure_dtype", "kwargs": {"dtype": "uint8"}},
    ]
    joint = emulation.apply_processing(tensors(rdf, "inputs")[0], data)
    np.testing.assert_allclose(joint, (data - data.mean()) / (data.std() + 1e-6), rtol=1e-5)
