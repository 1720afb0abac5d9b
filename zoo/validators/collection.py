"""Validate a whole collection of packages: found in a folder (or listed in a text file), each validated on
its own, sequentially or on Dask workers, skipped when unchanged since the last run, and reported as
`summary.json`, `summary.md`, `junit.xml` (one testsuite per package), one HTML report per package and an
`index.html` dashboard.

One package never stops the others: a package that cannot be opened, or whose validation crashes, is a
failed entry with its message. The model runs of each package happen in a child process bounded in time
and memory, exactly as in `zoo validate`. With Dask, workers must see the same paths as this process (a
shared file system): they read the packages and write produced outputs into the cache folder.

A package's status is its report's `verdict(target)`: passed, failed or not verified; the collection's is the
worst of them (failed, then not verified) with the same exit codes as `zoo validate` (0, 1, 3)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from zoo.bioimage.source import RDF_NAMES
from zoo.errors import InputError, SourceError
from zoo.progress import Progress, SilentProgress
from zoo.validators.report import EXIT_CODES, FAILED, NOT_VERIFIED, PASSED, ValidationReport

logger = logging.getLogger(__name__)

TARGETS = ("bioimageio", "deepimagej")
PACKAGE_STATUSES = (FAILED, NOT_VERIFIED, PASSED)  # worst first: the collection's status is its worst package's
# distributions whose versions change what a model run gives, hence findings: part of the cache key
VERDICT_DISTRIBUTIONS = (
    "bioimageio.spec",
    "bioimageio.core",
    "numpy",
    "torch",
    "onnx",
    "onnxruntime",
    "tensorflow",
    "keras",
)
CACHE_FOLDER = ".cache"
REPORTS_FOLDER = "reports"


@dataclass(frozen=True)
class ValidationOptions:
    """Everything that changes a package's findings; part of the cache key."""

    target: str = "bioimageio"
    trust: bool = False
    device: str = "cpu"
    time_limit_s: float | None = None
    memory_limit_mb: float | None = None


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


@dataclass
class PackageEntry:
    """One line of summary.json."""

    path: str  # as found under the source folder, or as listed in the text file
    source: str  # absolute
    slug: str  # file name stem of its reports
    status: str = FAILED  # passed / failed / not verified: its report's verdict for the target
    reason: str = ""  # why it is not passed (the verdict's reason, or why it could not be validated)
    name: str | None = None
    deepimagej: str | None = None  # deepImageJ's verdict; None when not checked
    deepimagej_rules: list[str] = field(default_factory=list)
    failed_rules: list[str] = field(default_factory=list)
    failures: int = 0  # findings that fail the package for the target (counts["failed"])
    counts: dict[str, int] = field(default_factory=dict)  # the verdict's finding counts (report.count_findings)
    duration_s: float = 0.0
    cache_hit: bool = False
    sha256: str | None = None  # content hash of the package's files
    error: str | None = None  # why the package could not be validated at all
    report: str | None = None  # HTML report, relative to the output folder
    report_json: str | None = None  # JSON report, relative to the output folder

    def to_dict(self) -> dict:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        return data


