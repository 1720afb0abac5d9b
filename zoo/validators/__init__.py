"""The validator: a registry of checks with stable rule IDs, run on any package, reported as findings."""

from __future__ import annotations

import gc
import logging
import time
from contextlib import contextmanager
from pathlib import Path

from zoo.bioimage.source import ExtractionTimeout, UnsafeArchive, open_source
from zoo.progress import Progress, SilentProgress
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import CHECKS, RULES, RUNTIME_STAGES, STAGES, Finding, failed, skipped
from zoo.validators.report import ValidationReport

logger = logging.getLogger(__name__)


def validate_source(
    source: Path,
    *,
    trust: bool = False,
    device: str = "cpu",
    keep_artifacts: Path | None = None,
    progress: Progress | None = None,
    isolate: bool = True,
    time_limit_s: float | None = None,
    memory_limit_mb: float | None = None,
    extract_time_limit_s: float | None = None,
    static_only: bool = False,
) -> ValidationReport:
    """Run every registered check on a package folder, rdf file or zip. Raises SourceError (exit 2) only
    when there is nothing to validate; everything wrong with a package becomes a finding.

    With `isolate`, the checks that run the model do so in a child process bounded by `time_limit_s`
    and `memory_limit_mb`; without it they run in this process (faster, for trusted packages and tests).
    A zip that takes longer than `extract_time_limit_s` to unpack is a finding (SAF002). With `static_only`, no
    model runs (the rules of RUNTIME_STAGES are left out), so the verdict is at best "not verified"."""
    progress = progress or SilentProgress()
    started = time.perf_counter()
    report = ValidationReport(source=str(source), artifacts=str(keep_artifacts) if keep_artifacts else None)
    try:
        opened = open_source(Path(source), extract_time_limit_s)
    except ExtractionTimeout as e:
        import zoo.validators.checks  # noqa: F401  (registers the rules)

        report.findings.append(
            failed(
                RULES["SAF002"],
                str(e),
                Path(source).name,
                seconds=e.seconds,
                limit_s=e.limit_s,
                members_done=e.members_done,
                members=e.members,
            )
        )
        report.duration_s = time.perf_counter() - started
        return report
    except UnsafeArchive as e:
        import zoo.validators.checks  # noqa: F401  (registers the rules)

        report.findings.append(failed(RULES["SAF001"], str(e), Path(source).name))
        report.duration_s = time.perf_counter() - started
        return report
    with opened, _model_workers(opened, device, isolate and not static_only) as workers:
        import zoo.validators.checks  # noqa: F401  (registers the rules, while the workers import their runtimes)

        ordered = sorted(CHECKS.items(), key=lambda item: (STAGES.index(RULES[item[0]].stage), item[0]))
        runtime = [rule_id for rule_id, _ in ordered if RULES[rule_id].stage in RUNTIME_STAGES]
        static = [rule_id for rule_id, _ in ordered if rule_id not in runtime]
        shown = []

        def show_progress() -> None:  # once the isolated processes exist: the bar's thread must not be forked
            if not shown:
                progress.start("validating", len(static) if static_only else len(ordered))
                shown.append(True)

        try:
            if isolate and not static_only:
                _check_isolated(
                    opened,
                    report,
                    static,
                    runtime,
                    progress,
                    show_progress,
                    trust=trust,
                    device=device,
                    keep_artifacts=keep_artifacts,
                    time_limit_s=time_limit_s,
                    memory_limit_mb=memory_limit_mb,
                    workers=workers,
                )
            else:
                show_progress()
                pkg = PackageUnderTest(opened, trust=trust, device=device, keep_artifacts=keep_artifacts)
                try:
                    load_package(pkg)
                    _describe(report, package_facts(pkg))
                    for rule_id in static if static_only else [rule_id for rule_id, _ in ordered]:
                        report.findings.extend(run_rule(pkg, rule_id))
                        progress.advance(1, rule=rule_id)
                finally:
                    pkg.close()
        finally:
            if shown:
                progress.finish()
    report.duration_s = time.perf_counter() - started
    return report


@contextmanager
def _model_workers(opened, device: str, isolate: bool):
    """The isolated validation's worker processes (zoo.validators.isolation.ModelWorkers), started before
    anything else is imported or read here, so that the runtimes load meanwhile; None without isolation. Ended on
    the way out unless the isolated child took them over."""
    if not isolate:
        yield None
        return
    from zoo.validators.isolation import ModelWorkers

    workers = ModelWorkers(opened.root, opened.rdf_path, device)
    try:
        yield workers
    finally:
        workers.close()


