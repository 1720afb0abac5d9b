"""zoo demo, zoo train, zoo trainers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from zoo.cli import common, show
from zoo.cli.app import app
from zoo.cli.common import Device, Overwrite, Verbose, check_positive, run_api, setup_logging

TrainerName = Annotated[str, typer.Option(help="Trainer to run (`zoo trainers` lists them).")]
Quick = Annotated[bool, typer.Option(help="A small, fast run of the whole chain: a smoke test, not a model to use.")]


def interrupted_note(out: Path) -> str:
    """What Ctrl-C leaves in a run folder, and how to go on."""
    from zoo.trainers.runs import saved_state

    state = saved_state(out)
    if state is None:
        return f"nothing was saved in {out}"
    return f"{state.name} in {out} holds the run so far: continue it with `zoo train --resume --out {out}`"


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option(help="New or empty folder for the package, validation.json and the training run.")
    ] = Path("zoo-demo"),
    trainer: TrainerName = "unet2d",
    quick: Quick = False,
    device: Device = "auto",
    overwrite: Overwrite = False,
    verbose: Verbose = False,
) -> None:
    """Train on synthetic data, export, package for bioimage.io and Fiji, validate: the whole chain."""
    setup_logging(verbose)
    from zoo import api

    result = run_api(
        lambda: api.demo(
            out, trainer=trainer, quick=quick, device=device, overwrite=overwrite, progress=common.progress()
        ),
        interrupted=f"the demo in {out} is incomplete: run it again with --overwrite, or into a new --out folder",
    )
    show.print_training(result.training, trainer, quick)
    show.print_exported(result.package.exported)
    show.print_report(result.report, verbose=verbose)
    common.console.print(
        f"package:    {result.zip_path}\nvalidation: {result.report_path}\ncheckpoint: {result.training.checkpoint}"
    )
    raise typer.Exit(result.report.exit_code)


@app.command()
def train(
    out: Annotated[
        Optional[Path], typer.Option(help="Folder for the run: checkpoint.pt and the state to resume from.")
    ] = None,
    trainer: TrainerName = "unet2d",
    data: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder of your own TIFFs (`zoo trainers` shows the layout each trainer reads); synthetic data "
            "when omitted."
        ),
    ] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Epochs to train. [default: the trainer's]")] = None,
    batch_size: Annotated[
        Optional[int], typer.Option(min=1, help="Images per training step. [default: the trainer's]")
    ] = None,
    lr: Annotated[
        Optional[float],
        typer.Option(callback=check_positive, help="Initial learning rate, > 0. [default: the trainer's]"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data split, augmentation and initialisation.")] = 0,
    quick: Quick = False,
    resume: Annotated[
        bool, typer.Option(help="Continue the interrupted run in --out, with the settings it recorded.")
    ] = False,
    overwrite: Overwrite = False,
    device: Device = "auto",
    verbose: Verbose = False,
) -> None:
    """Train a model on synthetic data or your own folder and save its checkpoint."""
    setup_logging(verbose)
    from zoo import api

    out = out if out is not None else Path("runs") / trainer

    def configure():
        from zoo.trainers.runs import resumed_config

        given = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr).items() if v is not None}
        recorded = resumed_config(out, **given) if resume else None
        return recorded or api.training_config(
            trainer, data=data, quick=quick, seed=seed, device=device, resume=resume, out=out, **given
        )

    result = run_api(
        lambda: api.train(configure(), common.progress(), overwrite=overwrite),
        interrupted=lambda: interrupted_note(out),
    )
    show.print_training(result, trainer, quick)
    common.console.print(f"checkpoint: {result.checkpoint}")


@app.command()
def trainers() -> None:
    """List the trainers, their framework and the --data layout each reads."""
    from zoo.trainers import TRAINERS, get_trainer

    table = Table("name", "framework", "description", "--data folder")
    for name in TRAINERS:
        trainer_ = get_trainer(name)
        table.add_row(name, trainer_.framework, trainer_.description, getattr(trainer_, "data_layout", ""))
    common.console.print(table)
