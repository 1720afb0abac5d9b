"""SAF002: unpacking a zip is bounded in time, and exceeding the deadline is a finding."""

from __future__ import annotations

import zipfile

import pytest

from tests.conftest import zip_folder
from tests.test_validators import runtime_packages as rp
from zoo.bioimage.source import ExtractionTimeout, safe_extract
from zoo.validators import validate_source


@pytest.fixture
def package_zip(tmp_path):
    folder = rp.write_package(
        tmp_path / "p", rp.conv_stack(1), rp.blob_image((1, 1, 24, 24)), rp.image_axes(), rp.output_axes(halo=1)
    )
    return zip_folder(folder, tmp_path / "p.zip")


@pytest.mark.slow
def test_zip_unpacked_in_time_passes_with_its_duration(package_zip):
    report = validate_source(package_zip, isolate=False)
    [finding] = report.by_id("SAF002")
    assert finding.status == "passed" and 0 <= finding.details["seconds"] < 60


def test_zip_over_the_deadline_is_a_finding_and_leaves_nothing(package_zip, tmp_path):
    report = validate_source(package_zip, isolate=False, extract_time_limit_s=1e-9)
    [finding] = report.by_id("SAF002")
    assert finding.status == "failed" and report.status == "failed"
    assert finding.details["limit_s"] == 1e-9 and finding.details["members_done"] == 0
    assert finding.details["members"] == len(zipfile.ZipFile(package_zip).namelist())
    assert report.findings == [finding]


def test_safe_extract_stops_between_chunks(package_zip, tmp_path, monkeypatch):
    from zoo.bioimage import source

    ticks = iter(range(1000))
    monkeypatch.setattr(source.time, "monotonic", lambda: float(next(ticks)))  # one second per look at the clock
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ExtractionTimeout, match="unpacking took more than 2.5 s") as raised:
        safe_extract(package_zip, target, time_limit_s=2.5)
    assert raised.value.members_done < raised.value.members
