"""Running a collection: plan (hash every package, take unchanged ones from the cache, validate the same
content once), validate the rest one by one or on Dask workers, fill one entry per package from its report's
verdict, and write the outputs.

One package never stops the others: a package that cannot be opened, or whose validation crashes, is a
failed entry with its message. With Dask, workers must see the same paths as this process (a shared file
system): they read the packages and write produced outputs into the cache folder."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import InputError, SourceError
from zoo.progress import Progress, SilentProgress
from zoo.validators.collection.cache import CACHE_FOLDER, ResultCache, cache_key, content_hash, rule_set_fingerprint
from zoo.validators.collection.discovery import find_packages, slugs
from zoo.validators.collection.render import write_outputs
from zoo.validators.collection.result import TARGETS, CollectionResult, PackageEntry, ValidationOptions
from zoo.validators.report import ValidationReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackageJob:
    """What a worker needs to validate one package."""

    source: str
    artifacts: str | None  # where the produced outputs go (for the HTML images of failed reproductions)
    options: ValidationOptions
    isolate: bool = True


@dataclass
class PackageOutcome:
    report: ValidationReport | None
    error: str | None
    duration_s: float


def validate_package(job: PackageJob) -> PackageOutcome:
    """Validate one package; never raises (runs on Dask workers too)."""
    from zoo.validators import validate_source

    _allow_child_processes()
    started = time.perf_counter()
    artifacts = Path(job.artifacts) if job.artifacts else None
    if artifacts is not None:
        shutil.rmtree(artifacts, ignore_errors=True)
    options = job.options
    try:
        report = validate_source(
            Path(job.source),
            trust=options.trust,
            device=options.device,
            keep_artifacts=artifacts,
            isolate=job.isolate,
            time_limit_s=options.time_limit_s,
            memory_limit_mb=options.memory_limit_mb,
        )
        return PackageOutcome(report, None, time.perf_counter() - started)
    except SourceError as e:
        return PackageOutcome(None, str(e), time.perf_counter() - started)
    except Exception as e:  # a validator bug on one package must not stop the collection
        logger.debug("validating %s crashed", job.source, exc_info=True)
        return PackageOutcome(
            None, f"the validation crashed ({type(e).__name__}: {e}); please report this", time.perf_counter() - started
        )


def _allow_child_processes() -> None:
    """Dask's nanny starts workers as daemonic processes, and multiprocessing refuses children to those; the
    isolated model runs need one. Lifting the flag here is safe: the child is itself daemonic and
    the RuntimeChild that starts it kills it when done."""
    process = multiprocessing.current_process()
    if process.daemon:
        process._config["daemon"] = False


def _run_sequential(jobs: dict[int, PackageJob], paths: dict[int, str], progress: Progress):
    outcomes = {}
    for index, job in jobs.items():
        outcomes[index] = validate_package(job)
        progress.advance(1, package=paths[index])
    return outcomes


def _run_dask(
    jobs: dict[int, PackageJob], paths: dict[int, str], progress: Progress, workers: int | None, scheduler: str | None
):
    try:
        import dask
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as e:
        raise InputError("--workers and --scheduler need dask.distributed: pip install 'dask[distributed]'") from e
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as e:
            raise InputError(
                f"--scheduler {scheduler}: no Dask scheduler answers there ({e}); give its address, "
                "e.g. tcp://host:8786"
            ) from e
    else:
        with dask.config.set({"distributed.worker.daemon": False}):  # workers start the isolated model runs
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        client = Client(cluster)
    outcomes = {}
    try:
        futures = {
            client.submit(validate_package, job, pure=False, key=f"zoo-validate-{index}-{os.urandom(4).hex()}"): index
            for index, job in jobs.items()
        }
        for future in as_completed(futures):
            index = futures[future]
            try:
                outcomes[index] = future.result()
            except Exception as e:  # the worker died (e.g. KilledWorker after repeated crashes)
                outcomes[index] = PackageOutcome(
                    None, f"the Dask worker validating it failed ({type(e).__name__}: {e})", 0.0
                )
            progress.advance(1, package=paths[index])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return outcomes


@dataclass
class _Plan:
    keys: dict[int, str | None] = field(default_factory=dict)  # entry -> cache key (None: unreadable)
    first_of_key: dict[str, int] = field(default_factory=dict)  # the entry validated for each content
    reports: dict[int, ValidationReport] = field(default_factory=dict)  # entry -> report (from the cache so far)
    jobs: dict[int, PackageJob] = field(default_factory=dict)  # entry -> what to validate


def _plan(
    entries: list[PackageEntry], options: ValidationOptions, cache: ResultCache, use_cache: bool, isolate: bool
) -> _Plan:
    """Hash every package; take unchanged ones from the cache, validate the same content once."""
    plan = _Plan()
    rules = rule_set_fingerprint()
    for index, entry in enumerate(entries):
        try:
            entry.sha256 = content_hash(Path(entry.source))
            key = cache_key(entry.sha256, options, rules)
        except OSError:
            key = None  # missing or unreadable: validate_package reports why
        plan.keys[index] = key
        if key is not None and key in plan.first_of_key:
            continue  # the same content twice in one run: validated once
        if key is not None and use_cache and (cached := cache.load(key)) is not None:
            plan.reports[index] = cached
            entry.cache_hit = True
        else:
            artifacts = str(cache.artifacts(key)) if key is not None else None
            plan.jobs[index] = PackageJob(entry.source, artifacts, options, isolate)
        if key is not None:
            plan.first_of_key[key] = index
    return plan


def validate_collection(
    source: Path,
    out_dir: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    target: str = "bioimageio",
    trust: bool = False,
    device: str = "cpu",
    use_cache: bool = True,
    cache_dir: Path | None = None,
    time_limit_s: float | None = None,
    memory_limit_mb: float | None = None,
    isolate: bool = True,
    progress: Progress | None = None,
) -> CollectionResult:
    """Validate every package of `source` and write the collection's reports into `out_dir`."""
    _check_arguments(target, workers, scheduler)
    started = time.perf_counter()
    progress = progress or SilentProgress()
    out_dir = Path(out_dir)
    cache = ResultCache(Path(cache_dir) if cache_dir else out_dir / CACHE_FOLDER)
    found = find_packages(Path(source), exclude=(out_dir, cache.folder))
    if not found:
        raise InputError(
            f"{source} holds no package (no folder with rdf.yaml, bioimageio.yaml or *.bioimageio.yaml, and no .zip)"
        )
    _refuse_outputs(out_dir, cache_dir, [path for _, path in found])
    options = ValidationOptions(target, trust, device, time_limit_s, memory_limit_mb)
    entries = [
        PackageEntry(display, str(path), slug) for (display, path), slug in zip(found, slugs([d for d, _ in found]))
    ]
    plan = _plan(entries, options, cache, use_cache, isolate)
    outcomes = _run(plan.jobs, entries, progress, workers, scheduler)
    _keep_reports(plan, outcomes, cache)
    _fill_entries(entries, plan, outcomes, target)
    result = CollectionResult(Path(source), out_dir, entries, options)
    result.duration_s = time.perf_counter() - started
    write_outputs(result, plan.reports)
    return result


