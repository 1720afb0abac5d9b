"""The two real third-party packages in ../shared/real-models (skipped where absent)."""

from __future__ import annotations

from functools import partial

import pytest

from tests.conftest import copy_real_model
from zoo.validators import validate_source

validate_source = partial(validate_source, isolate=False)  # noqa: F811  (isolation is tested elsewhere)


@pytest.mark.slow
def test_unet2d_nuclei_broad_passes(tmp_path):
    folder = copy_real_model("unet2d_nuclei_broad", tmp_path)
    report = validate_source(folder / "rdf.yaml")
    assert report.status == "passed", [(f.id, f.message) for f in report.failed()]
    assert {f.location.split("/")[0] for f in report.by_id("REP001") if f.status == "passed"} == {
        "weights.torchscript",
        "weights.onnx",
    }


@pytest.mark.slow
def test_unet2d_multi_tensor_passes_with_two_outputs(tmp_path):
    folder = copy_real_model("unet2d_multi_tensor", tmp_path)
    report = validate_source(folder / "rdf.yaml")
    assert report.status == "passed"
    assert len([f for f in report.by_id("REP001") if f.status == "passed"]) == 2


@pytest.mark.slow
def test_original_description_names_the_url_and_the_missing_architecture(tmp_path):
    folder = copy_real_model("unet2d_nuclei_broad", tmp_path)
    report = validate_source(folder / "original.bioimageio.yaml")
    assert report.status == "failed"
    [remote] = [f for f in report.by_id("FIL003") if f.status == "warning"]
    assert remote.details["url"].startswith("http") and remote.location == "weights.pytorch_state_dict"
    missing = {f.details["file"] for f in report.by_id("FIL001") if f.status == "failed"}
    assert "unet2d.py" in missing
    state_dict = [f for f in report.by_id("REP001") if f.location.startswith("weights.pytorch_state_dict")]
    assert [f.status for f in state_dict] == ["skipped"]
