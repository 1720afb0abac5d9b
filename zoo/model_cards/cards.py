"""The cards model cards are filled from: each trainer declares its Card where it is registered (zoo.trainers)."""

from __future__ import annotations

from zoo.trainers import TRAINERS, card_for
from zoo.trainers.cards import COMMON_METRICS, DATASET_SHIFT, Card, fallback_card

# the registered trainers' cards by trainer name, read from the registry
CARDS: dict[str, Card] = {name: entry.card for name, entry in TRAINERS.items()}

__all__ = ["CARDS", "COMMON_METRICS", "DATASET_SHIFT", "Card", "card_for", "fallback_card"]
