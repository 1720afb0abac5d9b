"""Wall time of `zoo validate` against the reference `bioimageio test`, side by side on the same package.

    python benchmarks/validate_vs_reference.py [PACKAGE ...] [--repeat N]

Default package: ../shared/real-models/unet2d_nuclei_broad/rdf.yaml. Prints each run and the ratio
zoo / reference (below 1 means zoo is faster). Both are run as fresh processes, imports included, one after
the other in pairs, so that load from other work on the machine hits both alike; the median of the pairs' ratios
is printed beside the ratio of the medians. On a machine shared with other work the wall times swing with its
load; the CPU seconds (user + system, the process and its children) do much less, and are printed too."""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "real-models" / "unet2d_nuclei_broad" / "rdf.yaml"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, int, float]:
    """(wall seconds, exit code, CPU seconds of the command and everything it started)."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    return time.perf_counter() - started, result.returncode, _children_cpu_s() - cpu_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("packages", nargs="*", type=Path, default=[DEFAULT])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    zoo, reference = shutil.which("zoo", path=str(bin_dir)), shutil.which("bioimageio", path=str(bin_dir))
    if not zoo or not reference:
        sys.exit(f"zoo and bioimageio must be installed next to {sys.executable}")
    for package in args.packages:
        zoo_times, reference_times, zoo_cpu, reference_cpu = [], [], [], []
        for _ in range(args.repeat):  # interleaved, so that machine load hits both alike
            seconds, zoo_rc, cpu = timed([zoo, "validate", str(package)])
            zoo_times.append(seconds)
            zoo_cpu.append(cpu)
            seconds, reference_rc, cpu = timed([reference, "test", str(package)])
            reference_times.append(seconds)
            reference_cpu.append(cpu)
            print(
                f"  run {len(zoo_times)}: zoo {zoo_times[-1]:.2f} s ({zoo_cpu[-1]:.1f} s CPU), reference "
                f"{seconds:.2f} s ({cpu:.1f} s CPU)",
                flush=True,
            )
        zoo_median, reference_median = statistics.median(zoo_times), statistics.median(reference_times)
        pair_ratio = statistics.median(z / r for z, r in zip(zoo_times, reference_times))
        cpu_ratio = statistics.median(zoo_cpu) / statistics.median(reference_cpu)
        print(f"{package}")
        print(f"  zoo validate     {zoo_median:6.2f} s (median of {args.repeat}, exit {zoo_rc})")
        print(f"  bioimageio test  {reference_median:6.2f} s (median of {args.repeat}, exit {reference_rc})")
        print(
            f"  ratio zoo/reference: {zoo_median / reference_median:.2f} (median of the pairs' ratios {pair_ratio:.2f};"
            f" CPU seconds {statistics.median(zoo_cpu):.1f} / {statistics.median(reference_cpu):.1f} = {cpu_ratio:.2f})"
        )


if __name__ == "__main__":
    main()
