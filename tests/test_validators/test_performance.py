"""PRF001: time and peak memory of one inference per weight format, in the JSON, Markdown and HTML reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_validators import runtime_packages as rp
from zoo.validators.measure import current_rss_mb, measure


def test_measure_sees_a_peak_that_is_freed_before_the_end():
    with measure() as measured:
        block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
        block.sum()
        del block
    assert measured.seconds > 0
    assert measured.peak_rss_mb - measured.rss_before_mb > 40
    assert current_rss_mb() < measured.peak_rss_mb


@pytest.mark.slow
def test_performance_is_reported_per_weight_format(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(2), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=2)
    )
    [finding] = rp.run_rules(folder, ("REP001", "DET001", "PRF001"))["PRF001"]
    assert finding.status == "passed" and finding.location == "weights.torchscript"
    details = finding.details
    assert details["weight_format"] == "torchscript" and details["device"] == "cpu"
    assert details["input_shape"] == "1×1×24×24"
    assert details["first_inference_s"] > 0 and details["inference_s"] > 0 and details["load_s"] > 0
    assert details["peak_rss_mb"] > 50 and details["inference_increase_mb"] >= 0
    assert "ru_maxrss" in details["memory_method"]


@pytest.mark.slow
def test_reports_carry_the_performance_table(tmp_path):
    from zoo.validators import validate_source
    from zoo.validators.writers import render_html, render_markdown

    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(2), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=2)
    )
    report = validate_source(folder, isolate=False)
    [entry] = json.loads(json.dumps(report.to_dict()))["performance"]
    assert entry["weight_format"] == "torchscript" and entry["inference_s"] > 0
    markdown = render_markdown(report)
    section = markdown[markdown.index("## performance") :]
    assert "| torchscript | cpu | 1×1×24×24 |" in section and "Memory: resident set size sampled" in section
    html = render_html(report)
    section = html[html.index('<details id="stage-performance"') :]
    assert '<table id="performance">' in section and "<td>torchscript</td>" in section


def test_nothing_to_run_is_skipped_with_the_reason(package_folder):
    folder = rp.only_weights(package_folder(), "pytorch_state_dict")
    [finding] = rp.run_rules(folder, ("PRF001",))["PRF001"]
    assert finding.status == "skipped" and "pytorch_state_dict needs --trust" in finding.message


@pytest.mark.slow
def test_measure_adds_the_memory_of_a_worker_process():
    import subprocess
    import sys
    import time

    worker = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(96 * 2**20); time.sleep(30)"], stdout=subprocess.DEVNULL
    )
    try:
        time.sleep(0.1)
        with measure(pids=(worker.pid,)) as measured:
            time.sleep(1.0)  # the worker's 96 MB are touched by now
    finally:
        worker.kill()
        worker.wait()
    assert measured.peak_rss_mb - current_rss_mb() > 80
