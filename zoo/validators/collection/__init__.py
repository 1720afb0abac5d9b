"""Validate a whole collection of packages: found in a folder (or listed in a text file), each validated on
its own, sequentially or on Dask workers, skipped when unchanged since the last run, and reported as
`summary.json`, `summary.md`, `junit.xml` (one testsuite per package), one HTML report per package and an
`index.html` dashboard.

One package never stops the others: a package that cannot be opened, or whose validation crashes, is a
failed entry with its message. The model runs of each package happen in a child process bounded in time
and memory, exactly as in `zoo validate`. With Dask, workers must see the same paths as this process (a
shared file system): they read the packages and write produced outputs into the cache folder.

A package's status is its report's `verdict(target)`: passed, failed or not verified; the collection's is the
worst of them (failed, then not verified) with the same exit codes as `zoo validate` (0, 1, 3).

The modules, each one concern: `discovery` finds the packages, `cache` keeps reports under content keys,
`run` plans and validates, `render` writes the outputs; `result` holds the entry and result types.
"""

from __future__ import annotations

from zoo.validators.collection.cache import cache_key, content_hash, rule_set_fingerprint, source_fingerprint
from zoo.validators.collection.discovery import find_packages
from zoo.validators.collection.result import CollectionResult, PackageEntry, ValidationOptions
from zoo.validators.collection.run import validate_collection

__all__ = [
    "CollectionResult",
    "PackageEntry",
    "ValidationOptions",
    "cache_key",
    "content_hash",
    "find_packages",
    "rule_set_fingerprint",
    "source_fingerprint",
    "validate_collection",
]
