"""`zoo`: parse arguments, call zoo.api, draw progress, map results to exit codes.

Exit codes: 0 passed, 1 findings (validation failed), 2 usage or input error, 3 not verified (nothing failed
but nothing was verified, e.g. the only weights need --trust); zoo.validators.report decides the verdicts."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train, export, package and validate microscopy models for bioimage.io and Fiji.",
)
console = Console(stderr=False)
errors = Console(stderr=True, soft_wrap=True)

EXIT_PASSED, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class RichProgress:
    """zoo.progress.Progress drawn with rich."""

    def __init__(self) -> None:
        self._progress = None
        self._task = None

    def start(self, task: str, total: int | None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=errors,
        )
        self._progress.start()
        self._task = self._progress.add_task(task, total=total, info="")

    def advance(self, steps: int = 1, **info) -> None:
        text = " ".join(f"{k} {v}" for k, v in info.items())
        self._progress.update(self._task, advance=steps, info=text)

    def finish(self) -> None:
        self._progress.stop()


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        from loguru import logger as loguru_logger  # bioimageio logs through loguru

        loguru_logger.remove()
        loguru_logger.add(sys.stderr, level="INFO" if verbose else "ERROR")
    except ImportError:
        pass
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # quiet, and deterministic TF numerics


def _run(action):
    """Call into zoo.api; a ZooError is a one-line message and exit 2, never a traceback."""
    from zoo.errors import ZooError

    try:
        return action()
    except ZooError as e:
        errors.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/red]: nothing was written to the output folder")
        raise typer.Exit(130) from None
    except OSError as e:
        if os.environ.get("ZOO_DEBUG"):
            raise
        errors.print(f"[red]error:[/red] {escape(_os_error_message(e))}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except Exception as e:
        if os.environ.get("ZOO_DEBUG"):
            raise
        errors.print(
            f"[red]unexpected error:[/red] {type(e).__name__}: {escape(str(e))}\n"
            "Run again with ZOO_DEBUG=1 for the traceback and please report it.",
            highlight=False,
        )
        raise typer.Exit(EXIT_USAGE) from None


# what to do about a file-system failure, by errno name
OS_ERROR_ADVICE = {
    "EEXIST": "a file is in the way where a folder is needed: remove it or choose another path",
    "ENOTDIR": "a file is in the way where a folder is needed: remove it or choose another path",
    "EISDIR": "a folder is in the way where a file is needed: choose a file path",
    "ENOSPC": "the disk is full: free some space or write to another disk",
    "EDQUOT": "the disk quota is used up: free some space or write to another disk",
    "EFBIG": "the file is larger than the file-size limit (ulimit -f) or the file system allows: raise the limit "
    "or write to another disk",
    "EACCES": "permission denied: choose a folder you can write to",
    "EPERM": "permission denied: choose a folder you can write to",
    "EROFS": "the file system is read-only: choose a folder you can write to",
    "ENAMETOOLONG": "the name is too long for the file system: choose a shorter path",
    "ENOENT": "check the path",
}


def _os_error_message(e: OSError) -> str:
    """One line for a file-system failure: the path, the system's words for it and what to do."""
    import errno

    name = errno.errorcode.get(e.errno, "")
    where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 is not None else "") if e.filename else "a file"
    what = e.strerror or str(e) or type(e).__name__
    advice = OS_ERROR_ADVICE.get(name, "check the path and its permissions, or choose another one")
    return f"file-system error on {where}: {what}{f' ({name})' if name else ''}; {advice}"


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")]
DeviceOption = Annotated[str, typer.Option(help="cpu, cuda or auto (CUDA when available).")]


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the package, validation.json and the training run.")] = Path(
        "zoo-demo"
    ),
    trainer: Annotated[str, typer.Option(help="Trainer to run (see `zoo trainers`).")] = "unet2d",
    quick: Annotated[bool, typer.Option(help="A small, fast run of the same chain; quality not required.")] = False,
    device: DeviceOption = "auto",
    verbose: Verbose = False,
) -> None:
    """Train on synthetic nuclei, export, package for bioimage.io/Fiji, validate: the whole chain."""
    _setup_logging(verbose)
    from zoo import api

    result = _run(lambda: api.demo(out, trainer=trainer, quick=quick, device=device, progress=RichProgress()))
    training = result.training
    console.print(
        f"trained [bold]{trainer}[/bold] on {training.device} in {training.duration_s:.0f} s "
        f"({training.epochs_run} epochs): {_headline(training.metrics)}"
    )
    _print_exported(result.package.exported)
    print_report(result.report)
    console.print(f"package:    {result.zip_path}\nvalidation: {result.report_path}\ncheckpoint: {training.checkpoint}")
    raise typer.Exit(result.report.exit_code)


