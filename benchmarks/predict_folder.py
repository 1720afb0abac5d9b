"""Files per second: `zoo predict` on a folder of small TIFFs vs the reference (`bioimageio predict`) called once per
file (issue 7: "Folder of 200 256×256 TIFFs: files per second vs calling the reference once per file").

The folder: --n synthetic nuclei images of --size² float32 TIFFs (200 of 256² by default), made here. The package:
--package, or the demo U-Net architecture (16 base channels, depth 3) trained for one quick epoch, ONNX weights.
Measured, ONNX on the CPU for both:
- zoo CLI: one `zoo predict FOLDER` run (interpreter start-up, model load, every file read, predicted, written);
- zoo in-process: `zoo.api.predict` on the same folder (model load included, interpreter start-up not);
- reference per file: `bioimageio predict` once per file on the first --reference-files files (each call starts
  Python, loads the model, predicts one image); its files/s over the whole folder is EXTRAPOLATED from them, since
  every call costs about the same (6-12 s here, depending on the load);
- reference, one call: the same subset in a single `bioimageio predict` call, for context (its start-up paid once).
zoo's outputs are compared with the reference's on the subset. Wall times on a shared machine depend on other
work; CPU seconds (user + system of the processes) are printed beside them.

    python benchmarks/predict_folder.py [--n 200] [--size 256] [--reference-files 10] [--package DIR]
                                        [--batch-size N] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent


def build_package(work: Path) -> Path:
    """The demo U-Net's architecture, trained for one quick epoch (its weights do not matter for speed)."""
    from zoo import api
    from zoo.config import DataConfig, TrainConfig

    folder = work / "package"
    if (folder / "rdf.yaml").exists():
        return folder
    config = TrainConfig(
        data=DataConfig(n_images=16, image_size=96),
        epochs=1,
        batch_size=4,
        patch_size=96,
        device="cpu",
        out=work / "training",
    )
    packaged = api.package(api.train(config).checkpoint, work / "zip", formats="onnx")
    with zipfile.ZipFile(packaged.zip_path) as archive:
        archive.extractall(folder)
    return folder


