"""The isolated child starts with the package and works alongside the static checks: it must find the unusable files
itself (as the FIL rules do) and give the same findings as an in-process run."""

from __future__ import annotations

from tests.conftest import load_rdf, save_rdf
from tests.test_validators import runtime_packages as rp
from zoo.validators import validate_source


def summary(report):
    return sorted((f.id, f.status, f.location) for f in report.findings)


def test_child_skips_weights_whose_file_does_not_match_as_in_process(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(1), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=1)
    )
    rdf = load_rdf(folder)
    rdf["weights"]["torchscript"]["sha256"] = "0" * 64
    save_rdf(folder, rdf)
    isolated = validate_source(folder)
    assert [f.status for f in isolated.by_id("FIL002")] == ["failed"]
    [skipped] = isolated.by_id("REP001")
    assert skipped.status == "skipped" and "sha256" in skipped.message
    assert {f.status for f in isolated.by_id("DET001")} == {"skipped"}
    assert summary(isolated) == summary(validate_source(folder, isolate=False))
