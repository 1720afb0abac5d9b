"""A package says what the user said, claims nothing about data zoo has not seen, carries no bioimageio.spec
warning of zoo's making, checks the user's words before any export work and never replaces a file silently."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from ruyaml import YAML

from tests.conftest import tiny_train_config
from zoo import api
from zoo.errors import InputError

MAINTAINER_WARNING = "Missing `maintainers` or any author in `authors` with a specified `github_user` name."
SYNTHETIC_CLAIMS = re.compile(r"nucle|fluoresc|\bCC0|synthetic", re.IGNORECASE)


def read(zip_path: Path, name: str) -> str:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.read(name).decode("utf-8")


def rdf_of(zip_path: Path) -> dict:
    return YAML(typ="safe").load(read(zip_path, "rdf.yaml"))


def fmt003(report) -> list[tuple[str, str]]:
    return [(f.location, f.message) for f in report.findings if f.id == "FMT003" and f.status != "passed"]


def forbid_export_work(monkeypatch) -> None:
    """Any export work (loading the model for export, running an exporter) fails the test."""
    from zoo.packaging import export, package

    def no_work(*args, **kwargs):
        raise AssertionError("export work started")

    monkeypatch.setattr(package, "export_checkpoint", no_work)
    monkeypatch.setattr(package.SourceModel, "from_checkpoint", no_work)
    monkeypatch.setattr(export, "export_checkpoint", no_work)


@pytest.fixture(scope="module")
def user_checkpoint(tmp_path_factory) -> Path:
    """A U-Net trained for one epoch on a user's folder of six 80×80 TIFF image/mask pairs."""
    import tifffile

    from zoo.config import DataConfig
    from zoo.data.synthetic import make_nuclei

    folder = tmp_path_factory.mktemp("user") / "lab-data"
    images, masks = make_nuclei(6, (80, 80), seed=3)
    for i, (image, mask) in enumerate(zip(images, masks)):
        for kind, array in (("images", image), ("masks", (mask > 0).astype("uint8") * 255)):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(folder / kind / f"sample{i}.tif", array)
    out = tmp_path_factory.mktemp("user-train")
    return api.train(tiny_train_config(out, data=DataConfig(folder=folder))).checkpoint


@pytest.fixture(scope="module")
def user_package(user_checkpoint, tmp_path_factory):
    """`zoo package` of the user-folder model with no words given (the api's dict path)."""
    return api.package(user_checkpoint, tmp_path_factory.mktemp("user-package"), "pytorch_state_dict", {})


@pytest.fixture(scope="module")
def worded_package(user_checkpoint, tmp_path_factory):
    """The same model with the user's words from a metadata file (an author with a GitHub user name), packaged with
    overwrite=True over an older zip of the same name."""
    import httpx

    from zoo.config import PackageConfig

    folder = tmp_path_factory.mktemp("worded")
    (folder / "model.md").write_text("# Lab HeLa model\n\nOur own U-Net for **HeLa** nuclei.\n", encoding="utf-8")
    (folder / "meta.yaml").write_text(
        "name: Lab HeLa nuclei\n"
        "description: Segments HeLa nuclei in our spinning-disk images.\n"
        "tags: [nuclei, hela]\n"
        "authors:\n  - name: Jane Doe\n    affiliation: Imaging Facility\n    github_user: jdoe-lab\n"
        "license: mit\n"
        "cite: [10.5281/zenodo.1234567]\n"
        "documentation: model.md\n"
        "data_license: CC-BY-4.0\n",
        encoding="utf-8",
    )
    out = tmp_path_factory.mktemp("worded-package")
    old = out / "lab-hela-nuclei.zip"
    old.write_bytes(b"an older package")
    config = PackageConfig.from_metadata_file(folder / "meta.yaml", name=None, description="")
    real_get = httpx.get

    def offline(url, *args, **kwargs):  # packaging must not ask GitHub whether github_user exists: no network
        if str(url).startswith("https://api.github.com/users/"):
            raise httpx.ConnectError("no network here", request=httpx.Request("GET", url))
        return real_get(url, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx, "get", offline)
        from zoo.packaging.package import build_package
        from zoo.trainers.checkpoint import load_checkpoint

        result = build_package(load_checkpoint(user_checkpoint), out, ["pytorch_state_dict"], config, overwrite=True)
    return result