def build_folder(work: Path, n: int, size: int) -> Path:
    import tifffile

    from zoo.data.synthetic import make_nuclei_image

    folder = work / f"images_{n}x{size}"
    if folder.is_dir() and len(list(folder.glob("*.tif"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        tifffile.imwrite(folder / f"nuclei_{i:04d}.tif", make_nuclei_image(rng, (size, size))[0].astype(np.float32))
    return folder


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a command; its output goes to a log file, shown if it fails."""
    cpu = children_cpu()
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: progress bars would fill a pipe and block
        started = time.perf_counter()
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        wall = time.perf_counter() - started
        if code != 0:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-3000:])
            raise SystemExit(f"{command[0]} exited with {code}")
    return wall, children_cpu() - cpu


def zoo_in_process(package: Path, folder: Path, out: Path, batch_size: int | None) -> tuple[float, float, object]:
    from zoo import api

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    result = api.predict(package, [folder], out, weights="onnx", device="cpu", batch_size=batch_size)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if result.failed:
        raise SystemExit(f"zoo failed on {len(result.failed)} files: {result.failed[0].error}")
    return wall, usage.ru_utime + usage.ru_stime - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images in the folder")
    parser.add_argument("--size", type=int, default=256, help="side of each image")
    parser.add_argument(
        "--reference-files",
        type=int,
        default=10,
        help="files the reference is called on, one call each; the rest is extrapolated",
    )
    parser.add_argument("--package", type=Path, default=None, help="a package folder with ONNX weights")
    parser.add_argument("--batch-size", type=int, default=None, help="zoo --batch-size (default: zoo's choice)")
    parser.add_argument("--work", type=Path, default=None, help="keep package, images and outputs here")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="zoo-predict-folder-"))
    work.mkdir(parents=True, exist_ok=True)
    package = args.package or build_package(work)
    folder = build_folder(work, args.n, args.size)
    files = sorted(folder.glob("*.tif"))
    subset = files[: max(1, min(args.reference_files, len(files)))]
    rdf = package / "rdf.yaml" if package.is_dir() else package
    print(
        f"{len(files)} files of {args.size}x{args.size} in {folder}; package {package}; "
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the start"
    )

    zoo_command = [
        str(BIN / "zoo"),
        "predict",
        str(package),
        str(folder),
        "--out",
        str(work / "zoo-cli"),
        "--weights",
        "onnx",
        "--device",
        "cpu",
    ]
    if args.batch_size:
        zoo_command += ["--batch-size", str(args.batch_size)]
    zoo_wall, zoo_cpu = run(zoo_command)
    api_wall, api_cpu, result = zoo_in_process(package, folder, work / "zoo-api", args.batch_size)
    print(f"zoo plan per file: {result.items[0].plan}")

    per_file: list[float] = []
    reference_cpu = 0.0
    scratch = work / "reference-cwd"  # the reference writes files into its working folder
    scratch.mkdir(exist_ok=True)
    for path in subset:
        wall, cpu = run(
            [
                str(BIN / "bioimageio"),
                "predict",
                str(rdf),
                "--inputs",
                str(path),
                "--outputs",
                str(work / "reference" / "{output_id}" / path.name),
                "--weight-format",
                "onnx",
                "--overwrite",
            ],
            cwd=scratch,
        )
        per_file.append(wall)
        reference_cpu += cpu
    one_call_wall, one_call_cpu = run(
        [
            str(BIN / "bioimageio"),
            "predict",
            str(rdf),
            "--inputs",
            json.dumps([str(p) for p in subset]),
            "--outputs",
            str(work / "reference-one-call" / "{output_id}" / "{sample_id}.tif"),
            "--weight-format",
            "onnx",
            "--overwrite",
        ],
        cwd=scratch,
    )

    import tifffile

    output_id = next(iter(result.items[0].outputs))
    differences = []
    for path in subset:
        ours = tifffile.imread(work / "zoo-cli" / f"{path.stem}_{output_id}.tif")
        theirs = np.squeeze(tifffile.imread(work / "reference" / output_id / path.name))
        differences.append(float(np.abs(ours - theirs).max()))

    n = len(files)
    mean_file = float(np.mean(per_file))
    rates = {
        "zoo CLI": n / zoo_wall,
        "zoo in-process": n / api_wall,
        "reference per file (extrapolated)": 1 / mean_file,
        "reference one call (subset)": len(subset) / one_call_wall,
    }
    cpu_per_file = {
        "zoo CLI": zoo_cpu / n,
        "zoo in-process": api_cpu / n,
        "reference per file (extrapolated)": reference_cpu / len(subset),
        "reference one call (subset)": one_call_cpu / len(subset),
    }
    print(f"load average {os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores (other work skews wall times)")
    print(f"zoo CLI:          {n} files in {zoo_wall:.1f} s wall, {zoo_cpu:.1f} s CPU")
    print(f"zoo in-process:   {n} files in {api_wall:.1f} s wall, {api_cpu:.1f} s CPU")
    print(
        f"reference:        {len(subset)} calls of one file: {mean_file:.2f} s each on average "
        f"(min {min(per_file):.2f}, max {max(per_file):.2f}), {reference_cpu / len(subset):.2f} s CPU each; "
        f"{n} files would take {n * mean_file:.0f} s (extrapolated from {len(subset)} calls)"
    )
    print(f"reference, one call over the {len(subset)} files: {one_call_wall:.1f} s wall, {one_call_cpu:.1f} s CPU")
    for name, rate in rates.items():
        print(f"{name:>36}: {rate:6.2f} files/s, {cpu_per_file[name]:.3f} s CPU per file")
    ratio = rates["zoo CLI"] / rates["reference per file (extrapolated)"]
    print(
        f"zoo CLI vs reference once per file: {ratio:.1f}x the files per second (reference extrapolated from "
        f"{len(subset)} of {n} files)"
    )
    print(
        f"zoo vs reference outputs on the {len(subset)} files: max |Δ| {max(differences):.2e} (both pad the "
        "image by the halo; the reference computes the per-sample statistics of its pre-processing over the padded "
        "image, zoo over the image itself, as it does for tiles)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "files": n,
                    "size": args.size,
                    "reference_files": len(subset),
                    "files_per_s": rates,
                    "cpu_s_per_file": cpu_per_file,
                    "ratio_cli_vs_reference_per_file": ratio,
                    "reference_seconds_per_file": per_file,
                    "max_abs_difference": max(differences),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