def _check_isolated(
    opened,
    report: ValidationReport,
    static: list[str],
    runtime: list[str],
    progress: Progress,
    show_progress,
    *,
    trust: bool,
    device: str,
    keep_artifacts: Path | None,
    time_limit_s: float | None,
    memory_limit_mb: float | None,
    workers=None,
) -> None:
    """All checks in one child process (one import of bioimageio.spec and the frameworks, one parse): the
    static findings arrive first, so that a model that hangs, explodes or crashes the child loses only the
    runtime ones. When the child stops before the static findings (an rdf or file built to exhaust the reader),
    that is a finding (SAF006): this process never reads the package itself, outside the limits."""
    from zoo.validators.isolation import (
        DEFAULT_MEMORY_LIMIT_MB,
        DEFAULT_TIME_LIMIT_S,
        IsolationFailure,
        RuntimeChild,
        RuntimeJob,
    )

    job = RuntimeJob(
        opened.source,
        opened.root,
        opened.rdf_path,
        trust,
        device,
        keep_artifacts,
        None,
        runtime,
        static_rule_ids=static,
        extract_s=opened.extract_s,
        extract_limit_s=opened.extract_limit_s,
    )
    child = RuntimeChild(
        job, time_limit_s or DEFAULT_TIME_LIMIT_S, memory_limit_mb or DEFAULT_MEMORY_LIMIT_MB, workers=workers
    )
    show_progress()
    received: dict[str, object] = {}
    try:
        for kind, payload in child.messages():
            received[kind] = payload
            if kind == "static":
                progress.advance(len(static), rule="static checks")
    finally:
        child.stop()
    failure = received.get("stopped") or IsolationFailure("crash", "the validation ended without answering")
    if "static" not in received:  # stopped while reading the package: never re-read here, without limits
        report.findings.append(
            failed(
                RULES["SAF006"],
                f"reading and checking the package was stopped: {failure.message}",
                "validation",
                reason=failure.reason,
            )
        )
        received["static"] = [
            skipped(RULES[rule_id], "not run: the validation was stopped (see SAF006)")
            for rule_id in static
            if rule_id != "SAF006"
        ]
        progress.advance(len(static), rule="static checks")
    report.sandbox = received.get("sandbox")
    _describe(report, received.get("facts") or {})
    report.findings.extend(received["static"])
    if "runtime" in received:
        report.findings.extend(received["runtime"])
    elif runtime:
        report.findings.append(failed(RULES[runtime[0]], failure.message, "model run", reason=failure.reason))
        report.findings.extend(
            skipped(RULES[rule_id], "not run: the model run was stopped (see REP001)") for rule_id in runtime[1:]
        )
    progress.advance(len(runtime), rule="model runs")


def package_facts(pkg: PackageUnderTest) -> dict:
    """What the report says about the package besides findings."""
    if pkg.descr is None:
        return {}
    return {
        "name": str(getattr(pkg.descr, "name", "") or ""),
        "format_version": str(pkg.descr.format_version),
        "weight_formats": pkg.weight_formats,
    }


def _describe(report: ValidationReport, facts: dict) -> None:
    report.name = facts.get("name", report.name)
    report.format_version = facts.get("format_version", report.format_version)
    report.weight_formats = facts.get("weight_formats", report.weight_formats)


def run_isolated_checks(job, send, own_process: bool = False) -> None:
    """What the isolated child does: parse the package, `send("facts", ...)`, run the static rules and
    `send("static", findings)` (when the job names them), then the runtime rules: `send("runtime", findings)`.
    Without the parent's list of unusable files (`job.file_problems` None) the FIL rules find them here.
    `own_process`: this process exists for this job (the isolated child): what the imports and the parse made is
    frozen for the garbage collector (see _garbage_collection_paused)."""
    import zoo.validators.checks  # noqa: F401
    from zoo.bioimage.source import OpenedSource

    opened = OpenedSource(
        job.source, job.root, job.rdf_path, extract_s=job.extract_s, extract_limit_s=job.extract_limit_s
    )
    from zoo.validators.isolation import run_static_aside
    from zoo.validators.model_worker import worker_clients

    pkg = PackageUnderTest(
        opened, trust=job.trust, device=job.device, keep_artifacts=job.keep_artifacts, workers=worker_clients(job)
    )
    try:
        with _garbage_collection_paused(freeze=own_process):  # bioimageio.spec and bioimageio.core import here
            load_package(pkg)
            send("facts", package_facts(pkg))
            static = list(job.static_rule_ids)
            if static:  # the FIL rules decide which files may run: pkg.file_problems is filled on return
                deciding = [rule_id for rule_id in static if RULES[rule_id].stage == "files"]
                run_static_aside(job, pkg, static, deciding, lambda rule_id: run_rule(pkg, rule_id), send)
        if job.file_problems is not None:
            pkg.file_problems.update(job.file_problems)
        else:
            for rule_id in sorted(r for r in CHECKS if RULES[r].stage == "files" and r not in static):
                run_rule(pkg, rule_id)  # fills pkg.file_problems
        runtime = [f for rule_id in job.rule_ids for f in run_rule(pkg, rule_id)]
    finally:
        pkg.close()  # before the last answer: the parent may end the process right after it
    send("runtime", runtime)


