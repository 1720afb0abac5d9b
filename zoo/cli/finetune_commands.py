"""zoo finetune: a package trained further on your images, measured before and after, shared with its lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from zoo.cli import common, show
from zoo.cli.app import app
from zoo.cli.common import Device, Overwrite, Trust, Verbose, check_positive, run_api, setup_logging


def check_freeze(value: str) -> str:
    from zoo.finetune.trainable import FREEZE_CHOICES

    if value not in FREEZE_CHOICES:
        raise typer.BadParameter(f"{value!r}: choose {' or '.join(FREEZE_CHOICES)}")
    return value


def check_loss(value: str) -> str:
    from zoo.finetune.losses import LOSSES

    if value != "auto" and value not in LOSSES:
        raise typer.BadParameter(f"{value!r}: choose auto, {', '.join(LOSSES)}")
    return value


@app.command()
def finetune(
    source: Annotated[Path, typer.Argument(help="Package folder, rdf.yaml or .zip to fine-tune (never modified).")],
    data: Annotated[
        Path,
        typer.Option(
            help="Folder of your images in a `zoo train --data` layout: images/ + masks/ (segmentation; class labels "
            "0..K-1 for K classes) or images/ + targets/ (restoration)."
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for the fine-tuned package; the run's state goes to OUT/training.")
    ] = Path("finetuned"),
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Epochs to train. [default: 25]")] = None,
    lr: Annotated[
        Optional[float], typer.Option(callback=check_positive, help="Initial learning rate, > 0. [default: 0.001]")
    ] = None,
    freeze: Annotated[
        str, typer.Option(callback=check_freeze, help="encoder: train the decoder only; none: train everything.")
    ] = "none",
    loss: Annotated[
        str,
        typer.Option(
            callback=check_loss,
            help="auto (from the package's output: sigmoid → bce-dice, softmax → cross-entropy, unbounded → mse), "
            "bce-dice, cross-entropy or mse.",
        ),
    ] = "auto",
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Crops per training step. [default: 4]")] = None,
    patch_size: Annotated[
        Optional[int], typer.Option(min=16, help="Side of the training crops (the rdf's size if fixed). [default: 128]")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data split, augmentation and shuffling.")] = 0,
    weights: Annotated[
        Optional[str],
        typer.Option(help="The package's weight format to train, e.g. onnx. [default: the best trainable one]"),
    ] = None,
    formats: Annotated[
        Optional[str],
        typer.Option(
            help="Weight formats of the new package, e.g. torchscript,onnx. [default: every format the trained model "
            "exports to]"
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run in OUT/training.")] = False,
    device: Device = "auto",
    trust: Trust = False,
    overwrite: Overwrite = False,
    verbose: Verbose = False,
) -> None:
    """Fine-tune a package on your own images: its metric on your held-out test split before and after, and a new
    package with a parent link to the original, written only when the metric improved. Exit 0: improved and written;
    1: not improved, or the new package did not validate; 2: the input cannot be used."""
    setup_logging(verbose)
    from zoo import api

    result = run_api(
        lambda: api.finetune(
            source,
            data,
            out,
            epochs=epochs,
            lr=lr,
            freeze=freeze,
            loss=loss,
            batch_size=batch_size,
            patch_size=patch_size,
            seed=seed,
            device=device,
            weights=weights,
            formats=formats,
            trust=trust,
            overwrite=overwrite,
            resume=resume,
            progress=common.progress(),
        ),  # fmt: skip
        interrupted=lambda: _interrupted_note(source, data, out),
    )
    print_finetuning(result)
    lineage = result.lineage
    if lineage is not None:
        if lineage.exported is not None:
            show.print_exported(lineage.exported)
        halo = lineage.halo
        if halo:
            common.console.print(f"halo: {halo['halo']} px ({escape(halo['how'])}; {halo['declared']} px before)")
        if lineage.report is not None:
            show.print_report(lineage.report, verbose=verbose)
        if lineage.not_written:
            common.console.print(f"[red]not written[/red]: {escape(lineage.not_written)}", highlight=False)
        else:
            parent = lineage.parent
            link = f"parent id {parent['id']}" if "id" in parent else f"base rdf sha256 {parent['rdf_sha256'][:12]}…"
            common.console.print(f"package: {lineage.zip_path} ({escape(link)})", highlight=False)
    common.console.print(f"run: {result.run_folder}")
    raise typer.Exit(result.exit_code)


def print_finetuning(result) -> None:
    """Which weights trained and why, the loss, the data, the metric before and after, and whether it was kept."""
    from zoo.model_cards import diagnose

    console = common.console
    console.print(f"weights trained: [bold]{result.weights}[/bold] ({escape(result.why)})", highlight=False)
    console.print(
        f"loss: {escape(result.loss_why)}; {escape(result.frozen)}; normalisation statistics "
        f"{escape(result.normalisation)}",
        highlight=False,
    )
    split = result.data["split"]
    console.print(
        f"data: {result.data['n_files']} images in {escape(result.data['folder_name'])}: {split['train']} train, "
        f"{split['validation']} validation, {split['test']} test",
        highlight=False,
    )
    for warning in result.data_warnings:
        console.print(f"[yellow]warning[/yellow]: {escape(str(warning))}", highlight=False)
    table = Table("metric", "base model", "fine-tuned", title=f"held-out test split ({split['test']} images)")
    for name, before in result.before.items():
        table.add_row(name, f"{before:.4f}", f"{result.after.get(name, float('nan')):.4f}")
    console.print(table)
    diagnosis = diagnose(result.history)
    epochs = f"{len(result.history)} epochs, best {result.best_epoch}"
    console.print(
        f"training: {epochs} in {result.duration_s:.0f} s on {result.device}; curves: [bold]{diagnosis.verdict}"
        f"[/bold]. {escape(diagnosis.explanation)}"
    )
    style = "green" if result.kept else "yellow"
    console.print(f"[{style}]{escape(result.verdict)}[/{style}]", highlight=False)


def _interrupted_note(source: Path, data: Path, out: Path) -> str:
    from zoo.finetune.settings import RUN_FOLDER
    from zoo.trainers.runs import saved_state

    run = out / RUN_FOLDER
    if saved_state(run) is None:
        return f"nothing was saved in {out}"
    return (
        f"the run so far is in {run}: continue it with `zoo finetune {source} --data {data} --out {out} --resume` "
        "(and the same settings)"
    )
