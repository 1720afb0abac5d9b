"""The result cache of a collection run: a package's report is kept under a key made of the package's
content hash, the options and a fingerprint of everything else that decides a verdict (the rules, zoo's
source, the versions of the runtimes), so a cached verdict is never stale."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

from zoo.validators.collection.result import ValidationOptions
from zoo.validators.report import ValidationReport

logger = logging.getLogger(__name__)

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
    import zoo.validators.checks  # noqa: F401  (registers the rules)
    from zoo.validators.registry import RULES

    digest = hashlib.sha256()
    for rule_ in sorted(RULES.values(), key=lambda r: r.id):
        digest.update(f"rule\0{rule_.id}\0{rule_.severity}\0{rule_.target}\0{rule_.stage}\0{rule_.needs}\0".encode())
    digest.update(source_fingerprint(Path(__file__).resolve().parents[2]).encode())
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
