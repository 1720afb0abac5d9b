"""QUA: what the package itself records about its quality, shown and judged without running anything.

bioimage.io packages may record a test evaluation (`config.bioimageio.evaluations`, zoo also writes
`evaluations_without_dataset_url` for data without a public URL) and how training went (`config.bioimageio.
training`). zoo's packages also record the quality floor their trainer declares (below it the model has not
learned its task) and whether the run was a `--quick` smoke test. Reproducing its own test outputs says nothing
about whether a model is any good: these rules make the recorded quality part of every report, and the verdict
line says so when it is poor (zoo.validators.report)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed, rule, skipped

EVALUATION_KEYS = ("evaluations", "evaluations_without_dataset_url")
POOR_DIAGNOSES = ("underfitting",)
NOT_JUDGED_DIAGNOSIS = "too short to tell"  # zoo.model_cards.diagnosis.TOO_SHORT (validation imports no card code)


@dataclass(frozen=True)
class RecordedMetric:
    label: str  # the evaluation's short metric name, e.g. IoU
    value: float
    role: str  # dataset_role: test, validation, ...
    location: str


def _bioimageio_config(pkg: PackageUnderTest) -> dict:
    config = pkg.rdf.get("config") if isinstance(pkg.rdf, dict) else None
    block = config.get("bioimageio") if isinstance(config, dict) else None
    return block if isinstance(block, dict) else {}


def _training(pkg: PackageUnderTest) -> dict:
    training = _bioimageio_config(pkg).get("training")
    return training if isinstance(training, dict) else {}


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def recorded_metrics(pkg: PackageUnderTest) -> list[RecordedMetric]:
    """The overall value (first column) of every metric of every recorded evaluation."""
    found = []
    block = _bioimageio_config(pkg)
    for key in EVALUATION_KEYS:
        evaluations = block.get(key)
        for i, evaluation in enumerate(evaluations if isinstance(evaluations, list) else []):
            if not isinstance(evaluation, dict):
                continue
            metrics, results = evaluation.get("metrics"), evaluation.get("results")
            if not isinstance(metrics, list) or not isinstance(results, list):
                continue
            role = str(evaluation.get("dataset_role") or "test")
            for label, row in zip(metrics, results):
                value = _number(row[0] if isinstance(row, list) and row else row)
                if value is not None:
                    found.append(RecordedMetric(str(label), value, role, f"config.bioimageio.{key}[{i}]"))
    return found


def quality_floor(pkg: PackageUnderTest) -> dict[str, float]:
    """metric label -> the lowest value at which the model has learned its task, as its trainer declared."""
    floors = _training(pkg).get("quality_floor")
    if not isinstance(floors, dict):
        return {}
    return {str(k): v for k, v in ((k, _number(v)) for k, v in floors.items()) if v is not None}


@rule(
    "QUA001",
    "info",
    "the package's recorded evaluation is shown",
    "Record a test evaluation in config.bioimageio.evaluations (metric, value, dataset) so users see how good "
    "the model is.",
    "quality",
    needs="rdf",
)
def check_evaluation_recorded(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_evaluation_recorded.rule
    metrics = recorded_metrics(pkg)
    if not metrics:
        yield skipped(rule_, "the package records no evaluation: its quality is unknown", "config.bioimageio")
        return
    shown = ", ".join(f"{m.label} {m.value:.4g} ({m.role})" for m in metrics)
    smoke = _training(pkg).get("smoke_test") is True
    note = " (a --quick smoke test, not a model to use)" if smoke else ""
    yield passed(
        rule_,
        f"recorded: {shown}{note}",
        metrics[0].location,
        metrics={m.label: m.value for m in metrics},
        smoke_test=smoke,
    )


@rule(
    "QUA002",
    "warning",
    "the recorded quality reaches the floor its trainer declares",
    "Train longer or on more (or better labelled) data, then package again; do not share a model below its floor.",
    "quality",
    needs="rdf",
)
def check_quality_above_floor(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_quality_above_floor.rule
    floors = quality_floor(pkg)
    if not floors:
        yield skipped(rule_, "the package declares no quality floor", "config.bioimageio.training")
        return
    recorded = {m.label: m for m in recorded_metrics(pkg) if m.role == "test"}
    for label, floor in floors.items():
        metric = recorded.get(label)
        if metric is None:
            yield failed(
                rule_,
                f"a floor of {floor:g} is declared for {label} but no test value of {label} is recorded",
                "config.bioimageio.training.quality_floor",
                metric=label,
                floor=floor,
            )
        elif metric.value < floor:
            yield failed(
                rule_,
                f"test {label} {metric.value:.4g} is below the floor {floor:g}: the model has not learned its task",
                metric.location,
                metric=label,
                value=metric.value,
                floor=floor,
            )
        else:
            yield passed(
                rule_, f"test {label} {metric.value:.4g} ≥ floor {floor:g}", metric.location, metric=label, floor=floor
            )


@rule(
    "QUA003",
    "warning",
    "the recorded training curves are not diagnosed as underfitting",
    "Train for more epochs (or with a higher learning rate) until the training loss levels off, then package again.",
    "quality",
    needs="rdf",
)
def check_training_not_underfitting(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_training_not_underfitting.rule
    diagnosis = _training(pkg).get("diagnosis")
    verdict = diagnosis.get("verdict") if isinstance(diagnosis, dict) else None
    location = "config.bioimageio.training.diagnosis"
    if not isinstance(verdict, str):
        yield skipped(rule_, "the package records no diagnosis of its training curves", location)
    elif verdict == NOT_JUDGED_DIAGNOSIS:
        yield skipped(rule_, f"training diagnosed {verdict}: too few epochs to judge the curves", location)
    elif verdict in POOR_DIAGNOSES:
        explanation = str(diagnosis.get("explanation") or "")
        yield failed(rule_, f"training diagnosed {verdict}: {explanation}".rstrip(": "), location, diagnosis=verdict)
    else:
        yield passed(rule_, f"training diagnosed {verdict}", location, diagnosis=verdict)
