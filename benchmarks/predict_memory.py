"""Peak memory of `zoo predict` on a Zarr image far larger than its memory budget.

A SIZE×SIZE float32 OME-Zarr (16384² = 1 GiB by default) through a small U-Net package (the quick trainer
config) with the default 2 GB budget: peak RSS of the whole process, sampled every 50 ms, against the
issue's target of 2 GB; tiles per second for the record. The image is written chunk by chunk, so this script
itself stays small too.

    python benchmarks/predict_memory.py [--size 16384] [--work DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
CHUNK = 1024


def build_package(work: Path) -> Path:
    from zoo import api
    from zoo.config import TrainConfig

    folder = work / "package"
    if not (folder / "rdf.yaml").exists():
        config = TrainConfig.quick(device="cpu", out=work / "training")
        packaged = api.package(api.train(config).checkpoint, work / "zip", formats="onnx")
        with zipfile.ZipFile(packaged.zip_path) as archive:
            archive.extractall(folder)
    return folder


def build_image(work: Path, size: int) -> Path:
    import zarr

    path = work / f"image_{size}.ome.zarr"
    if path.exists():
        return path
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    array = group.create_array("0", shape=(size, size), chunks=(CHUNK, CHUNK), dtype="float32")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:CHUNK, :CHUNK]
    for top in range(0, size, CHUNK):
        for left in range(0, size, CHUNK):
            block = 40 + rng.normal(0, 5, (CHUNK, CHUNK))
            for cy, cx in rng.uniform(0, CHUNK, (60, 2)):
                block += 150 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 60)
            array[top : top + CHUNK, left : left + CHUNK] = block.astype(np.float32)
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "datasets": [{"path": "0"}],
            "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        }
    ]
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    import psutil

    work = args.work or Path(tempfile.mkdtemp(prefix="zoo-predict-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    package = build_package(work)
    image = build_image(work, args.size)
    out = work / "out"
    log_path = work / "zoo-predict.log"
    with log_path.open("wb") as log:  # a file, not a pipe: a full pipe would block the run
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                str(BIN / "zoo"),
                "predict",
                str(package),
                str(image),
                "--out",
                str(out),
                "--weights",
                "onnx",
                "--device",
                "cpu",
                "--memory-limit",
                "2GB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        watched = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - started
    report = log_path.read_text(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"zoo predict exited with {process.returncode}:\n{report[-3000:]}")
    tiles = next((line for line in report.splitlines() if "tiles in" in line), "").strip()
    print(f"{args.size}x{args.size} float32 Zarr ({args.size**2 * 4 / 2**30:.2f} GiB): {wall:.0f} s wall; {tiles}")
    print(f"peak RSS {peak / 2**30:.2f} GiB (target < 2 GiB) with --memory-limit 2GB")


if __name__ == "__main__":
    main()
