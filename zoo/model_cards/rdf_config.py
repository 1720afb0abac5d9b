"""The rdf's `config.bioimageio`: how the model was trained and how it scored, filled from the training run.

bioimageio.spec 0.5.12 types this block (`BioimageioConfig`, extra keys allowed): `training` is a
`TrainingDetails` (typed fields plus any extra key), `evaluations` a list of `Evaluation`, which requires
`dataset_source` to be an http(s) URL. Data that has no public URL (synthetic data, the user's folder) can
therefore not be described under `evaluations`; its evaluation goes, in the same shape without the URL, under
`evaluations_without_dataset_url` until the data is published and its URL is passed as `dataset_source`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from zoo.errors import InputError
from zoo.model_cards.facts import RunFacts, dataset_slug, run_facts, training_data_license
from zoo.trainers.checkpoint import Checkpoint

MAX_SHORT = 16  # bioimage.io limit for evaluation factor and metric abbreviations
MAX_ARCHITECTURE_TYPE = 32  # bioimage.io limit for architecture_type
UNPUBLISHED_EVALUATIONS = "evaluations_without_dataset_url"


def bioimageio_config(
    checkpoint: Checkpoint, dataset_source: str | None = None, data_license: str | None = None
) -> dict[str, Any]:
    """The content for `config.bioimageio` of the model's rdf: plain YAML values that
    `bioimageio.spec.model.v0_5.BioimageioConfig` accepts. `dataset_source` is the http(s) URL where the training
    data (and its test split) can be found; without it (or a `url` in the data provenance) the test evaluation
    goes under `evaluations_without_dataset_url`. `data_license`: the SPDX id the user gave for their training
    data (recorded as "unknown" when not given; zoo's synthetic data is CC0-1.0)."""
    facts = run_facts(checkpoint)
    card = facts.card
    source = dataset_source or facts.data.get("url")
    if source is not None and not str(source).startswith(("http://", "https://")):
        raise InputError(
            f"dataset source {source!r} is not an http(s) URL: give the web address where the training "
            "data is published, or none"
        )
    hours = facts.duration_s / 3600 if facts.duration_s is not None else None
    config: dict[str, Any] = {
        "task": card.task or None,
        "architecture_type": card.architecture[:MAX_ARCHITECTURE_TYPE] or None,
        "architecture_description": card.architecture_description or None,
        "modality": card.modality or None,
        "target_structure": list(card.target_structure),
        "out_of_scope_use": card.out_of_scope or None,
        "bias_risks_limitations": {
            "limitations": "\n".join(f"- {t}" for t in (*card.limitations, *card.failure_modes))
        },
        "training": _training(checkpoint, facts, hours, data_license),
        "environmental_impact": {"hardware_type": facts.device, "hours_used": hours},
    }
    evaluation = _evaluation(facts, source)
    if evaluation is not None:
        config["evaluations" if source else UNPUBLISHED_EVALUATIONS] = [evaluation]
    return _plain(_without_none(config))


def _training(checkpoint: Checkpoint, facts: RunFacts, hours: float | None, data_license: str | None) -> dict[str, Any]:
    card = facts.card
    hyper = facts.hyper_parameters
    preprocessing = "; ".join(
        t
        for t in (
            f"pre-processing: {card.preprocessing}" if card.preprocessing else "",
            f"augmentation: {card.augmentation}" if card.augmentation else "",
        )
        if t
    )
    diagnosis = facts.diagnosis
    return {
        # fields TrainingDetails defines
        "training_preprocessing": preprocessing or None,
        "training_epochs": facts.epochs_run,
        "training_batch_size": hyper.get("batch_size"),
        "initial_learning_rate": hyper.get("lr"),
        "learning_rate_schedule": card.lr_schedule or None,
        "loss_function": card.loss or None,
        "optimizer": card.optimizer or None,
        "training_duration": hours,  # hours, as the spec asks
        # extra keys (TrainingDetails allows them)
        "trainer": checkpoint.trainer,
        "framework": getattr(checkpoint, "framework", None),
        "epochs_requested": facts.epochs_asked,
        "early_stopped": facts.early_stopped,
        "early_stopping_patience": facts.patience,
        "best_epoch": facts.best_epoch,
        "hyper_parameters": hyper,
        "duration_s": facts.duration_s,
        "device": facts.device,
        "software_versions": facts.versions,
        "data": {
            "description": facts.data_description,
            **{k: v for k, v in facts.data.items() if k != "folder"},
            **({"folder_name": Path(str(facts.data["folder"])).name} if "folder" in facts.data else {}),
            "license": training_data_license(facts.data, data_license)[0],
        },
        "diagnosis": {"verdict": diagnosis.verdict, "explanation": diagnosis.explanation, **diagnosis.evidence},
        "quality_floor": _quality_floor(facts),
        "smoke_test": facts.smoke_test or None,
        "history": [{k: r.get(k) for k in ("epoch", "train_loss", "val_loss")} for r in checkpoint.history or []],
    }


def _evaluation(facts: RunFacts, source: str | None) -> dict[str, Any] | None:
    """One Evaluation: a row per test metric, a column for all test images and one per class."""
    if not facts.metrics:
        return None
    card = facts.card
    factors, factors_long = ["overall"], [f"all {facts.n_test or ''} test images".replace("  ", " ")]
    for name in facts.classes:
        factors.append(_short(name, factors))
        factors_long.append(f"class {name}")
    metrics_long, results = [], []
    metrics = list(metric_labels(facts).values())
    for name, _label, value in facts.metrics:
        metrics_long.append(card.metric_descriptions.get(name, name))
        per_class = facts.per_class.get(name, [math.nan] * len(facts.classes) if name in card.per_class else None)
        row = [_result(value)]
        row += [_result(v) for v in per_class] if per_class is not None else ["n/a"] * len(facts.classes)
        results.append(row)
    summary = ", ".join(f"{label} {_result(value)}" for _, label, value in facts.metrics)
    evaluation = {
        "dataset_id": dataset_slug(facts.data),
        "dataset_source": source,
        "dataset_role": "test",
        "sample_count": facts.n_test or 0,
        "evaluation_factors": factors,
        "evaluation_factors_long": factors_long,
        "metrics": metrics,
        "metrics_long": metrics_long,
        "results": results,
        "results_summary": f"{summary} on the held-out test split ({facts.n_test or '?'} images) of the training "
        f"data ({facts.data_description}). Training curves: {facts.diagnosis.verdict}.",
    }
    return evaluation if source else {k: v for k, v in evaluation.items() if k != "dataset_source"}


def metric_labels(facts: RunFacts) -> dict[str, str]:
    """Test metric name -> its short label in the evaluation (bioimage.io's 16 characters, unique)."""
    labels: dict[str, str] = {}
    for name, label, _value in facts.metrics:
        long = facts.card.per_class[name][1] if name in facts.card.per_class and facts.classes else label
        labels[name] = _short(long, list(labels.values()))
    return labels


def _quality_floor(facts: RunFacts) -> dict[str, float] | None:
    """The trainer's quality floor per evaluation label (QUA002 compares the recorded test values with it)."""
    labels = metric_labels(facts)
    floors = {labels[name]: floor for name, floor in facts.card.quality_floor.items() if name in labels}
    return floors or None


def _short(text: str, taken: list[str]) -> str:
    """`text` cut to bioimage.io's 16 characters, made unique among `taken`."""
    short = text[:MAX_SHORT]
    index = 2
    while short in taken:
        suffix = f"~{index}"
        short = text[: MAX_SHORT - len(suffix)] + suffix
        index += 1
    return short


def _result(value: float) -> float | str:
    return float(value) if math.isfinite(value) else "n/a"


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def _plain(value: Any) -> Any:
    """YAML-safe plain values: str keys, lists, finite floats (non-finite become None), str for anything else."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy / torch scalars
        return _plain(value.item())
    return str(value)
