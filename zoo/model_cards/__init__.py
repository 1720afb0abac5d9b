"""Model cards: the package README, its loss plot and cover, and the rdf's `config.bioimageio`, filled from the
trainer's Card and the training run."""

from zoo.model_cards.cards import CARDS, Card, card_for
from zoo.model_cards.diagnosis import VERDICTS, Diagnosis, diagnose
from zoo.model_cards.metadata import PackageMetadata, package_metadata
from zoo.model_cards.plots import loss_plot_svg
from zoo.model_cards.rdf_config import bioimageio_config
from zoo.model_cards.render import LOSS_PLOT, card_files, render_readme

__all__ = [
    "CARDS",
    "LOSS_PLOT",
    "VERDICTS",
    "Card",
    "Diagnosis",
    "PackageMetadata",
    "bioimageio_config",
    "card_files",
    "card_for",
    "diagnose",
    "loss_plot_svg",
    "package_metadata",
    "render_readme",
]