@dataclass
class CollectionResult:
    source: Path
    out_dir: Path
    entries: list[PackageEntry]
    options: ValidationOptions
    duration_s: float = 0.0

    @property
    def failed(self) -> list[PackageEntry]:
        return [e for e in self.entries if e.status == FAILED]

    @property
    def not_verified(self) -> list[PackageEntry]:
        return [e for e in self.entries if e.status == NOT_VERIFIED]

    @property
    def cache_hits(self) -> int:
        return sum(e.cache_hit for e in self.entries)

    @property
    def counts(self) -> dict[str, int]:
        """Packages per status: the one count the summary, the dashboard and the terminal print."""
        counts = {"packages": len(self.entries), **dict.fromkeys(reversed(PACKAGE_STATUSES), 0)}
        for entry in self.entries:
            counts[entry.status] += 1
        return {**counts, "cache_hits": self.cache_hits}

    def counts_text(self) -> str:
        counts = self.counts
        return (
            f"{counts['packages']} packages: "
            + ", ".join(f"{counts[s]} {s}" for s in reversed(PACKAGE_STATUSES))
            + f"; {counts['cache_hits']} from the cache"
        )

    @property
    def status(self) -> str:
        """The worst status of its packages (passed when there is none)."""
        present = {e.status for e in self.entries}
        return next((s for s in PACKAGE_STATUSES if s in present), PASSED)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def summary_path(self) -> Path:
        return self.out_dir / "summary.json"

    @property
    def junit_path(self) -> Path:
        return self.out_dir / "junit.xml"

    @property
    def index_path(self) -> Path:
        return self.out_dir / "index.html"

    @property
    def markdown_path(self) -> Path:
        return self.out_dir / "summary.md"

    def to_dict(self) -> dict:
        from zoo import __version__

        return {
            "zoo_version": __version__,
            "source": str(self.source),
            "status": self.status,
            "exit_code": self.exit_code,
            "target": self.options.target,
            "trust": self.options.trust,
            "counts": self.counts,
            "duration_s": round(self.duration_s, 3),
            "packages": [e.to_dict() for e in self.entries],
        }


# ---------------------------------------------------------------------------------------------------- discovery


