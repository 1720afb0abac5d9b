"""zoo predict: any bioimage.io model on images of any size."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo.cli import common, show
from zoo.cli.app import app
from zoo.cli.common import Device, MemoryLimit, Overwrite, Trust, Verbose, parse_size, run_api, setup_logging


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="Package folder, rdf.yaml or .zip (any bioimage.io model).")],
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Images (TIFF, PNG, .npy, .zarr) or folders of them; for a model with several inputs "
            "ID=PATH,ID=PATH per prediction.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for <input stem>_<output id>.tif (.zarr for Zarr inputs; .csv for outputs without "
            "spatial axes, e.g. a classifier's classes); outside the model package."
        ),
    ],
    weights: Annotated[
        Optional[str],
        typer.Option(help="Weight format to use. [default: the fastest usable one for the device]"),
    ] = None,
    device: Device = "auto",
    tile: Annotated[
        str, typer.Option(help="auto (from the memory limit), none (whole image), or window sizes Y,X[,Z].")
    ] = "auto",
    batch_size: Annotated[
        Optional[int], typer.Option(min=1, help="Tiles per model call. [default: from the memory limit]")
    ] = None,
    memory_limit: MemoryLimit = "2GB",
    trust: Trust = False,
    axes: Annotated[
        Optional[str],
        typer.Option(help="The images' axes when the files do not say: letters b t z c y x s, e.g. zyx."),
    ] = None,
    blend: Annotated[
        Optional[int],
        typer.Option(min=0, help="Blend tiles over this many pixels (for models whose halo is too small); 0: off."),
    ] = None,
    workers: Annotated[
        Optional[int],
        typer.Option(min=1, help="Local Dask worker processes to spread files or tiles over. [default: none]"),
    ] = None,
    scheduler: Annotated[
        Optional[str],
        typer.Option(help="Address of a running Dask scheduler (its workers must see the same paths)."),
    ] = None,
    overwrite: Overwrite = False,
    verbose: Verbose = False,
) -> None:
    """Predict with a bioimage.io model: tiled with the declared halo, streamed, on CPU or GPU; outputs keep the
    input's pixel size and axes.

    Exit 0: every image predicted. 1: an image failed, or an output is NaN throughout (it is written anyway; NaN or
    infinite input pixels are named in a warning). 2: unusable arguments or images, existing outputs without
    --overwrite, or a model whose smallest window needs more than --memory-limit.
    """
    setup_logging(verbose)
    from zoo import api

    budget = parse_size(memory_limit)
    result = run_api(
        lambda: api.predict(
            model,
            inputs,
            out,
            weights=weights,
            device=device,
            tile=tile,
            batch_size=batch_size,
            memory_limit=budget,
            trust=trust,
            axes=axes,
            blend=blend,
            workers=workers,
            scheduler=scheduler,
            overwrite=overwrite,
            progress=common.progress(),
        ),
        interrupted=f"finished outputs are in {out}; Zarr outputs resume where they stopped when run again",
    )
    show.print_prediction(result)
    raise typer.Exit(result.exit_code)
