"""The package's README (its model card), filled from the trainer's Card and the training run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from zoo.config import PackageConfig
from zoo.model_cards.facts import RunFacts, run_facts
from zoo.model_cards.metadata import PackageMetadata, package_metadata
from zoo.model_cards.plots import loss_plot_svg
from zoo.trainers.checkpoint import Checkpoint
from zoo.trainers.task import Task

LOSS_PLOT = "loss.svg"  # written beside the README; packaging ships it as an attachment (see card_files)


class ExportSummary(Protocol):
    """What the README reads of an export (packaging's ExportResult, which sits above model cards): the weights
    shipped with their agreement to the trained model, those not shipped and why, the valid sizes and the axes."""

    weights: list[Any]  # each with .weight_format and .agreement (None, or .max_abs, .max_rel, .mismatched)
    failures: dict[str, str]
    geometry: Any  # None, or .min_size, .step, .halo
    layout: str


def render_readme(
    checkpoint: Checkpoint,
    exported: ExportSummary,
    config: PackageConfig,
    path: Path,
    metadata: PackageMetadata | None = None,
) -> Path:
    """Write the package's documentation to `path` and the loss plot `loss.svg` beside it; returns `path`.
    Its `## Validation` section says how the weight copies were proven. `card_files(path)` lists the
    other files written, which the rdf must ship as attachments. `metadata`: what the package says (decided from
    `config` and the run when not given, see zoo.model_cards.metadata). The user's documentation text, when given,
    takes the place of the description paragraph (a first `# ` line of it becomes the title); the sections zoo
    writes from the run (intended use to validation) follow it."""
    path = Path(path)
    facts = run_facts(checkpoint)
    metadata = metadata or package_metadata(checkpoint, config)
    loss_plot_svg(checkpoint.history, path.parent / LOSS_PLOT, facts.diagnosis)
    card = facts.card
    summary = f"*{card.title}.* {card.summary}"
    if metadata.documentation is not None:
        title, text = _split_title(metadata.documentation, metadata.name)
        head = [f"# {title}", "", summary, "", text, ""]
    else:
        head = [f"# {metadata.name}", "", metadata.description, "", summary, ""]
    lines = [
        *head,
        "## Intended use",
        card.intended_use,
        "",
        *(["Out of scope: " + card.out_of_scope, ""] if card.out_of_scope else []),
        f"- Task: {card.task or 'not described'}",
        f"- Input: {card.inputs}",
        f"- Output: {card.outputs}",
        "",
        "## Limitations",
        *[f"- {item}" for item in card.limitations],
        "",
        "### Failure modes",
        *[f"- {item}" for item in card.failure_modes],
        "",
        *_training_section(checkpoint, facts, metadata),
        *_evaluation_section(facts),
        *_usage_section(checkpoint, exported, facts),
        *_licence_section(metadata),
        *_validation_section(exported),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def render_foreign_readme(
    path: Path,
    metadata: PackageMetadata,
    exported: ExportSummary,
    *,
    source: str,
    measured: list[tuple[str, str]],
    preprocessing: str,
) -> Path:
    """The README of a model zoo did not train: what its file is (`source`), what probing measured by running it
    (`measured`: rows of a table), the pre-processing the user stated, and "not recorded" for everything about its
    training, then usage, licence and the proof of every weight format."""
    path = Path(path)
    if metadata.documentation is not None:
        title, text = _split_title(metadata.documentation, metadata.name)
        head = [f"# {title}", "", text, ""]
    else:
        head = [f"# {metadata.name}", "", metadata.description, ""]
    output_layout = getattr(exported, "output_layout", None) or exported.layout
    lines = [
        *head,
        "## Origin",
        f"- Model: {source}, packaged with zoo; zoo did not train it.",
        "- Training: not recorded (data, epochs, loss and test metrics are unknown to zoo).",
        "- Intended use, limitations and failure modes: not recorded; ask the authors.",
        "",
        "## What zoo measured by running the model",
        "| property | found |",
        "|---|---|",
        *[f"| {_cell(name)} | {_cell(value)} |" for name, value in measured],
        "",
        "## Usage",
        f"- Input `input`: axes {', '.join(exported.layout)}; {_sizes(exported.geometry)}. Pre-processing (in the "
        f"rdf): {preprocessing.replace('_', ' ')}.",
        f"- Output `output`: axes {', '.join(output_layout)}.",
        "- Run it with `zoo predict <package>.zip <images> --out <folder>`, in Fiji with deepImageJ, or with "
        "bioimageio.core.",
        "",
        *_licence_section(metadata),
        *_validation_section(exported, "the model file it came from"),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _split_title(text: str, name: str) -> tuple[str, str]:
    """(title, rest) of the user's Markdown: its first line when that is a `# ` heading, else the package name."""
    first, _, rest = text.partition("\n")
    if first.startswith("# ") and first[2:].strip():
        return first[2:].strip(), rest.strip()
    return name, text


def _licence_section(metadata: PackageMetadata) -> list[str]:
    authors = ", ".join(_author(a) for a in metadata.authors)
    if not metadata.authors_given:
        authors += " (a placeholder: no author was given when the package was built)"
    lines = [
        "## Licence, authors and citation",
        f"- Licence: **{metadata.license}**, {metadata.license_note}.",
        f"- Authors: {authors}.",
        "- Cite:",
        *[f"  - {_cell(c['text'])} {_reference(c)}" for c in metadata.cite],
        "",
    ]
    return lines


def _author(author) -> str:
    details = [d for d in (author.affiliation, f"ORCID {author.orcid}" if author.orcid else None) if d]
    return author.name + (f" ({', '.join(details)})" if details else "")


def _reference(cite: dict[str, str]) -> str:
    if cite.get("doi"):
        return f"[doi:{cite['doi']}](https://doi.org/{cite['doi']})"
    return f"<{cite['url']}>" if cite.get("url") else ""


def card_files(path: Path) -> list[Path]:
    """The files render_readme wrote beside the README at `path` (the loss plot), for the rdf's attachments."""
    plot = Path(path).parent / LOSS_PLOT
    return [plot] if plot.is_file() else []


def _training_section(checkpoint: Checkpoint, facts: RunFacts, metadata: PackageMetadata) -> list[str]:
    card = facts.card
    split = ", ".join(f"{k} {v}" for k, v in facts.split.items()) or "not recorded"
    lines = [
        "## Training",
        f"- Trainer: `{checkpoint.trainer}` ({_framework_line(facts.versions)}); "
        f"device {facts.device or 'not recorded'}; duration {_duration(facts.duration_s)}.",
        f"- Data: {facts.data_description}.",
        f"- Data licence: {metadata.data_license} ({metadata.data_license_note}).",
        f"- Split (images): {split}. The test images were used neither for training nor for choosing the epoch.",
        f"- Epochs: {_epochs_line(facts)}",
    ]
    recipe = [
        f"loss {card.loss}" if card.loss else "",
        f"optimizer {card.optimizer}" if card.optimizer else "",
        f"learning-rate schedule {card.lr_schedule}" if card.lr_schedule else "",
    ]
    if any(recipe):
        lines.append(f"- Recipe: {', '.join(r for r in recipe if r)}.")
    if card.augmentation:
        lines.append(f"- Augmentation: {card.augmentation}. Pre-processing: {card.preprocessing}.")
    if facts.versions:
        lines.append(f"- Software: {', '.join(f'{k} {v}' for k, v in facts.versions.items())}.")
    if facts.hyper_parameters:
        lines += ["", "| hyper-parameter | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(_value(v))} |" for k, v in facts.hyper_parameters.items()]
    lines += [
        "",
        "### Training curves",
        "",
        f"![training and validation loss]({LOSS_PLOT})",
        "",
        f"**Diagnosis: {facts.diagnosis.verdict}.** {facts.diagnosis.explanation}",
        "",
    ]
    return lines


def _epochs_line(facts: RunFacts) -> str:
    asked = "not recorded" if facts.epochs_asked is None else str(facts.epochs_asked)
    text = f"ran {facts.epochs_run} of {asked} asked"
    if facts.resumed_after_epoch:
        text += f" (resumed after epoch {facts.resumed_after_epoch})"
    if facts.early_stopped:
        patience = f" for {facts.patience} epochs" if facts.patience else ""
        text += f"; stopped early: the validation loss had not improved{patience}"
    if facts.best_epoch is not None:
        text += f"; the weights are those of epoch {facts.best_epoch} (lowest validation loss)"
    return text + "."


def _evaluation_section(facts: RunFacts) -> list[str]:
    card = facts.card
    n_test = f"{facts.n_test} images" if facts.n_test is not None else "images"
    lines = ["## Evaluation", ""]
    if facts.metrics:
        lines += [f"On the held-out test split ({n_test}):", "", "| metric | value | definition |", "|---|---|---|"]
        lines += [
            f"| {label} | **{_value(v)}** | {card.metric_descriptions.get(n, '')} |" for n, label, v in facts.metrics
        ]
    else:
        lines.append("No test metrics were recorded for this model.")
    if facts.per_class:
        labels = [card.per_class[n][1] for n in facts.per_class]
        lines += ["", "Per class:", "", f"| class | {' | '.join(labels)} |", "|---" * (len(labels) + 1) + "|"]
        for i, name in enumerate(facts.classes):
            lines.append(f"| {_cell(name)} | {' | '.join(_value(values[i]) for values in facts.per_class.values())} |")
    if facts.confusion_matrix is not None:
        names = facts.confusion_classes
        lines += [
            "",
            "Confusion matrix on the test split (rows: true class, columns: predicted class):",
            "",
            f"| true \\ predicted | {' | '.join(map(_cell, names))} |",
            "|---" * (len(names) + 1) + "|",
        ]
        lines += [
            f"| {_cell(name)} | {' | '.join(_value(v) for v in row)} |"
            for name, row in zip(names, facts.confusion_matrix)
        ]
    if facts.other_metrics:
        lines += [
            "",
            "Also recorded: " + ", ".join(f"{label} {_value(v)}" for _, label, v in facts.other_metrics) + ".",
        ]
    return [*lines, ""]


def _usage_section(checkpoint: Checkpoint, exported: ExportSummary, facts: RunFacts) -> list[str]:
    input_id = facts.task.get("input_id", Task.input_id)
    output_id = facts.task.get("output_id", Task.output_id)
    output_layout = getattr(exported, "output_layout", None) or exported.layout
    return [
        "## Usage",
        f"- Input `{input_id}`: {facts.card.inputs}; axes {', '.join(exported.layout)}; {_sizes(exported.geometry)}. "
        f"Pre-processing (in the rdf): {facts.card.preprocessing}.",
        f"- Output `{output_id}`: {facts.card.outputs}; axes {', '.join(output_layout)}.",
        _where_it_runs(facts.task.get("kind")),
        "",
    ]


def _where_it_runs(kind: str | None) -> str:
    if kind == "instances":  # JDLL has no stardist_postprocessing (the deepImageJ verdict, DIJ27)
        return (
            "- Run it with `zoo predict <package>.zip <images> --out <folder>` (uint16 label images, any size) or "
            "with bioimageio.core and the `stardist` package installed; deepImageJ (Fiji) stops at the "
            "stardist_postprocessing step (see the validation's deepImageJ verdict)."
        )
    return (
        "- Run it with `zoo predict <package>.zip <images> --out <folder>`, in Fiji with deepImageJ, or with "
        "bioimageio.core."
    )


def _sizes(geometry) -> str:
    if geometry is None:
        return "valid sizes as given in the rdf"
    step = getattr(geometry, "step", 0)
    if not step:
        return f"exactly {geometry.min_size} px along each spatial axis"
    text = f"spatial size {geometry.min_size} + n·{step} px"
    halo = getattr(geometry, "halo", 0)
    return text + (f"; tiles must overlap by the halo of {halo} px" if halo else "")


def _validation_section(exported: ExportSummary, origin: str = "the trained model it was exported from") -> list[str]:
    lines = [
        "## Validation",
        "Every weight format was run on the test input and on random inputs of other valid sizes and "
        f"compared with {origin}:",
        "",
        "| weights | max abs difference | max relative difference | elements over tolerance |",
        "|---|---|---|---|",
    ]
    for weights in exported.weights:
        a = weights.agreement
        if a is None:
            lines.append(f"| {weights.weight_format} | not compared | | |")
        else:
            lines.append(f"| {weights.weight_format} | {a.max_abs:.2e} | {a.max_rel:.2e} | {a.mismatched} |")
    for weight_format, reason in exported.failures.items():
        lines.append(f"| {weight_format} | not shipped: {reason} | | |")
    return [
        *lines,
        "",
        "The package was then checked with `zoo validate` (bioimage.io format, file hashes and "
        "reproduction of the test output for every weight format) before it was written.",
        "",
    ]


def _framework_line(versions: dict[str, str]) -> str:
    if "torch" in versions:
        return f"PyTorch {versions['torch']}"
    if "keras" in versions or "tensorflow" in versions:
        return f"Keras {versions.get('keras', '?')} on TensorFlow {versions.get('tensorflow', '?')}"
    return "framework not recorded"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _value(value) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return str(int(value)) if value.is_integer() and abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")
