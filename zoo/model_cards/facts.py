"""The facts of a training run that the README and the rdf's `config.bioimageio` both report, read from a
checkpoint once. Every field is read defensively: checkpoints of older or newer trainers may lack some."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.model_cards.cards import Card, card_for
from zoo.model_cards.diagnosis import Diagnosis, diagnose
from zoo.trainers.cards import is_synthetic
from zoo.trainers.checkpoint import Checkpoint

NOT_HYPER_PARAMETERS = ("trainer", "data", "out", "device")  # config keys reported elsewhere or machine-local
NOT_VERSIONS = ("device", "duration_s", "stopped_early", "resumed_after_epoch")  # environment keys, not versions
CLASS_KINDS = ("multiclass", "classification")
SYNTHETIC_DATA_LICENSE = "CC0-1.0"  # zoo's generated training data
UNKNOWN_LICENSE = "unknown"  # the user's data, when they did not say


@dataclass(frozen=True)
class RunFacts:
    """What one training run produced, in the card's words."""

    card: Card
    diagnosis: Diagnosis
    task: dict[str, Any]
    epochs_asked: int | None
    epochs_run: int
    best_epoch: int | None
    early_stopped: bool
    resumed_after_epoch: int | None
    patience: int | None
    duration_s: float | None
    device: str | None
    versions: dict[str, str]
    hyper_parameters: dict[str, Any]
    data: dict[str, Any]
    data_description: str
    split: dict[str, int]
    metrics: list[tuple[str, str, float]]  # (name, label, value) of the test metrics the card names
    other_metrics: list[tuple[str, str, float]]  # recorded values the card does not name (best val loss, ...)
    classes: list[str] = field(default_factory=list)  # columns of the per-class metrics
    per_class: dict[str, list[float]] = field(default_factory=dict)  # overall metric name -> value per class
    confusion_matrix: list[list[float]] | None = None  # rows: true class, columns: predicted class
    confusion_classes: list[str] = field(default_factory=list)
    smoke_test: bool = False  # a --quick run: the chain works, the model is not meant to be used

    @property
    def n_test(self) -> int | None:
        return self.split.get("test")


def run_facts(checkpoint: Checkpoint) -> RunFacts:
    """The run's facts; its card is the trainer's card for the data it was trained on (Card.for_data): nothing
    the synthetic data shows is claimed for a model trained on the user's data."""
    data = dict(checkpoint.data or {})
    card = card_for(checkpoint.trainer).for_data(data)
    task = dict(getattr(checkpoint, "task", None) or {})
    config = dict(checkpoint.config or {})
    history = list(checkpoint.history or [])
    metrics = {str(k): _float(v) for k, v in (checkpoint.metrics or {}).items()}
    environment = dict(checkpoint.environment or {})

    epochs_asked = _int(config.get("epochs"))
    epochs_run = len(history)
    best_epoch = _int(metrics.get("best_epoch")) if math.isfinite(metrics.get("best_epoch", math.nan)) else None
    if best_epoch is None:
        best_epoch = _best_epoch(history)
    classes, per_class, prefixed = _per_class(metrics, card, _class_names(task))
    named = [(n, card.metrics[n], metrics[n]) for n in card.metrics if n in metrics]
    other = [(n, card.metric_label(n), v) for n, v in metrics.items() if n not in card.metrics and n not in prefixed]
    if not card.metrics:  # a trainer without a card: its test metrics are still the evaluation
        named = [(n, n, v) for n, v in metrics.items() if n.startswith("test_")]
        other = [(n, card.metric_label(n), v) for n, v in metrics.items() if not n.startswith("test_")]
    matrix, matrix_classes = _confusion(task, classes)
    return RunFacts(
        card=card,
        diagnosis=diagnose(history),
        task=task,
        epochs_asked=epochs_asked,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        early_stopped=_early_stopped(environment, epochs_asked, epochs_run),
        resumed_after_epoch=_int(environment.get("resumed_after_epoch")),
        patience=_int(config.get("early_stopping_patience")),
        duration_s=_float_or_none(environment.get("duration_s")),
        device=str(environment["device"]) if environment.get("device") is not None else None,
        versions={str(k): str(v) for k, v in environment.items() if k not in NOT_VERSIONS},
        hyper_parameters={k: v for k, v in config.items() if k not in NOT_HYPER_PARAMETERS and _scalar(v)},
        data=data,
        data_description=data_description(data),
        split={str(k): int(v) for k, v in (data.get("split") or {}).items() if _int(v) is not None},
        metrics=named,
        other_metrics=other,
        classes=classes,
        per_class=per_class,
        confusion_matrix=matrix,
        confusion_classes=matrix_classes,
        smoke_test=bool(config.get("smoke_test")),
    )


