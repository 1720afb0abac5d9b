"""`zoo validate-collection` on N packages: sequential against `--workers W` (a Dask LocalCluster), then a
second sequential run that finds every package in the cache. Prints the wall times and the speed-up, and
checks that both first runs give the same summary.

The packages are copies of one quick `zoo package` zip, each with a one-line note added so that their
contents (and cache keys) differ; every package is validated for real, model runs in a child process.

    python benchmarks/collection_speedup.py [--packages 8] [--workers 2] [--keep DIR]"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path


def make_collection(folder: Path, count: int, work: Path) -> None:
    from zoo import api
    from zoo.config import TrainConfig

    trained = api.train(TrainConfig.quick(out=work / "training", device="cpu"))
    package = api.package(trained.checkpoint, work / "package").zip_path
    folder.mkdir(parents=True)
    for i in range(count):
        copy = folder / f"model-{i:02d}.zip"
        shutil.copy(package, copy)
        with zipfile.ZipFile(copy, "a") as archive:
            archive.writestr("collection-note.txt", f"copy {i} for the collection benchmark\n")


def comparable(summary_path: Path) -> list[dict]:
    packages = json.loads(summary_path.read_text())["packages"]
    return [{k: v for k, v in p.items() if k not in ("duration_s", "cache_hit")} for p in packages]


def timed(label: str, **kwargs):
    from zoo import api

    started = time.perf_counter()
    result = api.validate_collection(**kwargs)
    seconds = time.perf_counter() - started
    print(
        f"{label:<28} {seconds:7.1f} s  ({len(result.entries) - len(result.failed)}/{len(result.entries)} passed, "
        f"{result.cache_hits} from the cache)",
        flush=True,
    )
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="Leave the packages and reports here.")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

    with tempfile.TemporaryDirectory(prefix="zoo-collection-bench-") as tmp:
        work = args.keep or Path(tmp)
        packages = work / "packages"
        started = time.perf_counter()
        make_collection(packages, args.packages, work)
        print(f"{args.packages} packages made in {time.perf_counter() - started:.0f} s; {os.cpu_count()} CPU cores")

        sequential, t_sequential = timed("sequential", source=packages, out_dir=work / "sequential", use_cache=False)
        parallel, t_parallel = timed(
            f"--workers {args.workers}",
            source=packages,
            out_dir=work / "parallel",
            workers=args.workers,
            use_cache=False,
        )
        _, t_cached = timed("sequential, second run", source=packages, out_dir=work / "sequential")

        same = comparable(sequential.summary_path) == comparable(parallel.summary_path)
        print(
            f"speed-up with {args.workers} workers: {t_sequential / t_parallel:.2f}x; "
            f"second run with the cache: {t_cached:.1f} s ({t_sequential / max(t_cached, 1e-9):.0f}x faster); "
            f"same summary: {same}"
        )


if __name__ == "__main__":
    main()
