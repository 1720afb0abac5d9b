"""The cards model cards are filled from: each trainer declares its Card where it is registered (zoo.trainers)."""

from __future__ import annotations

from zoo.trainers import TRAINERS, card_for
from zoo.trainers.cards import Card

# the registered trainers' cards by trainer name, read from the registry
CARDS: dict[str, Card] = {name: entry.card for name, entry in TRAINERS.items()}

__all__ = ["CARDS", "Card", "card_for"]
