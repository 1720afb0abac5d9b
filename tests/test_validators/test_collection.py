"""`zoo validate-collection`: a verdict per package, one JUnit testsuite per package, the cache, Dask runs equal
to sequential ones, the dashboard in a browser, and the CI action's script run locally."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import REAL_MODELS, copy_real_model, hanging_package, rehash
from zoo import api
from zoo.cli import app

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
REAL = ("unet2d_nuclei_broad", "unet2d_multi_tensor")
SYNTHETIC = {  # path in the collection -> (status, failed rules)
    "tiny.zip": ("passed", []),
    "unzipped": ("passed", []),
    "nested/broken": ("failed", ["REP001"]),
    "garbage": ("failed", ["FMT001"]),
    "not-a-package.zip": ("failed", []),
}


def write_garbage(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "rdf.yaml").write_bytes(b"name: [unclosed\n\x00\x01 ::: {")
    return folder


def make_collection(folder: Path, tiny_package: Path) -> Path:
    """The tiny package zipped and unzipped, a copy whose expected output was shifted (REP001), an unreadable
    rdf (FMT001), a file that is no zip, and the two real models where ../shared has them."""
    shutil.copy(tiny_package, folder / "tiny.zip")
    with zipfile.ZipFile(tiny_package) as archive:
        archive.extractall(folder / "unzipped")
        archive.extractall(folder / "nested" / "broken")
    broken = folder / "nested" / "broken"
    np.save(broken / "test_output.npy", (np.load(broken / "test_output.npy") + 0.05).astype(np.float32))
    rehash(broken, "test_output.npy")
    write_garbage(folder / "garbage")
    (folder / "not-a-package.zip").write_text("these bytes are no zip archive")
    for name in REAL:
        if (REAL_MODELS / name).is_dir():
            copy_real_model(name, folder / "real")
    return folder


@pytest.fixture(scope="module")
def collection(tiny_package, tmp_path_factory):
    folder = make_collection(tmp_path_factory.mktemp("collection"), tiny_package)
    out = tmp_path_factory.mktemp("collection-out")
    result = api.validate_collection(folder, out, isolate=False)  # isolation has its own test below
    return folder, out, result


def comparable(summary: dict) -> list[dict]:
    return [{k: v for k, v in p.items() if k not in ("duration_s", "cache_hit")} for p in summary["packages"]]


@pytest.mark.slow
def test_each_package_gets_its_verdict(collection):
    _, out, result = collection
    entries = {e.path: e for e in result.entries}
    assert set(SYNTHETIC) <= set(entries)
    for path, (status, rules) in SYNTHETIC.items():
        assert (entries[path].status, entries[path].failed_rules) == (status, rules), (path, entries[path].error)
    assert entries["nested/broken"].failures == 3  # torchscript, onnx and the SavedModel; the state dict needs --trust
    assert entries["tiny.zip"].deepimagej == entries["unzipped"].deepimagej == "runs"
    assert entries["nested/broken"].deepimagej == "runs but gives different numbers"  # Fiji's numbers differ too
    assert entries["garbage"].deepimagej is None  # no deepImageJ rule could run
    assert "is named .zip but is not a zip archive" in entries["not-a-package.zip"].error
    assert result.exit_code == 1
    summary = json.loads((out / "summary.json").read_text())
    assert [p["path"] for p in summary["packages"]] == sorted(entries)
    assert summary["counts"]["failed"] == 3
    first = summary["packages"][0]
    assert {"path", "status", "deepimagej", "failed_rules", "duration_s", "cache_hit"} <= set(first)


@pytest.mark.slow
def test_the_real_models_pass_in_the_collection(collection):
    _, _, result = collection
    entries = {e.path: e for e in result.entries}
    for name in REAL:
        if not (REAL_MODELS / name).is_dir():
            pytest.skip(f"../shared/real-models/{name} is not present (a user's clone)")
        entry = entries[f"real/{name}"]
        assert (entry.status, entry.failed_rules, entry.error) == ("passed", [], None)


def test_junit_has_one_testsuite_per_package(collection):
    _, out, result = collection
    root = ET.parse(out / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [e.path for e in result.entries]
    broken = suites["nested/broken"]
    assert {f.get("type") for f in broken.findall("testcase/failure")} == {"REP001"}
    assert int(broken.get("failures")) == 3 and int(suites["tiny.zip"].get("failures")) == 0
    [failure] = suites["not-a-package.zip"].findall("testcase/failure")
    assert failure.get("type") == "SourceError"
    assert int(root.get("failures")) == sum(int(s.get("failures")) for s in suites.values())


def test_every_package_has_a_report_linked_from_a_self_contained_dashboard(collection):
    _, out, result = collection
    index = (out / "index.html").read_text()
    for entry in result.entries:
        assert (out / entry.report).is_file()
        assert f'href="{entry.report}"' in index
        assert entry.path in (out / entry.report).read_text() or (entry.name or "") in (out / entry.report).read_text()
    assert not re.search(r"\b(src|href)\s*=\s*[\"']?(https?:)?//", index)
    assert "<script>" in index and "<script src" not in index
    rules = re.findall(r'<option value="([A-Z]+\d+)">', index)
    assert {"FMT001", "REP001"} <= set(rules)
    broken = (out / "reports" / "nested-broken.html").read_text()
    assert broken.count("data:image/png") == 12  # input, expected, produced, difference per failed format


@pytest.mark.slow
def test_dashboard_opens_in_headless_chromium_and_lists_every_package(collection, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed")
    _, out, result = collection

    def dump(url: str) -> str:
        command = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    dom = dump((out / "index.html").as_uri())
    assert 'data-ready="1"' in dom  # the page's script ran to its end
    for entry in result.entries:
        assert f">{entry.path}</a>" in dom
        if entry.name:
            assert entry.name in dom
    filtered = dump((out / "index.html").as_uri() + "#status=failed&sort=package&order=desc")
    rows = re.findall(r'<tr data-status="(\w+)"[^>]*?( hidden="")?>\s*<td><a href="[^"]+">([^<]+)</a>', filtered)
    assert [path for _, _, path in rows] == sorted((e.path for e in result.entries), reverse=True)
    assert {status for status, hidden, _ in rows if not hidden} == {"failed"}
    assert sum(not hidden for _, hidden, _ in rows) == 3


def test_second_run_takes_every_validated_package_from_the_cache(collection):
    folder, out, first = collection
    again = api.validate_collection(folder, out, isolate=False)
    hits = {e.path: e.cache_hit for e in again.entries}
    assert hits == {e.path: e.error is None for e in first.entries}  # errors are cheap and not cached
    assert comparable(again.to_dict()) == comparable(first.to_dict())
    assert (out / "reports" / "nested-broken.html").read_text().count("data:image/png") == 12


def test_changed_package_is_validated_again_and_no_cache_forces(tmp_path):
    folder = tmp_path / "collection"
    write_garbage(folder / "garbage")
    write_garbage(folder / "other")
    out = tmp_path / "out"

    def hits(**options) -> dict[str, bool]:
        return {e.path: e.cache_hit for e in api.validate_collection(folder, out, isolate=False, **options).entries}

    twins = api.validate_collection(folder, tmp_path / "twins", isolate=False).entries  # the same content twice
    assert twins[0].sha256 == twins[1].sha256 and twins[0].failed_rules == twins[1].failed_rules == ["FMT001"]
    assert hits() == {"garbage": False, "other": False}
    assert hits() == {"garbage": True, "other": True}
    (folder / "other" / "rdf.yaml").write_text("still: [not closed")
    assert hits() == {"garbage": True, "other": False}
    assert hits(target="deepimagej") == {"garbage": False, "other": False}  # the target is part of the key
    assert hits(use_cache=False) == {"garbage": False, "other": False}
    cache = tmp_path / "elsewhere"
    assert hits(cache_dir=cache) == {"garbage": False, "other": False} and any(cache.iterdir())


def test_text_file_of_paths_and_a_missing_package(tmp_path):
    write_garbage(tmp_path / "models" / "garbage")
    listed = tmp_path / "packages.txt"
    listed.write_text("# the packages to check\nmodels/garbage\n\nmodels/missing.zip\n")
    result = api.validate_collection(listed, tmp_path / "out", isolate=False)
    entries = {e.path: e for e in result.entries}
    assert list(entries) == ["models/garbage", "models/missing.zip"]
    assert entries["models/garbage"].failed_rules == ["FMT001"]
    assert "does not exist" in entries["models/missing.zip"].error


def test_a_model_run_over_its_time_limit_does_not_stop_the_others(package_folder, tmp_path):
    folder = tmp_path / "collection"
    folder.mkdir()
    shutil.move(hanging_package(package_folder), folder / "a-hanging")  # its model never gets built
    write_garbage(folder / "b-garbage")
    # a limit that reading either package keeps easily, even on a busy machine; only the model run goes over it
    result = api.validate_collection(folder, tmp_path / "out", trust=True, time_limit_s=10)  # isolated by default
    hanging, garbage = result.entries
    assert "REP001" in hanging.failed_rules and "SAF006" not in hanging.failed_rules
    report = json.loads((tmp_path / "out" / hanging.report_json).read_text())
    [stopped] = [c for c in report["checks"] if c["id"] == "REP001"]
    assert stopped["details"]["reason"] == "time"
    assert garbage.failed_rules == ["FMT001"]


def subset(collection, paths: list[str], list_name: str) -> tuple[Path, list[dict]]:
    """A text file listing some packages of the collection, and their entries from the sequential run."""
    folder, _, sequential = collection
    listed = folder / list_name
    listed.write_text("\n".join(sorted(paths)) + "\n")
    return listed, [e for e in comparable(sequential.to_dict()) if e["path"] in paths]


@pytest.mark.slow
def test_a_dask_scheduler_gives_the_sequential_results(collection, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    listed, expected = subset(collection, list(SYNTHETIC), "scheduler-subset.txt")
    # one worker thread in this process: the scheduler path without starting processes
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        spread = api.validate_collection(listed, tmp_path / "out", scheduler=cluster.scheduler_address, isolate=False)
    assert comparable(spread.to_dict()) == expected


@pytest.mark.slow
def test_two_worker_processes_with_isolated_model_runs_give_the_sequential_results(collection, tmp_path):
    pytest.importorskip("dask.distributed")
    listed, expected = subset(collection, ["garbage", "nested/broken", "tiny.zip"], "workers-subset.txt")
    parallel = api.validate_collection(listed, tmp_path / "parallel", workers=2, use_cache=False)
    assert comparable(parallel.to_dict()) == expected
    assert [e.status for e in parallel.entries] == ["failed", "failed", "passed"]


def test_cli_validate_collection_exit_codes(tmp_path):
    write_garbage(tmp_path / "models" / "garbage")
    runner = CliRunner()
    result = runner.invoke(app, ["validate-collection", str(tmp_path / "models"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "FMT001" in result.output and (tmp_path / "out" / "index.html").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    for arguments in (
        [str(tmp_path / "missing")],
        [str(empty)],
        [str(tmp_path / "models"), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
        [str(tmp_path / "models"), "--target", "fiji"],
    ):
        result = runner.invoke(app, ["validate-collection", *arguments, "--out", str(tmp_path / "out2")])
        assert result.exit_code == 2, (arguments, result.output)
        assert "Traceback" not in result.output


def run_action_script(tmp_path: Path, paths: str, **env) -> tuple[subprocess.CompletedProcess, Path, Path]:
    summary, outputs = tmp_path / "step-summary.md", tmp_path / "github-output"
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ZOO_PATHS": paths,
        "ZOO_OUT": str(tmp_path / "zoo-validation"),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(outputs),
        **env,
    }
    done = subprocess.run(
        ["bash", str(ROOT / "ci" / "validate.sh")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, summary, outputs


@pytest.mark.slow
def test_action_script_validates_a_collection_and_writes_the_job_summary(tmp_path):
    write_garbage(tmp_path / "models" / "garbage")
    (tmp_path / "models" / "fake.zip").write_text("no zip")
    done, summary, outputs = run_action_script(tmp_path, "models/")
    assert done.returncode == 1, done.stderr[-3000:]
    text = summary.read_text()
    assert "# zoo validate-collection" in text and "**Verdict: failed**" in text
    assert "`garbage`" in text and "`fake.zip`" in text
    junit = ET.parse(tmp_path / "zoo-validation" / "junit.xml").getroot()
    assert [s.get("name") for s in junit.findall("testsuite")] == ["fake.zip", "garbage"]
    assert "status=1" in outputs.read_text() and "junit=" in outputs.read_text()


@pytest.mark.slow
def test_action_script_validates_one_package_and_several(tmp_path):
    write_garbage(tmp_path / "garbage")
    write_garbage(tmp_path / "other")
    done, summary, _ = run_action_script(tmp_path, "garbage/rdf.yaml", ZOO_TARGET="deepimagej")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "# Validation of rdf.yaml" in summary.read_text() and "**Verdict: failed**" in summary.read_text()
    assert (tmp_path / "zoo-validation" / "report.html").is_file()
    done, summary, _ = run_action_script(tmp_path, "garbage\nother")
    assert done.returncode == 1, done.stderr[-3000:]
    junit = ET.parse(tmp_path / "zoo-validation" / "junit.xml").getroot()
    assert len(junit.findall("testsuite")) == 2


def test_action_script_without_paths_is_a_usage_error(tmp_path):
    done, summary, _ = run_action_script(tmp_path, "")
    assert done.returncode == 2 and "no paths" in done.stderr and not summary.exists()


def test_pre_commit_hook_validates_each_changed_rdf(tmp_path):
    write_garbage(tmp_path / "a")
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(ROOT / "ci" / "pre-commit-validate.sh"), "--target=deepimagej", "a/rdf.yaml"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and "FMT001" in done.stdout
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "entry: ci/pre-commit-validate.sh" in hooks
    assert re.search(r"files: .*rdf", hooks)


def test_action_definition_runs_the_script_after_installing_the_readme_way():
    from ruyaml import YAML

    action = YAML(typ="safe").load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"paths", "target", "python-version"} <= set(action["inputs"])
    commands = "\n".join(step.get("run", "") for step in action["runs"]["steps"])
    assert "pip install -q -c constraints.txt -e ." in commands
    assert 'bash "$GITHUB_ACTION_PATH/ci/validate.sh"' in commands
    env = next(step["env"] for step in action["runs"]["steps"] if step.get("id") == "validate")
    assert env["ZOO_PATHS"] == "${{ inputs.paths }}"