@contextmanager
def _garbage_collection_paused(freeze: bool = False):
    """The garbage collector off while the body runs, as it was after. For imports: bioimageio.spec's, bioimageio.core's
    and the runtimes' make some 10^5 long-lived objects and almost no garbage, and the collections their allocations
    set off meanwhile cost a tenth of their CPU, spent on the way to the first model run. With `freeze` (in a process
    of its own, which ends soon), what exists then is moved out of the collector's sight (gc.freeze): the later
    collections do not scan those objects again."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if collecting:
            gc.enable()


def load_package(pkg: PackageUnderTest) -> None:
    """Read the yaml (bounded: size, aliases, depth), then let bioimageio.spec judge it without the network."""
    from zoo.bioimage.rdf import RdfError, read_rdf

    try:
        pkg.rdf = read_rdf(pkg.opened.rdf_path)
    except (RdfError, OSError) as e:
        pkg.rdf_error = str(e)
        return
    from bioimageio.spec import InvalidDescr, load_description

    from zoo.bioimage.spec import choose_keras_backend

    try:
        descr = load_description(pkg.opened.rdf_path, perform_io_checks=False)
    except Exception as e:  # the raw rdf stays: rules that read the YAML still run
        logger.debug("bioimageio.spec failed", exc_info=True)
        pkg.spec_error = f"bioimageio.spec could not load {pkg.opened.rdf_path.name} ({type(e).__name__}: {e})"
        return
    choose_keras_backend(descr)
    if isinstance(descr, InvalidDescr):
        pkg.invalid = descr
    elif descr.type != "model":
        pkg.other_resource = descr
    else:
        pkg.descr = descr


def run_rule(pkg: PackageUnderTest, rule_id: str) -> list[Finding]:
    """The findings of one registered rule on a loaded package; a crash of the check becomes a skipped finding."""
    rule_, check = RULES[rule_id], CHECKS[rule_id]
    if rule_.needs == "rdf" and pkg.rdf is None:
        return [skipped(rule_, "not run: the rdf could not be read")]
    if rule_.needs == "descr" and pkg.descr is None:
        reason = "is not a model" if pkg.other_resource is not None else "is not a valid description"
        return [skipped(rule_, f"not run: the rdf {reason}")]
    try:
        return _summarised(rule_, list(check(pkg)))
    except Exception as e:  # a check's own bug must not hide the other findings
        logger.debug("check %s crashed", rule_id, exc_info=True)
        return [
            skipped(
                rule_,
                f"not judged: zoo's check crashed ({type(e).__name__}: {e}); please report this",
                internal_error=f"{type(e).__name__}: {e}",
            )
        ]


MAX_FINDINGS_PER_RULE = 20  # one package declaring 1000 outputs must not make a report of 8,000 findings


def _summarised(rule_, findings: list[Finding]) -> list[Finding]:
    """At most MAX_FINDINGS_PER_RULE findings of a rule, then one that counts the rest, with their status (the
    worst of them) and locations, so that the verdict and the counts stay true."""
    if len(findings) <= MAX_FINDINGS_PER_RULE:
        return findings
    kept, rest = findings[: MAX_FINDINGS_PER_RULE - 1], findings[MAX_FINDINGS_PER_RULE - 1 :]
    order = ("failed", "warning", "skipped", "passed")
    worst = min((f.status for f in rest), key=order.index)
    statuses = {status: n for status in order if (n := sum(f.status == status for f in rest))}
    counted = ", ".join(f"{n} {status}" for status, n in statuses.items())
    locations = [f.location for f in rest if f.location]
    shown = ", ".join(locations[:5]) + (", …" if len(locations) > 5 else "")
    message = f"and {len(rest)} more findings of this rule ({counted}){f': {shown}' if shown else ''}"
    details = {"more": len(rest), "statuses": statuses, "locations": locations[:100]}
    summary = Finding(rule_, worst, message, "", details)
    return [*kept, summary]


__all__ = ["RULES", "ValidationReport", "load_package", "run_rule", "validate_source"]
