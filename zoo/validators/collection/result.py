"""What a collection run gives: the options that decide the findings, one entry per package (a line of
summary.json) and the collection's result, whose status is the worst of its packages'."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from zoo.validators.report import EXIT_CODES, FAILED, NOT_VERIFIED, PASSED

TARGETS = ("bioimageio", "deepimagej")
PACKAGE_STATUSES = (FAILED, NOT_VERIFIED, PASSED)  # worst first: the collection's status is its worst package's


@dataclass(frozen=True)
class ValidationOptions:
    """Everything that changes a package's findings; part of the cache key."""

    target: str = "bioimageio"
    trust: bool = False
    device: str = "cpu"
    time_limit_s: float | None = None
    memory_limit_mb: float | None = None


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
        from zoo.version import __version__

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
