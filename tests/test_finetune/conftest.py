"""Fixtures for fine-tuning: the tiny session package cut down to one weight format (as third-party packages come),
and small folders of target-domain images (zoo.data.shifted) in the `--data` layout."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.conftest import load_rdf, one_torch_thread, save_rdf


def package_with(tiny_package: Path, folder: Path, formats: tuple[str, ...]) -> Path:
    """An unzipped copy of the tiny package whose rdf lists only `formats` (their files kept, the others removed)."""
    with zipfile.ZipFile(tiny_package) as archive:
        archive.extractall(folder)
    rdf = load_rdf(folder)
    weights = rdf["weights"]
    for name, entry in list(weights.items()):
        if name not in formats:
            (folder / entry["source"]).unlink()
            weights.pop(name)
    for entry in weights.values():
        entry.pop("parent", None)
    save_rdf(folder, rdf)
    return folder


@pytest.fixture
def one_format(tiny_package, tmp_path):
    def make(*formats: str) -> Path:
        return package_with(tiny_package, tmp_path / f"package-{'-'.join(formats)}", formats)

    return make


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread, and far faster than on two when other work shares the cores."""
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def target_folder(tmp_path_factory) -> Path:
    """Ten 64×64 target-domain images with their masks."""
    from zoo.data.shifted import make_shifted_nuclei, write_image_mask_folder

    return write_image_mask_folder(
        tmp_path_factory.mktemp("target") / "data", *make_shifted_nuclei(10, (64, 64), seed=1)
    )
