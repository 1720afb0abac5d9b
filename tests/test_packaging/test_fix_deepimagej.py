"""zoo fix-deepimagej: real third-party packages and a broken copy of the tiny package come out satisfying the rules
that can be fixed mechanically; the input is never modified."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.conftest import copy_real_model, sha256
from tests.test_validators.deepimagej_packages import dij_report, set_scalar_text, statuses
from zoo import api


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_fix_unet2d_nuclei_broad(tmp_path):
    folder = copy_real_model("unet2d_nuclei_broad", tmp_path)
    before = tree_digest(folder)
    result = api.fix_deepimagej(folder, tmp_path / "out")

    assert tree_digest(folder) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [result.zip_path.name]
    assert {"DIJ13", "DIJ17"} <= {fix.rule_id for fix in result.fixed}
    assert "DIJ13" not in result.not_fixed and "DIJ17" not in result.not_fixed
    report = dij_report(result.zip_path)
    assert statuses(report, "DIJ13") == {"passed"}
    assert statuses(report, "DIJ17") == {"passed"}
    with zipfile.ZipFile(result.zip_path) as archive:
        assert "rdf.yaml" in archive.namelist()
        import onnx

        proto = onnx.load_from_string(archive.read("weights.onnx"))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) <= 17
    assert proto.ir_version <= 8
    assert result.verdict in ("runs", "runs with risks") and result.exit_code == 0
    assert {f.status for f in result.report.by_id("REP001")} == {"passed"}


@pytest.mark.slow
def test_fix_unet2d_multi_tensor_cannot_fix_two_inputs(tmp_path):
    folder = copy_real_model("unet2d_multi_tensor", tmp_path)
    result = api.fix_deepimagej(folder / "rdf.yaml", tmp_path / "out")
    assert "DIJ18" in result.not_fixed
    assert result.verdict == "will not run" and result.exit_code == 1


@pytest.mark.slow
def test_fix_tiny_package_axis_ids_and_versions(package_folder, tmp_path):
    folder = package_folder()
    text = (folder / "rdf.yaml").read_text()
    (folder / "rdf.yaml").write_text(text.replace("    id: x\n    type: space", "    type: space"))
    set_scalar_text(folder, "pytorch_version", "1.10")
    broken = dij_report(folder)
    assert statuses(broken, "DIJ17") == {"failed"} and statuses(broken, "DIJ08") == {"failed"}
    (folder / "rdf.yaml").rename(folder / "bioimageio.yaml")

    result = api.fix_deepimagej(folder, tmp_path / "out")
    assert {"DIJ01", "DIJ08", "DIJ17"} <= {fix.rule_id for fix in result.fixed}
    fixed = dij_report(result.zip_path)
    for rule_id in ("DIJ01", "DIJ08", "DIJ17"):
        assert statuses(fixed, rule_id) == {"passed"}, rule_id
    with zipfile.ZipFile(result.zip_path) as archive:
        assert 'pytorch_version: "1.10"' in archive.read("rdf.yaml").decode()
    assert (folder / "bioimageio.yaml").is_file() and not (folder / "rdf.yaml").exists()


def test_fix_format_0_4_package(tmp_path):
    """A real format-0.4 package (string axes, a TF SavedModel): fixed without crashing (before: AttributeError,
    "'str' object has no attribute 'get'"), the input untouched, DIJ02/DIJ08 quoted, the rest listed."""
    from tests.conftest import SHARED

    source = SHARED / "real-world" / "packages" / "tiktorch_dummy_tensorflow"
    if not source.is_dir():
        pytest.skip("../shared/real-world/packages is not present (a user's clone)")
    before = tree_digest(source)
    result = api.fix_deepimagej(source, tmp_path / "out")
    assert tree_digest(source) == before
    assert result.zip_path.is_file()
    assert {fix.rule_id for fix in result.fixed} >= {"DIJ02"}
    fixed = dij_report(result.zip_path)
    assert statuses(fixed, "DIJ02") == {"passed"} and statuses(fixed, "DIJ17") == {"passed"}
    assert not [f for f in fixed.findings if (f.details or {}).get("internal_error")]
    # its uint8 input reaches the model as uint8 per the rdf, deepImageJ feeds float32: not mechanically fixable
    assert set(result.not_fixed) == {"DIJ19"}
    assert result.verdict == "runs but gives different numbers" and result.exit_code == 1
