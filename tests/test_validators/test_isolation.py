"""The isolated child starts with the package and works alongside the static checks: it must find the unusable files
itself (as the FIL rules do) and give the same findings as an in-process run."""

from __future__ import annotations

import pytest

from tests.conftest import load_rdf, save_rdf
from tests.test_validators import runtime_packages as rp
from zoo.validators import validate_source


def summary(report):
    return sorted((f.id, f.status, f.location) for f in report.findings)


@pytest.mark.slow
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


@pytest.mark.slow
def test_torchscript_and_onnx_run_in_a_worker_each_on_the_cpu_only(tiny_package, tmp_path):
    import zipfile

    from zoo.validators.isolation import RuntimeChild, RuntimeJob

    folder = tmp_path / "p"
    with zipfile.ZipFile(tiny_package) as archive:
        archive.extractall(folder)
    job = RuntimeJob(folder, folder, folder / "rdf.yaml", False, "cpu", None, None, ["REP001"])
    on_cpu = RuntimeChild(job)
    try:
        answers = dict(on_cpu.messages())
    finally:
        on_cpu.stop()
    assert sorted(w.name for w in on_cpu.workers) == ["zoo-model-onnx", "zoo-model-torchscript"]
    in_workers = {
        f.location: f.status
        for f in answers["runtime"]
        if f.location.startswith(("weights.onnx/", "weights.torchscript/"))
    }
    assert in_workers == {
        "weights.onnx/outputs[probability]": "passed",
        "weights.torchscript/outputs[probability]": "passed",
    }
    on_gpu = RuntimeChild(RuntimeJob(folder, folder, folder / "rdf.yaml", False, "cuda", None, None, []))
    on_gpu.stop()
    assert on_gpu.workers == []


def test_child_is_forked_only_where_nothing_can_break():
    """The CLI (one thread, no framework loaded) forks its isolated processes; a process holding torch spawns."""
    import subprocess
    import sys

    import torch  # noqa: F401  (this test process holds a framework's thread pools)

    from zoo.validators.isolation import start_method

    assert start_method() == "spawn"
    fresh = subprocess.run(
        [sys.executable, "-c", "from zoo.validators.isolation import start_method as s; print(s())"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    expected = "fork" if sys.platform.startswith("linux") else "spawn"
    assert fresh.stdout.strip() == expected
