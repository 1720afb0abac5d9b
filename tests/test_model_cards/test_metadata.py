"""What a package says: the user's words, the trainer's for synthetic data, neutral words for the user's data."""

from __future__ import annotations

import re

import pytest

from zoo.config import PackageConfig
from zoo.model_cards import bioimageio_config, card_for, package_metadata, render_readme
from zoo.trainers import default_package_config
from zoo.trainers.cards import without_data_claims

from .fakes import TRAINER_KINDS, make_checkpoint, make_exported

FOLDER_DATA = {
    "source": "folder",
    "folder": "/data/private/lab-data",
    "n_files": 12,
    "sha256": "ab" * 32,
    "split": {"train": 8, "validation": 2, "test": 2},
}
# words the synthetic data's description uses that nobody knows to hold for a user's folder
SYNTHETIC_CLAIMS = re.compile(r"nucle|fluoresc|\bCC0|synthetic|cell phenotype", re.IGNORECASE)


def user_checkpoint(trainer: str = "unet2d"):
    return make_checkpoint(trainer, data=dict(FOLDER_DATA))


def test_synthetic_data_keeps_the_trainers_words():
    checkpoint = make_checkpoint("unet2d")
    metadata = package_metadata(checkpoint, default_package_config("unet2d"))
    defaults = default_package_config("unet2d")
    assert metadata.name == defaults.name and metadata.description == defaults.description
    assert metadata.tags == defaults.tags and "nuclei" in metadata.tags
    assert metadata.data_license == "CC0-1.0" and not metadata.user_data
    assert package_metadata(checkpoint, PackageConfig()) == metadata  # nothing given: the same words


@pytest.mark.parametrize("trainer", TRAINER_KINDS)
def test_user_data_gets_no_synthetic_claims(trainer, tmp_path):
    checkpoint = user_checkpoint(trainer)
    for config in (default_package_config(trainer), PackageConfig()):  # the api's dict path, and a bare config
        metadata = package_metadata(checkpoint, config)
        assert metadata.user_data
        assert not SYNTHETIC_CLAIMS.search(metadata.name + metadata.description), metadata
        assert not {t for t in metadata.tags if SYNTHETIC_CLAIMS.search(t)}, metadata.tags
        assert "lab-data" in metadata.description and "12" in metadata.description
        assert metadata.data_license == "unknown"
        assert any("--description" in w for w in metadata.warnings)
    card = card_for(trainer).for_data(FOLDER_DATA)
    assert card.target_structure == () and card.modality == ""
    for text in (card.title, card.summary, card.intended_use, *card.limitations, *card.failure_modes):
        assert not re.search(r"nucle|fluoresc|synthetic", text, re.IGNORECASE), text
    config = bioimageio_config(checkpoint)
    assert "target_structure" not in config or config["target_structure"] == []
    assert "modality" not in config
    assert config["training"]["data"]["license"] == "unknown"


def test_user_data_readme_describes_the_users_folder_without_claims(tmp_path):
    text = render_readme(user_checkpoint(), make_exported(), PackageConfig(), tmp_path / "README.md").read_text()
    assert not re.search(r"nucle|fluoresc|CC0|synthetic", text, re.IGNORECASE), text
    assert "the user's folder `lab-data`: 12 files, sha256 of all files" in text
    assert "- Data licence: unknown (not given" in text
    assert "segments the foreground structures it was trained on" in text or "foreground structures" in text
    licence = text.split("## Licence, authors and citation\n", 1)[1].split("\n## ", 1)[0]
    assert "**CC-BY-4.0**, zoo's default" in licence and "does not know the licence of the training data" in licence
    assert "a placeholder" in licence


def test_the_users_words_win_and_are_stated(tmp_path):
    doc = tmp_path / "model.md"
    doc.write_text("# HeLa nuclei model\n\nTrained on our **HeLa** images.\n", encoding="utf-8")
    config = PackageConfig(
        name="Lab HeLa nuclei",
        description="Segments HeLa nuclei.",
        tags="nuclei,hela",
        authors=[{"name": "Jane Doe", "affiliation": "Lab", "github_user": "jdoe"}],
        license="MIT",
        cite=["10.5281/zenodo.1234567"],
        documentation=doc,
        data_license="CC-BY-4.0",
    )
    metadata = package_metadata(user_checkpoint(), config)
    assert metadata.name == "Lab HeLa nuclei" and metadata.description == "Segments HeLa nuclei."
    assert metadata.tags[:2] == ["nuclei", "hela"] and "unet" in metadata.tags
    assert metadata.license == "MIT" and metadata.data_license == "CC-BY-4.0"
    assert [c.get("doi") for c in metadata.cite] == ["10.5281/zenodo.1234567", "10.1007/978-3-319-24574-4_28"]
    assert metadata.warnings == ()
    text = render_readme(user_checkpoint(), make_exported(), config, tmp_path / "README.md", metadata).read_text()
    assert text.startswith("# HeLa nuclei model\n")  # the documentation's own title
    assert "Trained on our **HeLa** images." in text
    assert "\n## Validation\n" in text and "\n## Training\n" in text  # zoo's measured sections follow it
    assert "- Licence: **MIT**, chosen by the authors" in text
    assert "Jane Doe (Lab)" in text and "doi:10.5281/zenodo.1234567" in text
    assert "- Data licence: CC-BY-4.0 (as given by the authors" in text
    assert bioimageio_config(user_checkpoint(), data_license="CC-BY-4.0")["training"]["data"]["license"] == "CC-BY-4.0"


def test_no_licence_given_is_never_silent():
    for checkpoint in (make_checkpoint("unet2d"), user_checkpoint()):
        metadata = package_metadata(checkpoint, PackageConfig(authors=["Jane Doe"]))
        assert metadata.license == "CC-BY-4.0" and "zoo's default" in metadata.license_note
        assert any(w.startswith("no --license given: the package is licensed CC-BY-4.0") for w in metadata.warnings)


def test_documentation_links_that_are_not_shipped_are_warned_about(tmp_path):
    doc = tmp_path / "model.md"
    doc.write_text("See ![the figure](figure.png) and [the paper](https://example.org).\n", encoding="utf-8")
    metadata = package_metadata(user_checkpoint(), PackageConfig(documentation=doc))
    assert any("figure.png" in w and "example.org" not in w for w in metadata.warnings)


def test_tensor_descriptions_lose_the_synthetic_datas_content():
    assert without_data_claims("raw fluorescence image, any intensity range") == "raw image, any intensity range"
    assert without_data_claims("probability that a pixel belongs to a nucleus") == (
        "probability that a pixel belongs to the foreground"
    )