@pytest.mark.slow
def test_user_folder_package_claims_nothing_the_synthetic_data_shows(user_package):
    rdf_text, readme = read(user_package.zip_path, "rdf.yaml"), read(user_package.zip_path, "README.md")
    rdf = YAML(typ="safe").load(rdf_text)
    assert not SYNTHETIC_CLAIMS.search(rdf_text), SYNTHETIC_CLAIMS.findall(rdf_text)
    assert not SYNTHETIC_CLAIMS.search(readme), SYNTHETIC_CLAIMS.findall(readme)
    assert "training_data" not in rdf  # no invented authors, licence or citation for the user's data
    assert "lab-data" in rdf["description"] and "6 " in rdf["description"]
    assert "nuclei" not in rdf["tags"] and {"unet", "segmentation"} <= set(rdf["tags"])
    assert rdf["config"]["bioimageio"].get("target_structure", []) == []
    data = rdf["config"]["bioimageio"]["training"]["data"]
    assert data["license"] == "unknown" and data["folder_name"] == "lab-data" and len(data["sha256"]) == 64
    assert f"sha256 of all files `{data['sha256']}`" in readme
    assert "- Data licence: unknown" in readme
    assert "foreground structures it was trained on" in readme


@pytest.mark.slow
def test_the_licence_used_is_said_when_none_was_given(user_package):
    rdf = rdf_of(user_package.zip_path)
    assert rdf["license"] == "CC-BY-4.0"
    assert any(w.startswith("no --license given: the package is licensed CC-BY-4.0") for w in user_package.warnings)
    readme = read(user_package.zip_path, "README.md")
    assert "- Licence: **CC-BY-4.0**, zoo's default, as no licence was given" in readme


@pytest.mark.slow
def test_no_format_warning_comes_from_what_zoo_writes(user_package, worded_package):
    # the only bioimageio.spec warning left needs a GitHub user name that zoo cannot know: it is the user's to give,
    # and zoo says so in its own warnings
    assert fmt003(user_package.report) == [("", MAINTAINER_WARNING)]
    assert any("github_user" in w for w in user_package.warnings)
    assert fmt003(worded_package.report) == []


@pytest.mark.slow
def test_synthetic_package_keeps_its_words_without_format_warnings(tiny_package):
    from bioimageio.spec import load_description

    from zoo.bioimage.spec import spec_details

    rdf = rdf_of(tiny_package)
    assert "fluorescent nuclei" in rdf["description"] and "nuclei" in rdf["tags"]
    assert "training_data" not in rdf
    assert "synthetic" in rdf["config"]["bioimageio"]["training"]["data"]["description"]
    assert rdf["config"]["bioimageio"]["training"]["data"]["license"] == "CC0-1.0"
    descr = load_description(tiny_package, perform_io_checks=False)
    warnings = [(loc, msg) for loc, msg, severity in spec_details(descr) if severity == "warning"]
    assert warnings == [("", MAINTAINER_WARNING)]


@pytest.mark.slow
def test_the_users_words_from_a_metadata_file_are_the_packages(worded_package):
    rdf, readme = rdf_of(worded_package.zip_path), read(worded_package.zip_path, "README.md")
    assert worded_package.zip_path.name == "lab-hela-nuclei.zip"
    assert rdf["name"] == "Lab HeLa nuclei" and rdf["license"] == "MIT"
    assert rdf["description"] == "Segments HeLa nuclei in our spinning-disk images."
    assert rdf["tags"][:2] == ["nuclei", "hela"]
    assert rdf["authors"] == [{"name": "Jane Doe", "affiliation": "Imaging Facility", "github_user": "jdoe-lab"}]
    assert [c.get("doi") for c in rdf["cite"]] == ["10.5281/zenodo.1234567", "10.1007/978-3-319-24574-4_28"]
    assert rdf["config"]["bioimageio"]["training"]["data"]["license"] == "CC-BY-4.0"
    assert readme.startswith("# Lab HeLa model\n") and "Our own U-Net for **HeLa** nuclei." in readme
    assert "\n## Validation\n" in readme
    assert worded_package.warnings == []


@pytest.mark.slow
def test_overwrite_replaces_the_older_zip(worded_package):
    out = worded_package.zip_path.parent
    assert zipfile.is_zipfile(worded_package.zip_path)
    assert sorted(p.name for p in out.iterdir()) == ["lab-hela-nuclei.zip"]  # no temporary folder left


