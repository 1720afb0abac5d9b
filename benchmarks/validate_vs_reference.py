"""Wall time of `zoo validate` against the reference `bioimageio test`, side by side on the same package.

    python benchmarks/validate_vs_reference.py [PACKAGE ...] [--repeat N] [--format-04] [--tensorflow-04]

Default packages: ../shared/real-models/unet2d_nuclei_broad/rdf.yaml (format 0.5, TorchScript + ONNX) and a
format 0.4.10 description of the same model, written into a temporary folder next to copies of its files
(`--format-04` alone runs only that one; `--tensorflow-04` adds ../shared/real-world's
tiktorch_dummy_tensorflow, format 0.4.3 with a TF SavedModel). Prints each run and the ratio zoo / reference
(below 1 means zoo is faster). Both are run as fresh processes, imports included, one after the other in pairs,
so that load from other work on the machine hits both alike; the median of the pairs' ratios is printed beside
the ratio of the medians. On a machine shared with other work the wall times swing with its load; the CPU
seconds (user + system, the process and its children) do much less, and are printed too, with the load average
before and after."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
NUCLEI_BROAD = SHARED / "real-models" / "unet2d_nuclei_broad"
TENSORFLOW_04 = SHARED / "real-world" / "packages" / "tiktorch_dummy_tensorflow" / "rdf.yaml"
FORMAT_04_FILES = ("README.md", "cover0.png", "test_input.npy", "test_output.npy", "weights.pt", "weights.onnx")


def write_format_04(folder: Path) -> Path:
    """unet2d_nuclei_broad described in format 0.4.10, its files copied beside it. The input shape is fixed at
    512×512 as in the 0.5 rdf: its ONNX file takes no other size. The rdf is written as text: it is a fixture of
    the older format, not something zoo makes."""
    import hashlib

    for name in FORMAT_04_FILES:
        shutil.copyfile(NUCLEI_BROAD / name, folder / name)
    sha = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("weights.pt", "weights.onnx")}
    rdf = folder / "rdf.yaml"
    rdf.write_text(
        f"""format_version: 0.4.10
type: model
name: UNet 2D Nuclei Broad
description: A 2d U-Net trained on the nuclei broad dataset.
authors:
- name: Constantin Pape;@bioimage-io
  affiliation: EMBL Heidelberg
cite:
- text: 'Ronneberger, Olaf et al. U-net: Convolutional networks for biomedical image segmentation. MICCAI 2015.'
  doi: 10.1007/978-3-319-24574-4_28
covers: [cover0.png]
documentation: README.md
license: MIT
tags: [unet2d, pytorch, nucleus, segmentation, dsb2018]
timestamp: '2019-12-11T11:22:32+00:00'
inputs:
- name: raw
  description: raw input
  axes: bcyx
  data_type: float32
  data_range: [-.inf, .inf]
  shape: [1, 1, 512, 512]
  preprocessing:
  - name: zero_mean_unit_variance
    kwargs: {{mode: per_sample, axes: xy}}
outputs:
- name: probability
  description: probability in [0,1]
  axes: bcyx
  data_type: float32
  data_range: [0.0, 1.0]
  halo: [0, 0, 32, 32]
  shape:
    reference_tensor: raw
    scale: [1.0, 1.0, 1.0, 1.0]
    offset: [0.0, 0.0, 0.0, 0.0]
  postprocessing:
  - name: sigmoid
test_inputs: [test_input.npy]
test_outputs: [test_output.npy]
weights:
  torchscript:
    source: weights.pt
    sha256: {sha["weights.pt"]}
    pytorch_version: '2.5.1'
  onnx:
    source: weights.onnx
    sha256: {sha["weights.onnx"]}
    opset_version: 20
""",
        encoding="utf-8",
    )
    return rdf


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, int, float]:
    """(wall seconds, exit code, CPU seconds of the command and everything it started)."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    return time.perf_counter() - started, result.returncode, _children_cpu_s() - cpu_before


def compare(package: Path, zoo: str, reference: str, repeat: int) -> None:
    zoo_times, reference_times, zoo_cpu, reference_cpu = [], [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(repeat):  # interleaved, so that machine load hits both alike
        seconds, zoo_rc, cpu = timed([zoo, "validate", str(package)])
        zoo_times.append(seconds)
        zoo_cpu.append(cpu)
        seconds, reference_rc, cpu = timed([reference, "test", str(package)])
        reference_times.append(seconds)
        reference_cpu.append(cpu)
        print(
            f"  run {len(zoo_times)}: zoo {zoo_times[-1]:.2f} s ({zoo_cpu[-1]:.1f} s CPU), reference "
            f"{seconds:.2f} s ({cpu:.1f} s CPU), ratio {zoo_times[-1] / seconds:.2f}",
            flush=True,
        )
    zoo_median, reference_median = statistics.median(zoo_times), statistics.median(reference_times)
    pair_ratio = statistics.median(z / r for z, r in zip(zoo_times, reference_times))
    cpu_ratio = statistics.median(zoo_cpu) / statistics.median(reference_cpu)
    print(f"{package}")
    print(f"  zoo validate     {zoo_median:6.2f} s (median of {repeat}, exit {zoo_rc})")
    print(f"  bioimageio test  {reference_median:6.2f} s (median of {repeat}, exit {reference_rc})")
    print(
        f"  ratio zoo/reference: {zoo_median / reference_median:.2f} (median of the pairs' ratios {pair_ratio:.2f};"
        f" CPU seconds {statistics.median(zoo_cpu):.1f} / {statistics.median(reference_cpu):.1f} = {cpu_ratio:.2f};"
        f" load {load_before:.1f} -> {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("packages", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format-04", action="store_true", help="only the format 0.4 nuclei_broad (with PACKAGEs)")
    parser.add_argument("--tensorflow-04", action="store_true", help="also tiktorch_dummy_tensorflow (format 0.4.3)")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    zoo, reference = shutil.which("zoo", path=str(bin_dir)), shutil.which("bioimageio", path=str(bin_dir))
    if not zoo or not reference:
        sys.exit(f"zoo and bioimageio must be installed next to {sys.executable}")
    with tempfile.TemporaryDirectory(prefix="zoo-bench-04-") as folder:
        packages = list(args.packages)
        if not packages and not args.format_04:
            packages.append(NUCLEI_BROAD / "rdf.yaml")
        if args.format_04 or not args.packages:
            packages.append(write_format_04(Path(folder)))
        if args.tensorflow_04:
            packages.append(TENSORFLOW_04)
        for package in packages:
            compare(package, zoo, reference, args.repeat)


if __name__ == "__main__":
    main()
