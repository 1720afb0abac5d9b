"""The trainers' registry: one entry per trainer carries its class, card and citation; an incomplete one is refused."""

import pytest

from zoo.trainers import TRAINERS, TrainerEntry, card_for, citation_for, register_trainer
from zoo.trainers.cards import UNET2D, Citation, fallback_card

UNET_DOI = "10.1007/978-3-319-24574-4_28"


@pytest.fixture
def registry_unchanged():
    before = dict(TRAINERS)
    yield
    assert TRAINERS == before


@pytest.mark.parametrize(
    ("trainer", "doi"),
    [
        ("unet2d", UNET_DOI),
        ("unet2d-keras", UNET_DOI),
        ("unet2d-multiclass", UNET_DOI),
        ("care2d", "10.1038/s41592-018-0216-7"),
        ("n2v2d", "10.1109/CVPR.2019.00223"),
        ("classifier2d", "10.1038/nature14539"),
        ("unet3d", "10.1007/978-3-319-46723-8_49"),
    ],
)
def test_every_trainer_cites_its_paper(trainer, doi):
    assert citation_for(trainer).as_dict()["doi"] == doi
    assert card_for(trainer) is TRAINERS[trainer].card


def test_every_entry_names_its_own_class_and_card():
    for name, entry in TRAINERS.items():
        assert entry.name == entry.card.trainer == name
        module, class_name = entry.target.split(":")
        assert module.startswith("zoo.trainers.") and class_name.endswith("Trainer")


@pytest.mark.usefixtures("registry_unchanged")
@pytest.mark.parametrize("citation", [None, {"text": "a paper", "doi": UNET_DOI}])
def test_a_trainer_without_a_citation_is_refused(citation):
    with pytest.raises(ValueError, match="mine.*citation"):
        register_trainer("mine", "my_package.trainer:MyTrainer", card=fallback_card("mine"), citation=citation)
    assert "mine" not in TRAINERS


@pytest.mark.usefixtures("registry_unchanged")
def test_a_trainer_with_another_trainers_card_or_twice_registered_is_refused():
    citation = Citation("a paper", doi=UNET_DOI)
    with pytest.raises(ValueError, match="card for 'unet2d'"):
        register_trainer("mine", "my_package.trainer:MyTrainer", card=UNET2D, citation=citation)
    with pytest.raises(ValueError, match="registered already"):
        register_trainer("unet2d", "my_package.trainer:MyTrainer", card=UNET2D, citation=citation)
    with pytest.raises(ValueError, match="'module:Class'"):
        TrainerEntry("mine", "my_package.trainer", fallback_card("mine"), citation)


def test_a_citation_needs_a_text_and_a_doi_or_url():
    with pytest.raises(ValueError, match="DOI or URL"):
        Citation("a paper")
    assert Citation("a paper", url="https://example.org").as_dict() == {"text": "a paper", "url": "https://example.org"}


@pytest.mark.parametrize(
    ("architecture", "doi"),
    [
        ("unet3d", "10.1007/978-3-319-46723-8_49"),
        ("classifier2d", "10.1038/nature14539"),
        ("unet2d_keras", UNET_DOI),
        ("something-else", UNET_DOI),
    ],
)
def test_a_checkpoint_of_an_unregistered_trainer_cites_by_its_architecture(architecture, doi):
    assert citation_for("an-older-trainer", architecture).doi == doi