def data_description(data: dict[str, Any]) -> str:
    """One sentence on where the training data came from, enough to find or regenerate it."""
    source = data.get("source")
    if source == "synthetic" and data.get("description"):
        return f"synthetic: {str(data['description']).rstrip('. ')}"
    if source == "synthetic":
        size = data.get("image_size")
        size_text = f" of {size} px" if size is not None else ""
        extras = {
            k: v
            for k, v in data.items()
            if k not in ("source", "generator", "n_images", "image_size", "seed", "split") and _scalar(v)
        }
        extra_text = "".join(f", {k} {v}" for k, v in extras.items())
        return (
            f"synthetic: {data.get('n_images', '?')} images{size_text} generated by `{data.get('generator', '?')}` "
            f"with seed {data.get('seed', '?')}{extra_text} (regenerated exactly by the same zoo version)"
        )
    if source == "folder":
        name = Path(str(data.get("folder", ""))).name or "?"
        return (
            f"the user's folder `{name}`: {data.get('n_files', '?')} {data.get('files_kind', 'files')}, "
            "sha256 of all files "
            f"`{data.get('sha256', '?')}`"
        )
    described = ", ".join(f"{k} {v}" for k, v in data.items() if k != "split" and _scalar(v))
    return f"{source or 'unrecorded source'}" + (f" ({described})" if described else "")


def training_data_license(data: dict[str, Any], given: str | None = None) -> tuple[str, str]:
    """(licence, why) of the training data: CC0-1.0 for zoo's synthetic data; for the user's data the SPDX id they
    gave, else "unknown" (zoo never assumes one)."""
    if is_synthetic(data):
        return SYNTHETIC_DATA_LICENSE, "zoo's synthetic data, generated by zoo"
    if given:
        return given, "as given by the authors when the package was built"
    return UNKNOWN_LICENSE, "not given when the package was built; data_license in a --metadata file states it"


def dataset_slug(data: dict[str, Any]) -> str:
    """An id for the training data in bioimage.io's id alphabet (lower-case letters, digits, -_.)."""
    if data.get("dataset_id"):
        raw = str(data["dataset_id"])
    elif data.get("source") == "synthetic":
        raw = f"zoo-synthetic-{str(data.get('generator', 'data')).rsplit('.', 1)[-1]}-seed-{data.get('seed', 0)}"
    elif data.get("source") == "folder":
        raw = f"user-folder-{Path(str(data.get('folder', 'data'))).name}"
    else:
        raw = str(data.get("source") or "training-data")
    return re.sub(r"[^a-z0-9_.-]+", "-", raw.lower()).strip("-.") or "training-data"


def _class_names(task: dict[str, Any]) -> list[str]:
    extra = task.get("extra") if isinstance(task.get("extra"), dict) else {}
    names = task.get("class_names") or extra.get("class_names")
    if not names and task.get("kind") in CLASS_KINDS:
        names = task.get("output_channels")
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else []


def _per_class(metrics: dict[str, float], card: Card, class_names: list[str]):
    """Columns (class names in the task's order, then any others) and per-class values for each overall metric."""
    found: dict[str, dict[str, float]] = {}
    prefixed: set[str] = set()
    for overall, (prefix, _label) in card.per_class.items():
        values = {n[len(prefix) :]: v for n, v in metrics.items() if n.startswith(prefix) and len(n) > len(prefix)}
        if values:
            found[overall] = values
            prefixed |= {prefix + c for c in values}
    suffixes = list(dict.fromkeys(c for values in found.values() for c in values))
    classes = [c for c in class_names if c in suffixes] + [c for c in suffixes if c not in class_names]
    per_class = {overall: [values.get(c, math.nan) for c in classes] for overall, values in found.items()}
    return classes, per_class, prefixed


def _confusion(task: dict[str, Any], classes: list[str]) -> tuple[list[list[float]] | None, list[str]]:
    extra = task.get("extra") if isinstance(task.get("extra"), dict) else {}
    matrix = task.get("confusion_matrix", extra.get("confusion_matrix"))
    if not isinstance(matrix, (list, tuple)) or not matrix:
        return None, []
    try:
        rows = [[float(v) for v in row] for row in matrix]
    except (TypeError, ValueError):
        return None, []
    n = len(rows)
    if any(len(row) != n for row in rows):
        return None, []
    names = _class_names(task) or classes
    return rows, names if len(names) == n else [f"class {i}" for i in range(n)]


def _early_stopped(environment: dict[str, Any], asked: int | None, ran: int) -> bool:
    """As the trainer recorded it, else inferred from fewer epochs run than asked."""
    recorded = str(environment.get("stopped_early", "")).lower()
    if recorded in ("true", "false"):
        return recorded == "true"
    return asked is not None and 0 < ran < asked


def _best_epoch(history: list[dict]) -> int | None:
    losses = [(_float(r.get("val_loss")), _int(r.get("epoch")) or i + 1) for i, r in enumerate(history)]
    losses = [(v, e) for v, e in losses if math.isfinite(v)]
    return min(losses)[1] if losses else None


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _float_or_none(value: Any) -> float | None:
    number = _float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if math.isfinite(number) else None