def _check_arguments(target: str, workers: int | None, scheduler: str | None) -> None:
    if target not in TARGETS:
        raise InputError(f"target {target!r}: choose one of {', '.join(TARGETS)}")
    if workers is not None and scheduler:
        raise InputError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: give at least 1")


def _run(
    jobs: dict[int, PackageJob],
    entries: list[PackageEntry],
    progress: Progress,
    workers: int | None,
    scheduler: str | None,
) -> dict[int, PackageOutcome]:
    """Validate the planned jobs, on Dask when workers or a scheduler are given, else one by one."""
    progress.start("validating packages", len(jobs))
    try:
        paths = {index: entries[index].path for index in jobs}
        if workers is not None or scheduler:
            return _run_dask(jobs, paths, progress, workers, scheduler)
        return _run_sequential(jobs, paths, progress)
    finally:
        progress.finish()


def _keep_reports(plan: _Plan, outcomes: dict[int, PackageOutcome], cache: ResultCache) -> None:
    """The new reports join the plan's and are stored in the cache (unless the package could not be hashed)."""
    for index, outcome in outcomes.items():
        if outcome.report is not None:
            outcome.report.duration_s = outcome.duration_s
            plan.reports[index] = outcome.report
            if plan.keys[index] is not None:
                cache.store(plan.keys[index], outcome.report)


def _fill_entries(entries: list[PackageEntry], plan: _Plan, outcomes: dict[int, PackageOutcome], target: str) -> None:
    """Each entry from its report (a duplicate from the first entry of its content), or from why it has none."""
    reports = plan.reports
    for index, entry in enumerate(entries):
        key = plan.keys[index]
        first = plan.first_of_key.get(key, index) if key is not None else index
        if first != index:
            entry.cache_hit = entries[first].cache_hit
        report = reports.get(first)
        if report is None:
            outcome = outcomes.get(first)
            entry.error = outcome.error if outcome else "not validated"
            entry.reason = f"failed: {entry.error}"
            entry.duration_s = outcome.duration_s if outcome else 0.0
            continue
        report = dataclasses.replace(report, source=entry.source)  # duplicates share findings, not sources
        _fill_entry(entry, report, target)
        reports[index] = report


def _refuse_outputs(out_dir: Path, cache_dir: Path | None, packages: list[Path]) -> None:
    """Before any work: --out and --cache are folders, and none lies inside a package (packages are never
    changed); a new folder beside the packages, inside the collection's folder, is fine."""
    from zoo.bioimage.source import refuse_output_inside

    outputs = {"--out": out_dir, **({"--cache": Path(cache_dir)} if cache_dir else {})}
    for option, folder in outputs.items():
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{option} {folder} is a file, not a folder: give a new or existing folder")
        for package in packages:
            refuse_output_inside(option, folder, package)


def _fill_entry(entry: PackageEntry, report: ValidationReport, target: str) -> None:
    verdict = report.verdict(target)
    entry.status = verdict.status
    entry.reason = verdict.reason
    entry.name = report.name
    entry.deepimagej = verdict.deepimagej
    entry.deepimagej_rules = sorted(
        {f.id for f in report.findings if f.rule.target == "deepimagej" and f.status in ("failed", "warning")}
    )
    entry.failed_rules = list(verdict.failing_rules)
    entry.failures = verdict.counts["failed"]
    entry.counts = verdict.counts
    entry.duration_s = report.duration_s
