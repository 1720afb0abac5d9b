"""The fine-tuned package's card: a README that records the base model and the fine-tuning run (weights trained and
why, loss, data, settings, the metric before and after on the user's held-out test split, training curves with their
diagnosis, halo, proof of every weight format) above the base model's own card, and the same facts in the rdf's
`config.zoo.finetune` and `config.bioimageio` (training and evaluation, which zoo validate's QUA rules read)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from zoo.model_cards import diagnose, loss_plot_svg
from zoo.packaging.export import ExportResult, Geometry
from zoo.packaging.rdf import halo_proof

README, LOSS_PLOT = "README.md", "loss_finetuned.svg"  # the base's own loss.svg stays with its card
UNPUBLISHED_EVALUATIONS = "evaluations_without_dataset_url"  # as zoo.model_cards.rdf_config names it


def write_card(work: Path, base, lineage, result, facts: dict[str, Any], exported: ExportResult) -> dict[str, Any]:
    """README.md (replacing the base's, which it quotes) and loss.svg in `work`; returns their package paths."""
    base_card = _base_card(work, base)
    diagnosis = diagnose(result.history)
    loss_plot_svg(result.history, work / LOSS_PLOT, diagnosis)
    settings = facts["settings"]
    parent = lineage.parent
    link = f"bioimage.io id `{parent['id']}`" if "id" in parent else "no bioimage.io id"
    metric_rows = [
        f"| {name} | {result.before[name]:.4g} | {result.after.get(name, float('nan')):.4g} |" for name in result.before
    ]
    data = result.data
    halo = lineage.halo
    lines = [
        f"# {lineage.name}",
        "",
        f"{base.description.rstrip('.')}. Fine-tuned with `zoo finetune` on {data['n_files']} images of the user's "
        f"data; the base model is **{parent['name']}** ({link}, rdf sha256 `{parent['rdf_sha256'][:16]}…`).",
        "",
        "## Fine-tuning",
        f"Measured on the held-out test split of the user's data ({data['split']['test']} images), the model run as "
        "the package ships it:",
        "",
        "| metric | base model | fine-tuned |",
        "|---|---|---|",
        *metric_rows,
        "",
        f"- Weights trained: {result.weights} ({result.why}).",
        f"- Loss: {result.loss_why}.",
        f"- Data: folder `{data['folder_name']}`, {data['n_files']} image pairs (sha256 `{data['sha256'][:16]}…`), "
        f"split {data['split']['train']} / {data['split']['validation']} / {data['split']['test']} "
        f"(train / validation / test, seed {data['seed']}); licence unknown.",
        f"- Settings: {_settings_text(settings)}; {facts['frozen']}; normalisation statistics {result.normalisation}.",
        f"- Run: {len(result.history)} epochs (best {result.best_epoch}"
        f"{', stopped early' if result.stopped_early else ''}), {result.duration_s:.0f} s on {result.device}, "
        f"PyTorch {facts['versions']['torch']}.",
        f"- Training curves: **{diagnosis.verdict}**. {diagnosis.explanation}",
        f"- Halo: {halo['halo']} px ({halo['how']}; {halo['declared']} px in the base package).",
        "",
        f"![training and validation loss]({LOSS_PLOT})",
        "",
        "## Limitations",
        "Fine-tuned on a small set of the user's images: it fits images like those (microscope, stain, magnification) "
        "and may do worse than the base model on the base model's own data. Check it on images of your own that it "
        "has not seen before relying on it.",
        "",
        "## Validation",
        "Every weight format was run on the test input and on random inputs of other valid sizes and compared with "
        "the fine-tuned model:",
        "",
        "| weights | max abs difference | elements over tolerance |",
        "|---|---|---|",
        *(f"| {w.weight_format} | {w.agreement.max_abs:.2e} | {w.agreement.mismatched} |" for w in exported.weights),
        *(f"| {f} | not shipped: {why} | |" for f, why in exported.failures.items()),
        "",
        "The package was then checked with `zoo validate` before it was written.",
        "",
    ]
    if base_card:
        lines += ["## The base model's card", "", _demoted(base_card), ""]
    (work / README).write_text("\n".join(lines), encoding="utf-8")
    return {"documentation": Path(README), "attachments": [Path(LOSS_PLOT)]}


def _base_card(work: Path, base) -> str:
    documentation = getattr(base, "documentation", None)
    source = str(documentation.source) if documentation is not None and hasattr(documentation, "source") else ""
    path = work / source if source and "://" not in source else None
    if path is None or not path.is_file() or path.suffix.lower() != ".md":
        return ""
    return path.read_text(encoding="utf-8", errors="replace").strip()


def _demoted(markdown: str) -> str:
    """Headings one level down, so the base card sits under its own heading."""
    return re.sub(r"^(#{1,5}) ", r"#\1 ", markdown, flags=re.MULTILINE)


def _settings_text(settings: dict[str, Any]) -> str:
    keys = ("epochs", "lr", "batch_size", "patch_size", "early_stopping_patience", "freeze", "seed")
    return ", ".join(f"{k.replace('_', ' ')} {settings[k]}" for k in keys if k in settings)


def finetune_config(base, lineage, result, facts: dict[str, Any], exported: ExportResult, geometry: Geometry) -> dict:
    """The new rdf's config: the base's other blocks (deepimagej, ...), `zoo` with the fine-tuning facts and the proof
    of every weight format, `bioimageio` with this run's training and test evaluation."""
    config = base.config.model_dump(mode="json", exclude_none=True) if base.config is not None else {}
    diagnosis = diagnose(result.history)
    sizes = (
        {"kind": "fixed (the base package's size)", "size": geometry.min_size, "halo": geometry.halo}
        if geometry.fixed
        else {"kind": "parameterized", "min": geometry.min_size, "step": geometry.step, "halo": geometry.halo}
    )
    config["zoo"] = {
        "finetune": {
            "base": lineage.parent,
            "weights_trained": {"format": result.weights, "why": result.why},
            "loss": {"name": result.loss, "why": result.loss_why},
            "data": result.data,
            "settings": facts["settings"],
            "frozen": facts["frozen"],
            "normalisation": result.normalisation,
            "metrics": {"before": result.before, "after": result.after, "headline": result.metric},
            "kept": result.kept,
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "resumed_after_epoch": result.resumed_from,
            "duration_s": round(result.duration_s, 1),
            "device": result.device,
            "versions": facts["versions"],
            "halo": lineage.halo,
        },
        "agreement": {w.weight_format: w.agreement.to_dict() for w in exported.weights if w.agreement},
        "not_shipped": dict(exported.failures),
        "sizes": {**sizes, **halo_proof(geometry)},
    }
    # the base's description of the model stays; its training, evaluations and footprint were the base's
    dropped = ("evaluations", UNPUBLISHED_EVALUATIONS, "training", "environmental_impact")
    bioimageio = {k: v for k, v in config.get("bioimageio", {}).items() if k not in dropped}
    bioimageio["environmental_impact"] = {"hardware_type": result.device, "hours_used": result.duration_s / 3600}
    floor = (config.get("bioimageio", {}).get("training") or {}).get("quality_floor") or {}
    settings = facts["settings"]
    bioimageio["training"] = {
        "training_epochs": len(result.history),
        "training_batch_size": settings.get("batch_size"),
        "initial_learning_rate": settings.get("lr"),
        "learning_rate_schedule": "cosine annealing over the epochs",
        "loss_function": result.loss_why,
        "optimizer": "Adam",
        "training_duration": result.duration_s / 3600,
        "fine_tuned_from": lineage.parent,
        "diagnosis": {"verdict": diagnosis.verdict, "explanation": diagnosis.explanation},
        **({"quality_floor": {k: v for k, v in floor.items() if k == result.metric}} if result.metric in floor else {}),
        "history": result.history,
    }
    n_test = result.data["split"]["test"]
    bioimageio[UNPUBLISHED_EVALUATIONS] = [
        {
            "dataset_id": f"user-folder-{result.data['sha256'][:12]}",
            "dataset_role": "test",
            "sample_count": n_test,
            "evaluation_factors": ["overall"],
            "evaluation_factors_long": [f"all {n_test} test images"],
            "metrics": [result.metric],
            "metrics_long": [
                f"{result.metric} of the fine-tuned model (base model: {result.before[result.metric]:.4g})"
            ],
            "results": [[float(result.after[result.metric])]],
            "results_summary": f"{result.metric} {result.after[result.metric]:.4g} on the held-out test split "
            f"({n_test} images) of the user's folder, {result.before[result.metric]:.4g} before fine-tuning.",
        }
    ]
    config["bioimageio"] = bioimageio
    return config


__all__ = ["finetune_config", "write_card"]
