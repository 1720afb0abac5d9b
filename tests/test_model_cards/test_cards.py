import pytest

from zoo.model_cards.cards import CARDS, card_for
from zoo.model_cards.rdf_config import MAX_ARCHITECTURE_TYPE, MAX_SHORT

from .fakes import TRAINER_KINDS, metrics_for


def test_every_registered_trainer_has_a_card():
    from zoo.trainers import TRAINERS

    assert sorted(set(TRAINERS) - set(CARDS)) == []


@pytest.mark.parametrize("trainer", TRAINER_KINDS)
def test_card_names_every_test_metric_its_trainer_records(trainer):
    card = card_for(trainer)
    assert card.trainer == trainer
    recorded = {n for n in metrics_for(trainer) if n.startswith("test_")}
    per_class = {n for n in recorded for prefix in card.per_class.values() if n.startswith(prefix[0])}
    assert recorded - per_class == set(card.metrics)
    assert set(card.metric_descriptions) == set(card.metrics)
    assert set(card.per_class) <= set(card.metrics)


@pytest.mark.parametrize("card", list(CARDS.values()), ids=list(CARDS))
def test_card_fits_bioimageio_limits_and_says_where_it_fails(card):
    assert all(len(label) <= MAX_SHORT for label in [*card.metrics.values(), *(p[1] for p in card.per_class.values())])
    assert 0 < len(card.architecture) <= MAX_ARCHITECTURE_TYPE
    assert card.task and card.intended_use and card.inputs and card.outputs and card.loss
    assert len(card.failure_modes) >= 2


@pytest.mark.parametrize(
    ("trainer", "words"),
    [
        ("care2d", "Hallucination"),
        ("n2v2d", "Structured noise"),
        ("classifier2d", "Class imbalance"),
        ("unet2d-multiclass", "Class imbalance"),
        ("unet3d", "Anisotropy"),
        ("unet2d", "Dataset shift"),
    ],
)
def test_failure_modes_name_the_risk_of_each_task(trainer, words):
    assert any(mode.startswith(words) for mode in card_for(trainer).failure_modes)


def test_unknown_trainer_gets_an_honest_fallback():
    card = card_for("my-own-trainer")
    assert card.trainer == "my-own-trainer"
    assert card.metrics == {}
    assert "my-own-trainer" in card.title
    assert card_for("my-own-trainer") == card