def find_packages(source: Path, exclude: tuple[Path, ...] = ()) -> list[tuple[str, Path]]:
    """(display path, path) of every package: under a folder, searched recursively (a folder holding an rdf is
    one package and is not searched further; zips are packages), or listed one per line in a text file
    (relative to the file's folder; blank lines and `#` comments skipped)."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source} does not exist: give a folder of packages or a text file of paths")
    if source.is_file():
        if source.suffix.lower() in (".zip", ".yaml", ".yml"):
            return [(source.name, source.resolve())]
        return _listed_packages(source)
    excluded = {p.resolve() for p in exclude}
    found: list[tuple[str, Path]] = []
    root = source.resolve()
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in excluded)
        rdfs = [n for n in RDF_NAMES if n in filenames]
        if rdfs:
            found.append((_display(here, root), here))
            dirnames[:] = []
            continue
        yamls = sorted(n for n in filenames if n.endswith(".bioimageio.yaml"))
        if yamls:  # a package folder with several descriptions: each is a package
            found.extend((_display(here / n, root), here / n) for n in yamls)
            dirnames[:] = []
            continue
        found.extend(
            (_display(here / n, root), here / n)
            for n in sorted(filenames)
            if n.lower().endswith(".zip") and not n.startswith(".")
        )
    found.sort(key=lambda item: item[0])
    return found


def _display(path: Path, root: Path) -> str:
    relative = path.relative_to(root).as_posix()
    return root.name if relative == "." else relative


def _listed_packages(list_file: Path) -> list[tuple[str, Path]]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{list_file} cannot be read as a text file of package paths ({e})") from e
    found = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry).expanduser()
        found.append((entry, (path if path.is_absolute() else list_file.parent / path).resolve()))
    return found


def slugs(display_paths: list[str]) -> list[str]:
    """A unique, file-name-safe stem per package."""
    used: set[str] = set()
    out = []
    for display in display_paths:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", display).strip("-.") or "package"
        slug, n = base, 2
        while slug.lower() in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug.lower())
        out.append(slug)
    return out


# ---------------------------------------------------------------------------------------------------- cache


def content_hash(path: Path) -> str:
    """sha256 over the package's files in sorted order (names and contents); a zip is hashed as one file.
    For an rdf yaml that is not a folder's rdf.yaml, its folder's files and its name are hashed."""
    digest = hashlib.sha256()
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        digest.update(f"rdf:{path.name}\0".encode())
        path = path.parent
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
        for file in files:
            digest.update(f"{file.relative_to(path).as_posix()}\0{file.stat().st_size}\0".encode())
            _hash_file(file, digest)
    else:
        _hash_file(path, digest)
    return digest.hexdigest()


def _hash_file(path: Path, digest) -> None:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)


def rule_set_fingerprint() -> str:
    """sha256 of what decides a verdict besides the package and the options: the registered rules (ID,
    severity, target, stage, needs), the source of every module of the installed zoo package (the checks,
    the loaders and runtimes they call, the report's verdict), and the versions of bioimageio.spec/core and
    of the runtimes. Any change to them gives new cache keys: a cached verdict is never stale. zoo's version
    number is not enough: it does not change when a rule does."""
    import zoo
    import zoo.validators.checks  # noqa: F401  (registers the rules)
    from zoo.validators.registry import RULES

    digest = hashlib.sha256()
    for rule_ in sorted(RULES.values(), key=lambda r: r.id):
        digest.update(f"rule\0{rule_.id}\0{rule_.severity}\0{rule_.target}\0{rule_.stage}\0{rule_.needs}\0".encode())
    digest.update(source_fingerprint(Path(zoo.__file__).parent).encode())
    for distribution in VERDICT_DISTRIBUTIONS:
        digest.update(f"version\0{distribution}\0{_version(distribution)}\0".encode())
    return digest.hexdigest()


def source_fingerprint(package_dir: Path) -> str:
    """sha256 over the names and contents of the .py files under `package_dir`, in sorted order."""
    digest = hashlib.sha256()
    files = sorted(package_dir.rglob("*.py"), key=lambda p: p.relative_to(package_dir).as_posix())
    for file in files:
        digest.update(f"{file.relative_to(package_dir).as_posix()}\0".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def cache_key(package_hash: str, options: ValidationOptions, rules: str) -> str:
    """The key of a cached report: the package's content hash, the options and `rule_set_fingerprint()`."""
    material = json.dumps({"package": package_hash, "rules": rules, **asdict(options)}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


class ResultCache:
    """`<cache>/<key>/report.json` (written last, atomically) and `<cache>/<key>/artifacts/`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def artifacts(self, key: str) -> Path:
        return self.folder / key / "artifacts"

    def load(self, key: str) -> ValidationReport | None:
        path = self.folder / key / "report.json"
        if not path.is_file():
            return None
        try:
            report = ValidationReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("ignoring an unreadable cache entry %s", path)
            return None
        if self.artifacts(key).is_dir():
            report.artifacts = str(self.artifacts(key))
        return report

    def store(self, key: str, report: ValidationReport) -> None:
        if not any(f.id == "REP001" and f.status == "failed" for f in report.findings):
            shutil.rmtree(self.artifacts(key), ignore_errors=True)  # images only for failed reproductions
            report.artifacts = None
        report.write_json(self.folder / key / "report.json")


# ---------------------------------------------------------------------------------------------------- running


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
    `run_isolated` kills it when done."""
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
    if target not in TARGETS:
        raise InputError(f"target {target!r}: choose one of {', '.join(TARGETS)}")
    if workers is not None and scheduler:
        raise InputError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: give at least 1")
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
    reports, keys, first_of_key, jobs = plan.reports, plan.keys, plan.first_of_key, plan.jobs
    progress.start("validating packages", len(jobs))
    try:
        paths = {index: entries[index].path for index in jobs}
        if workers is not None or scheduler:
            outcomes = _run_dask(jobs, paths, progress, workers, scheduler)
        else:
            outcomes = _run_sequential(jobs, paths, progress)
    finally:
        progress.finish()
    for index, outcome in outcomes.items():
        if outcome.report is not None:
            outcome.report.duration_s = outcome.duration_s
            reports[index] = outcome.report
            if keys[index] is not None:
                cache.store(keys[index], outcome.report)

    for index, entry in enumerate(entries):
        key = keys[index]
        first = first_of_key.get(key, index) if key is not None else index
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
    result = CollectionResult(Path(source), out_dir, entries, options)
    result.duration_s = time.perf_counter() - started
    _write_outputs(result, reports)
    return result


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


# ---------------------------------------------------------------------------------------------------- outputs


def _write_outputs(result: CollectionResult, reports: dict[int, ValidationReport]) -> None:
    from zoo.validators import writers

    out_dir = result.out_dir
    target = result.options.target
    suites = []
    for index, entry in enumerate(result.entries):
        report = reports.get(index)
        entry.report = f"{REPORTS_FOLDER}/{entry.slug}.html"
        html_path = out_dir / entry.report
        if report is None:
            writers.write_text_atomic(html_path, writers.render_error_html(entry.path, entry.source, entry.error))
            suites.append(writers.error_testsuite(entry.path, entry.source, entry.error or ""))
            continue
        entry.report_json = f"{REPORTS_FOLDER}/{entry.slug}.json"
        report.write_json(out_dir / entry.report_json, target=target)
        writers.write_html(report, html_path, target=target)
        suites.append(writers.junit_testsuite(report, name=entry.path, target=target))
    writers.write_text_atomic(result.junit_path, writers.render_junit(suites, name="zoo validate-collection"))
    writers.write_text_atomic(result.summary_path, json.dumps(result.to_dict(), indent=2) + "\n")
    writers.write_text_atomic(result.markdown_path, render_collection_markdown(result))
    writers.write_text_atomic(result.index_path, render_dashboard(result))


STATUS_ICONS = {PASSED: "✅", FAILED: "❌", NOT_VERIFIED: "⚠️"}


def render_collection_markdown(result: CollectionResult) -> str:
    """The job summary: counts, then one table row per package."""
    from zoo.validators.writers import md_code, md_text

    lines = [
        "# zoo validate-collection",
        "",
        f"**Verdict: {result.status}** ({result.counts_text()}; {result.duration_s:.1f} s)",
        "",
        "| package | status | deepImageJ (Fiji) | failed rules | s |",
        "|---|---|---|---|---|",
    ]
    for entry in result.entries:
        icon = STATUS_ICONS[entry.status]
        rules = ", ".join(entry.failed_rules) or md_text(entry.reason)
        lines.append(
            f"| {md_code(entry.path)} | {icon} {entry.status} | {entry.deepimagej or 'not checked'} | "
            f"{rules} | {entry.duration_s:.1f}{' (cached)' if entry.cache_hit else ''} |"
        )
    return "\n".join(lines) + "\n"


DASHBOARD_CSS = """
.controls{display:flex;gap:14px;align-items:center;flex-wrap:wrap;margin:12px 0}
.controls label{font-weight:600}
th{cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
td.num{text-align:right}
"""

DASHBOARD_SCRIPT = """
(function () {
  var table = document.getElementById("packages"), body = table.tBodies[0], heads = table.tHead.rows[0].cells;
  var status = document.getElementById("status-filter"), rule = document.getElementById("rule-filter");
  var text = document.getElementById("text-filter"), shown = document.getElementById("shown");
  var sorted = null;
  function apply() {
    var n = 0, query = text.value.toLowerCase();
    Array.prototype.forEach.call(body.rows, function (row) {
      var ok = (!status.value || row.dataset.status === status.value) &&
        (!rule.value || row.dataset.rules.split(" ").indexOf(rule.value) >= 0) &&
        (!query || row.textContent.toLowerCase().indexOf(query) >= 0);
      row.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
    remember();
  }
  function value(row, i) {
    var cell = row.cells[i];
    return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  }
  function sortBy(i, ascending) {
    var th = heads[i], numeric = th.dataset.type === "number";
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, i), y = value(b, i);
      var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return ascending ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    sorted = [th.dataset.key, ascending ? "asc" : "desc"];
    remember();
  }
  function remember() {  /* the view in the address: a filtered, sorted dashboard can be linked to */
    var parts = [];
    if (status.value) { parts.push("status=" + encodeURIComponent(status.value)); }
    if (rule.value) { parts.push("rule=" + encodeURIComponent(rule.value)); }
    if (text.value) { parts.push("q=" + encodeURIComponent(text.value)); }
    if (sorted) { parts.push("sort=" + sorted[0], "order=" + sorted[1]); }
    try {
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
    } catch (e) { /* some browsers refuse it for file:// pages; the view still works */ }
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.addEventListener("click", function () { sortBy(i, th.getAttribute("aria-sort") !== "ascending"); });
  });
  status.addEventListener("change", apply);
  rule.addEventListener("change", apply);
  text.addEventListener("input", apply);
  var wanted = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (part) {
    var kv = part.split("=");
    if (kv[0]) { wanted[kv[0]] = decodeURIComponent(kv[1] || ""); }
  });
  if (wanted.status) { status.value = wanted.status; }
  if (wanted.rule) { rule.value = wanted.rule; }
  if (wanted.q) { text.value = wanted.q; }
  Array.prototype.forEach.call(heads, function (th, i) {
    if (th.dataset.key === wanted.sort) { sortBy(i, wanted.order !== "desc"); }
  });
  apply();
  document.body.setAttribute("data-ready", "1");
})();
"""


def render_dashboard(result: CollectionResult) -> str:
    """index.html: a sortable, filterable table of the packages linking to their reports; no external asset."""
    from zoo import __version__
    from zoo.validators.writers import badge, html_page, html_text

    rules = sorted({r for e in result.entries for r in e.failed_rules + e.deepimagej_rules})
    rows = []
    for entry in result.entries:
        entry_rules = sorted(set(entry.failed_rules + entry.deepimagej_rules))
        problems = ", ".join(entry.failed_rules) or entry.reason
        numbers = entry.counts
        rows.append(
            f'<tr data-status="{html_text(entry.status)}" data-rules="{html_text(" ".join(entry_rules))}">'
            f'<td><a href="{html_text(entry.report)}">{html_text(entry.path)}</a></td>'
            f"<td>{html_text(entry.name or '')}</td>"
            f'<td data-sort="{html_text(entry.status)}">{badge(entry.status)}</td>'
            f'<td data-sort="{html_text(entry.deepimagej or "")}">{badge(entry.deepimagej or "not checked")}</td>'
            f"<td>{html_text(problems)}</td>"
            f'<td class="num" data-sort="{entry.failures}">{entry.failures}</td>'
            f'<td class="num" data-sort="{numbers.get("warning", 0)}">{numbers.get("warning", 0)}</td>'
            f'<td class="num" data-sort="{entry.duration_s:.3f}">{entry.duration_s:.1f}</td>'
            f"<td>{'yes' if entry.cache_hit else 'no'}</td></tr>"
        )
    options = "".join(f'<option value="{html_text(r)}">{html_text(r)}</option>' for r in rules)
    statuses = "".join(f'<option value="{html_text(s)}">{html_text(s)}</option>' for s in reversed(PACKAGE_STATUSES))
    body = f"""<header><h1>zoo validate-collection</h1>
<div class="muted mono">{html_text(result.source)}</div>
<p>{badge(result.status, big=True)} {html_text(result.counts_text())}</p>
<div class="meta muted">zoo {html_text(__version__)} · target {html_text(result.options.target)} · trust
{"yes" if result.options.trust else "no"} · {result.duration_s:.1f} s</div></header>
<main><div class="controls">
<label for="status-filter">status</label><select id="status-filter"><option value="">all</option>{statuses}</select>
<label for="rule-filter">rule</label><select id="rule-filter"><option value="">all</option>{options}</select>
<label for="text-filter">search</label><input id="text-filter" type="search" placeholder="package or name">
<span class="muted">showing <span id="shown">{len(result.entries)}</span> of {len(result.entries)}</span></div>
<table id="packages"><thead><tr><th data-key="package">package</th><th data-key="name">name</th>
<th data-key="status">status</th><th data-key="deepimagej">deepImageJ (Fiji)</th><th data-key="rules">failed rules</th>
<th data-key="failed" data-type="number">failed</th><th data-key="warnings" data-type="number">warnings</th>
<th data-key="seconds" data-type="number">seconds</th><th data-key="cached">cached</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p class="muted">Files: <a href="summary.json">summary.json</a> · <a href="junit.xml">junit.xml</a> ·
<a href="summary.md">summary.md</a></p></main>"""
    return html_page("zoo validate-collection", body, DASHBOARD_SCRIPT, DASHBOARD_CSS)


__all__ = ["CollectionResult", "PackageEntry", "find_packages", "validate_collection"]