def _headline(metrics: dict[str, float]) -> str:
    """The test-split metrics a trainer reports first (per-class values are in the model card)."""
    shown = [(k, v) for k, v in metrics.items() if k.startswith("test_")][:3]
    return ", ".join(f"{k.removeprefix('test_').replace('_', ' ')} [bold]{v:.3f}[/bold]" for k, v in shown)


@app.command()
def train(
    out: Annotated[Optional[Path], typer.Option(help="Folder for checkpoint.pt [default: runs/<trainer>].")] = None,
    trainer: Annotated[str, typer.Option(help="Trainer to run (see `zoo trainers`).")] = "unet2d",
    data: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder of the user's TIFFs (see `zoo trainers` for the layout "
            "each trainer reads); synthetic data when omitted."
        ),
    ] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1)] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1)] = None,
    lr: Annotated[Optional[float], typer.Option(min=0)] = None,
    seed: int = 0,
    quick: bool = False,
    resume: Annotated[bool, typer.Option(help="Continue the run whose train_state.pt is in --out.")] = False,
    device: DeviceOption = "auto",
    verbose: Verbose = False,
) -> None:
    """Train a model and save its checkpoint."""
    _setup_logging(verbose)
    from zoo import api

    def configure():
        from pydantic import ValidationError

        from zoo.errors import InputError
        from zoo.trainers import default_config

        overrides = {
            k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, out=out).items() if v is not None
        }
        try:
            data_values = {"seed": seed, **({"folder": data} if data is not None else {})}
            return default_config(
                trainer, quick, seed=seed, device=device, resume=resume, data=data_values, **overrides
            )
        except ValidationError as e:
            raise InputError(f"invalid training settings: {e}") from e

    result = _run(lambda: api.train(configure(), RichProgress()))
    console.print(
        f"trained in {result.duration_s:.0f} s on {result.device}, {result.epochs_run} epochs; "
        f"metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    )
    console.print(f"checkpoint: {result.checkpoint}")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint.pt written by `zoo train`.")],
    out: Annotated[Path, typer.Option(help="Folder for the weight files.")] = Path("exported"),
    formats: Annotated[
        Optional[str], typer.Option(help="Comma-separated: pytorch_state_dict,torchscript,onnx.")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Export a checkpoint to weight formats, each proven against the PyTorch model."""
    _setup_logging(verbose)
    from zoo import api

    result = _run(lambda: api.export(checkpoint, out, formats, RichProgress()))
    _print_exported(result)
    raise typer.Exit(EXIT_FINDINGS if result.failures else EXIT_PASSED)


@app.command()
def package(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint.pt written by `zoo train`.")],
    out: Annotated[Path, typer.Option(help="Folder for the package zip.")] = Path("packages"),
    formats: Annotated[Optional[str], typer.Option(help="Comma-separated weight formats; all by default.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Model name in the rdf.")] = None,
    author: Annotated[Optional[list[str]], typer.Option(help="Author name; repeat for several.")] = None,
    license_id: Annotated[Optional[str], typer.Option("--license", help="SPDX licence id, e.g. CC-BY-4.0.")] = None,
    target: Annotated[
        str,
        typer.Option(
            help="deepimagej (default): refuse a package Fiji would not run or "
            "would compute differently; bioimageio: bioimage.io rules only."
        ),
    ] = "deepimagej",
    verbose: Verbose = False,
) -> None:
    """Export, describe and zip a checkpoint as a validated bioimage.io package for Fiji and Python."""
    _setup_logging(verbose)
    from zoo import api

    def configure():
        from pydantic import ValidationError

        from zoo.config import AuthorConfig, PackageConfig
        from zoo.errors import InputError

        values = {}
        if name:
            values["name"] = name
        if author:
            values["authors"] = [AuthorConfig(name=a) for a in author]
        if license_id:
            values["license"] = license_id
        values["target"] = target
        try:
            PackageConfig(**values)
            return values
        except ValidationError as e:
            raise InputError(f"invalid package settings: {e}") from e

    result = _run(lambda: api.package(checkpoint, out, formats, configure(), RichProgress()))
    _print_exported(result.exported)
    print_report(result.report)
    console.print(f"package: {result.zip_path}")


@app.command()
def validate(
    source: Annotated[
        Path, typer.Argument(help="Package folder, rdf.yaml or .zip (never modified: no output may point into it).")
    ],
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON here.")] = None,
    markdown_path: Annotated[
        Optional[Path], typer.Option("--markdown", help="Write the report as Markdown here.")
    ] = None,
    html_path: Annotated[
        Optional[Path], typer.Option("--html", help="Write the report as one self-contained HTML page here.")
    ] = None,
    junit_path: Annotated[
        Optional[Path], typer.Option("--junit", help="Write JUnit XML here (one testcase per check), for CI systems.")
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(help="Allow running code shipped in the package (pytorch_state_dict architectures, pickles)."),
    ] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    keep_artifacts: Annotated[
        Optional[Path], typer.Option(help="Save produced output tensors in this folder (outside the package).")
    ] = None,
    target: Annotated[
        str,
        typer.Option(
            help="bioimageio, or deepimagej: also fail when Fiji will not run the package or gives different numbers."
        ),
    ] = "bioimageio",
    time_limit: Annotated[float, typer.Option(help="Seconds the isolated validation may take.", min=1)] = 900,
    memory_limit: Annotated[float, typer.Option(help="MB of memory the model runs may use.", min=64)] = 8192,
    verbose: Verbose = False,
) -> None:
    """Validate a bioimage.io model package: format, files, test tensors, reproduction per weight format."""
    if target not in ("bioimageio", "deepimagej"):
        errors.print(f"[red]error:[/red] --target {escape(target)}: choose bioimageio or deepimagej")
        raise typer.Exit(EXIT_USAGE)
    _setup_logging(verbose)
    import tempfile
    from functools import partial

    from zoo import api
    from zoo.validators import writers

    outputs = {
        "--json": json_path,
        "--markdown": markdown_path,
        "--html": html_path,
        "--junit": junit_path,
        "--keep-artifacts": keep_artifacts,
    }
    _run(lambda: _refuse_outputs_inside(source, outputs))

    # the HTML shows produced outputs of failed reproductions: keep them for as long as it takes to write it
    with tempfile.TemporaryDirectory(prefix="zoo-artifacts-") as scratch:
        artifacts = keep_artifacts or (Path(scratch) if html_path is not None else None)
        report = _run(
            lambda: api.validate(
                source,
                trust=trust,
                device=device,
                keep_artifacts=artifacts,
                time_limit_s=time_limit,
                memory_limit_mb=memory_limit,
                progress=RichProgress(),
            )
        )
        print_report(report, target)
        for path, write in (
            (json_path, partial(report.write_json, target=target)),
            (markdown_path, partial(writers.write_markdown, report, target=target)),
            (html_path, partial(writers.write_html, report, target=target)),
            (junit_path, partial(writers.write_junit, report, target=target)),
        ):
            if path is not None:
                _run(lambda path=path, write=write: write(path))
                console.print(f"report: {path}")
    raise typer.Exit(report.verdict(target).exit_code)


def _refuse_outputs_inside(source: Path, outputs: dict[str, Path | None]) -> None:
    """Before any work: no output may land in the package under validation, and --keep-artifacts is a folder."""
    from zoo.bioimage.source import refuse_output_inside
    from zoo.errors import InputError

    for option, path in outputs.items():
        if path is not None:
            refuse_output_inside(option, path, source)
    artifacts = outputs.get("--keep-artifacts")
    if artifacts is not None and artifacts.exists() and not artifacts.is_dir():
        raise InputError(f"--keep-artifacts {artifacts} is a file, not a folder: give a new or existing folder")


@app.command()
def trainers() -> None:
    """List the trainers."""
    from zoo.trainers import TRAINERS, get_trainer

    table = Table("name", "framework", "description", "--data folder")
    for name in TRAINERS:
        trainer_ = get_trainer(name)
        table.add_row(name, trainer_.framework, trainer_.description, getattr(trainer_, "data_layout", ""))
    console.print(table)


@app.command()
def rules(
    markdown: Annotated[bool, typer.Option(help="Print docs/rules.md (Markdown) instead of a table.")] = False,
) -> None:
    """List every validation rule with its ID, severity and fix."""
    import zoo.validators.checks  # noqa: F401
    from zoo.validators.registry import RULES, rules_markdown

    if markdown:
        sys.stdout.write(rules_markdown())
        return

    table = Table("id", "severity", "stage", "title", "fix")
    for rule in sorted(RULES.values(), key=lambda r: r.id):
        table.add_row(rule.id, rule.severity, rule.stage, rule.title, rule.fix)
    console.print(table)


def _print_exported(result) -> None:
    table = Table("weights", "file", "max |Δ| to source", "max rel", "over 1e-4", title="exported")
    for weights in result.weights:
        a = weights.agreement
        table.add_row(
            weights.weight_format, weights.path.name, f"{a.max_abs:.2e}", f"{a.max_rel:.2e}", str(a.mismatched)
        )
    console.print(table)
    for weight_format, reason in result.failures.items():
        console.print(f"[yellow]not shipped[/yellow] {weight_format}: {escape(reason)}", highlight=False)


STATUS_STYLE = {"passed": "green", "failed": "red", "warning": "yellow", "skipped": "dim", "not verified": "yellow"}
DEEPIMAGEJ_STYLE = {"runs": "green", "runs with risks": "yellow", "cannot judge": "yellow"}


def print_report(report, target: str = "bioimageio") -> None:
    table = Table("rule", "status", "where", "message", title=f"validation of {Path(report.source).name}")
    for finding in report.findings:
        style = STATUS_STYLE[finding.status]
        table.add_row(
            finding.id, f"[{style}]{finding.status}[/{style}]", escape(finding.location), escape(finding.message)
        )
    console.print(table)
    from zoo.validators.report import counts_text

    verdict = report.verdict(target)
    style = STATUS_STYLE[verdict.status]
    console.print(
        f"verdict: [bold {style}]{verdict.status}[/bold {style}] "
        f"({counts_text(verdict.counts)}; {report.duration_s:.1f} s)"
    )
    if verdict.reason:
        console.print(escape(verdict.reason), highlight=False)
    if verdict.deepimagej is not None:
        style = DEEPIMAGEJ_STYLE.get(verdict.deepimagej, "red")
        console.print(f"deepImageJ (Fiji): [bold {style}]{verdict.deepimagej}[/bold {style}]")
    sandbox = report.sandbox or {}
    if sandbox and not (sandbox.get("files") and sandbox.get("network")):  # said, never assumed
        console.print(f"sandbox: [yellow]{escape(sandbox.get('summary', ''))}[/yellow]", highlight=False)


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
            help="Folder for <input stem>_<output id>.tif (.zarr for Zarr inputs; .csv "
            "for outputs without spatial axes, e.g. a classifier's classes); outside "
            "the model package."
        ),
    ],
    weights: Annotated[
        Optional[str], typer.Option(help="Weight format to use; the fastest usable one for the device by default.")
    ] = None,
    device: DeviceOption = "auto",
    tile: Annotated[
        str, typer.Option(help="auto (from the memory limit), none (whole image), or window sizes Y,X[,Z].")
    ] = "auto",
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Tiles per model call.")] = None,
    memory_limit: Annotated[
        Optional[str], typer.Option(help="Budget for tiles, queued model calls, buffers and statistics, e.g. 2GB.")
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            help="Allow weight formats and processing that run code shipped in "
            "the package (pytorch_state_dict, Keras, custom steps)."
        ),
    ] = False,
    axes: Annotated[
        Optional[str], typer.Option(help="The images' axes when the files do not say, letters b t z c y x s, e.g. zyx.")
    ] = None,
    blend: Annotated[
        Optional[int],
        typer.Option(min=0, help="Blend tiles over this many pixels (for models whose halo is too small); 0: off."),
    ] = None,
    scheduler: Annotated[
        Optional[str], typer.Option(help="Dask scheduler address, or local, to spread files or tiles over workers.")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Predict with a bioimage.io model: tiled with the declared halo, streamed, on CPU or GPU.

    Exit 0: every image predicted. 1: an image failed, or an output is NaN throughout (it is written anyway; NaN or
    infinite input pixels are named in a warning). 2: unusable arguments or images, or a model whose smallest
    window needs more than --memory-limit.
    """
    _setup_logging(verbose)
    from zoo import api

    result = _run(
        lambda: api.predict(
            model,
            inputs,
            out,
            weights=weights,
            device=device,
            tile=tile,
            batch_size=batch_size,
            memory_limit=memory_limit,
            trust=trust,
            axes=axes,
            blend=blend,
            scheduler=scheduler,
            progress=RichProgress(),
        )
    )
    _print_prediction(result)
    raise typer.Exit(result.exit_code)


def _print_prediction(result) -> None:
    table = Table(
        "input", "outputs", "tiles", "seconds", title=f"{result.model}: {result.weight_format} on {result.device}"
    )
    for item in result.items:
        names = ", ".join(p.name for p in item.inputs.values())
        if item.error:
            table.add_row(
                escape(names), f"[red]failed[/red]: {escape(item.error)}", str(item.tiles), f"{item.duration_s:.1f}"
            )
            continue
        tiles = f"{item.tiles}" + (f" (+{item.resumed_tiles} resumed)" if item.resumed_tiles else "")
        table.add_row(
            escape(names), escape(", ".join(p.name for p in item.outputs.values())), tiles, f"{item.duration_s:.1f}"
        )
    console.print(table)
    for message in result.warnings:
        console.print(f"[yellow]warning[/yellow]: {escape(message)}", highlight=False)
    rate = result.tiles / result.duration_s if result.duration_s else 0.0
    nan = [item for item in result.items if any(item.nan_share.values())]
    nan_note = f", {len(nan)} with NaN in an output ({len(result.nan_items)} NaN throughout)" if nan else ""
    console.print(
        f"{len(result.items) - len(result.failed)} of {len(result.items)} predicted{nan_note}, "
        f"{result.tiles} tiles in {result.duration_s:.1f} s ({rate:.1f} tiles/s)"
    )


@app.command("validate-collection")
def validate_collection(
    source: Annotated[
        Path,
        typer.Argument(
            help="Folder searched recursively for packages (folders with an rdf, "
            ".zip files), or a text file of package paths."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for summary.json, summary.md, junit.xml, index.html and "
            "reports/; it may lie in SOURCE (it is not searched) but not inside a "
            "package, which is never changed."
        ),
    ],
    workers: Annotated[
        Optional[int],
        typer.Option(min=1, help="Validate on this many local Dask worker processes; sequential by default."),
    ] = None,
    scheduler: Annotated[
        Optional[str],
        typer.Option(
            help="Address of an existing Dask scheduler to send the packages to (workers must see the same paths)."
        ),
    ] = None,
    target: Annotated[
        str,
        typer.Option(
            help="bioimageio, or deepimagej: also fail packages Fiji will not run or that give different numbers there."
        ),
    ] = "bioimageio",
    trust: Annotated[bool, typer.Option(help="Allow running code shipped in the packages.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Validate every package again, even unchanged ones.")
    ] = False,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache", help="Cache folder; OUT/.cache by default.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    time_limit: Annotated[float, typer.Option(help="Seconds one package may take.", min=1)] = 900,
    memory_limit: Annotated[
        float, typer.Option(help="MB of memory the model runs of one package may use.", min=64)
    ] = 8192,
    verbose: Verbose = False,
) -> None:
    """Validate every package of a collection, each in isolation, in parallel if asked; write a dashboard."""
    _setup_logging(verbose)
    from zoo import api

    result = _run(
        lambda: api.validate_collection(
            source,
            out,
            workers=workers,
            scheduler=scheduler,
            target=target,
            trust=trust,
            device=device,
            use_cache=not no_cache,
            cache_dir=cache_dir,
            time_limit_s=time_limit,
            memory_limit_mb=memory_limit,
            progress=RichProgress(),
        )
    )
    table = Table("package", "status", "deepImageJ (Fiji)", "failed rules", "s", title=f"collection {source}")
    for entry in result.entries:
        style = STATUS_STYLE.get(entry.status, "red")
        problems = ", ".join(entry.failed_rules) or entry.reason
        seconds = f"{entry.duration_s:.1f}" + (" (cached)" if entry.cache_hit else "")
        table.add_row(
            escape(entry.path),
            f"[{style}]{entry.status}[/{style}]",
            entry.deepimagej or "not checked",
            escape(problems),
            seconds,
        )
    console.print(table)
    style = STATUS_STYLE[result.status]
    console.print(
        f"verdict: [bold {style}]{result.status}[/bold {style}] ({result.counts_text()}) in {result.duration_s:.1f} s"
    )
    console.print(f"dashboard: {result.index_path}\nsummary:   {result.summary_path}\njunit:     {result.junit_path}")
    raise typer.Exit(result.exit_code)


@app.command("fix-deepimagej")
def fix_deepimagej(
    source: Annotated[Path, typer.Argument(help="Package folder, rdf.yaml or .zip (never modified).")],
    out: Annotated[Path, typer.Option(help="Folder for the fixed zip.")] = Path("fixed"),
    device: Annotated[str, typer.Option(help="cpu or cuda, for the re-validation.")] = "cpu",
    verbose: Verbose = False,
) -> None:
    """Rewrite a package for Fiji's deepImageJ: fix what can be fixed mechanically, re-validate, list the rest."""
    _setup_logging(verbose)
    from zoo import api

    result = _run(lambda: api.fix_deepimagej(source, out, device=device, progress=RichProgress()))
    for fix in result.fixed:
        console.print(f"fixed {fix.rule_id or '-':6} {escape(fix.what)}")
    for rule_id, messages in sorted(result.not_fixed.items()):
        for message in messages:
            console.print(f"[red]not fixed[/red] {rule_id} {escape(message)}")
    console.print(f"deepImageJ: {result.verdict}\npackage: {result.zip_path}")
    raise typer.Exit(result.exit_code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