@pytest.fixture
def folder_checkpoint(tmp_path) -> Path:
    """A checkpoint as a user-folder run writes it, made by hand (no training): enough for everything that must
    happen before any export work."""
    from tests.test_model_cards.fakes import make_checkpoint
    from zoo.trainers.checkpoint import save_checkpoint

    data = {"source": "folder", "folder": "/data/lab-data", "n_files": 6, "sha256": "ab" * 32}
    return save_checkpoint(make_checkpoint(data=data), tmp_path / "run" / "checkpoint.pt")


def test_a_bad_licence_is_one_line_before_any_export_work(folder_checkpoint, tmp_path, monkeypatch):
    forbid_export_work(monkeypatch)
    with pytest.raises(InputError) as caught:
        api.package(folder_checkpoint, tmp_path / "out", None, {"license": "FOO"})
    assert str(caught.value) == (
        "--license FOO is not an SPDX licence id; e.g. CC-BY-4.0, MIT, BSD-3-Clause (see https://spdx.org/licenses)"
    )
    assert not (tmp_path / "out").exists()


def test_an_existing_zip_is_refused_before_any_work_and_left_untouched(folder_checkpoint, tmp_path, monkeypatch):
    from zoo.config import PackageConfig
    from zoo.packaging.package import build_package, package_path
    from zoo.trainers.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(folder_checkpoint)
    out = tmp_path / "out"
    out.mkdir()
    config = PackageConfig(name="My lab model")
    target = package_path(checkpoint, out, config)
    assert target == out / "my-lab-model.zip"
    target.write_bytes(b"the user's earlier package \x00\x01")
    before = target.read_bytes()
    forbid_export_work(monkeypatch)
    with pytest.raises(InputError, match=r"my-lab-model\.zip exists already: pass --overwrite to replace it"):
        build_package(checkpoint, out, ["pytorch_state_dict"], config)
    assert target.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["my-lab-model.zip"]


def test_a_package_that_fails_validation_leaves_no_output_folder_it_made(tiny_checkpoint, tmp_path, monkeypatch):
    from zoo.errors import PackageError
    from zoo.packaging import package

    def failing(staged_zip, target, config, **kwargs):
        assert staged_zip.is_file() and staged_zip.parent.parent == target.parent  # staged inside --out
        raise PackageError(f"the package for {target.name} failed validation and was not written: TEST")

    monkeypatch.setattr(package, "validate_staged", failing)
    with pytest.raises(PackageError, match="failed validation"):
        api.package(tiny_checkpoint, tmp_path / "new" / "out", "pytorch_state_dict")
    assert not (tmp_path / "new" / "out").exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    with pytest.raises(PackageError, match="failed validation"):
        api.package(tiny_checkpoint, existing, "pytorch_state_dict")
    assert existing.is_dir() and list(existing.iterdir()) == []  # the user's folder stays


def test_export_refuses_existing_weights_before_any_work(folder_checkpoint, tmp_path, monkeypatch):
    from zoo.packaging.export import write_export
    from zoo.trainers.checkpoint import load_checkpoint

    out = tmp_path / "out"
    out.mkdir()
    old = out / "weights.onnx"
    old.write_bytes(b"older weights")
    forbid_export_work(monkeypatch)
    with pytest.raises(InputError, match=r"weights\.onnx exists already: pass --overwrite to replace it"):
        write_export(load_checkpoint(folder_checkpoint), out, ["pytorch_state_dict", "onnx"])
    assert old.read_bytes() == b"older weights"
    assert sorted(p.name for p in out.iterdir()) == ["weights.onnx"]


@pytest.mark.slow
def test_export_with_overwrite_replaces_the_weights(user_checkpoint, tmp_path):
    from zoo.packaging.export import write_export
    from zoo.trainers.checkpoint import load_checkpoint

    old = tmp_path / "weights.onnx"
    old.write_bytes(b"older weights")
    result = write_export(load_checkpoint(user_checkpoint), tmp_path, ["pytorch_state_dict", "onnx"], overwrite=True)
    assert {w.path.name for w in result.weights} == {"weights.pt", "weights.onnx"}
    assert old.read_bytes() != b"older weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet2d.py", "weights.onnx", "weights.pt"]
