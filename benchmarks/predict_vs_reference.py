"""zoo predict vs the reference (`bioimageio predict --blockwise`) vs the compute floor, side by side.

One 4096×4096 single-channel image through the demo U-Net (16 base channels, depth 3) on CPU, ONNX weights for
all three:
- zoo: `zoo predict` (whole CLI run: start-up, model load, statistics, tiles with halo, TIFF written);
- reference: `bioimageio predict --blockwise` as it comes (block parameter n=10: 152-pixel blocks for this model),
  and again with n chosen so that its blocks are as large as zoo's tiles (the same compute as zoo);
- floor: a bare onnxruntime loop over the 16 non-overlapping 1024×1024 tiles of the normalised image, no halo,
  no I/O, no start-up.
Targets (issue 7): zoo ≥ 1.5× the reference's speed, ≥ 0.8× the floor's. zoo's floor ratio is given for its
in-process run (`zoo.api.predict`, model load and file I/O included, interpreter start-up not), since the floor
has no start-up either. Peak RSS of the CLI runs is measured with wait4.

    python benchmarks/predict_vs_reference.py [--size 4096] [--repeats 1] [--work DIR]
"""

from __future__ import annotations

import argparse
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


def build_image(work: Path, size: int) -> Path:
    import tifffile

    from zoo.data.synthetic import make_nuclei_image

    path = work / f"nuclei_{size}.tif"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    side = 512
    rows = [
        np.concatenate([make_nuclei_image(rng, (side, side))[0] for _ in range(size // side)], axis=1)
        for _ in range(size // side)
    ]
    tifffile.imwrite(path, np.concatenate(rows, axis=0).astype(np.float32))
    return path


def cpu_seconds(children: bool = False) -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(command: list[str]) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS in MB, exit code) of a subprocess; RSS sampled every 50 ms."""
    import psutil

    cpu = cpu_seconds(children=True)
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: progress bars would fill a pipe and block
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        watched = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - started
        if process.returncode != 0:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-2000:])
    return wall, cpu_seconds(children=True) - cpu, peak // 2**20, process.returncode


def floor_seconds(package: Path, image_path: Path, tile: int = 1024) -> tuple[float, float]:
    import onnxruntime as ort
    import tifffile

    image = tifffile.imread(image_path).astype(np.float32)
    image = (image - image.mean()) / (image.std() + 1e-6)
    session = ort.InferenceSession(str(package / "weights.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: np.ascontiguousarray(image[None, None, :tile, :tile])})  # warm-up, not timed
    started, cpu = time.perf_counter(), cpu_seconds()
    for y in range(0, image.shape[0], tile):
        for x in range(0, image.shape[1], tile):
            session.run(None, {name: np.ascontiguousarray(image[None, None, y : y + tile, x : x + tile])})
    return time.perf_counter() - started, cpu_seconds() - cpu


def zoo_in_process(package: Path, image_path: Path, out: Path) -> tuple[float, float, object]:
    from zoo import api

    started, cpu = time.perf_counter(), cpu_seconds()
    result = api.predict(package, [image_path], out, weights="onnx", device="cpu")
    return time.perf_counter() - started, cpu_seconds() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each; the fastest counts")
    parser.add_argument("--work", type=Path, default=None, help="keep package, image and outputs here")
    parser.add_argument(
        "--skip-default-reference",
        action="store_true",
        help="skip `--blockwise true` (its small blocks make it the slowest run by far)",
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="zoo-predict-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    package = build_package(work)
    image = build_image(work, args.size)

    from zoo.inference.model import load_model
    from zoo.inference.planning import make_plan

    model = load_model(package, weights="onnx", device="cpu")

    class Shape:
        shape = {"batch": 1, "channel": 1, "y": args.size, "x": args.size}

    plan = make_plan(model, {model.inputs[0].id: Shape()}, "auto", 2 * 1024**3, None, None, [])
    model.close()
    window = plan.axes[0].tile
    sizes = model.geometry.sizes["y"]
    blockwise_n = (window - sizes.min) // sizes.step
    print(
        f"package {package}: input min {sizes.min}, step {sizes.step}, halo {model.geometry.halo['y']}; "
        f"image {args.size}x{args.size}; zoo plan: {plan.describe()}; reference --blockwise {blockwise_n} "
        f"(blocks of {window})"
    )

    names = ("floor", "zoo in-process", "zoo CLI", "reference CLI", "reference, zoo blocks")
    timings: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    rss: dict[str, int] = {}
    for repeat in range(args.repeats):
        seconds, used = floor_seconds(package, image)
        timings["floor"].append(seconds)
        cpu["floor"].append(used)
        seconds, used, result = zoo_in_process(package, image, work / f"zoo-api-{repeat}")
        if result.failed:
            raise SystemExit(f"zoo failed: {result.failed[0].error}")
        timings["zoo in-process"].append(seconds)
        cpu["zoo in-process"].append(used)
        seconds, used, peak, code = run_child(
            [
                str(BIN / "zoo"),
                "predict",
                str(package),
                str(image),
                "--out",
                str(work / f"zoo-cli-{repeat}"),
                "--weights",
                "onnx",
                "--device",
                "cpu",
            ]
        )
        if code != 0:
            raise SystemExit(f"zoo predict exited with {code}")
        timings["zoo CLI"].append(seconds)
        cpu["zoo CLI"].append(used)
        rss["zoo CLI"] = max(rss.get("zoo CLI", 0), peak)
        for name, blocks in (("reference CLI", "true"), ("reference, zoo blocks", str(blockwise_n))):
            if name == "reference CLI" and args.skip_default_reference:
                continue
            out_ref = work / f"reference-{blocks}-{repeat}"
            seconds, used, peak, code = run_child(
                [
                    str(BIN / "bioimageio"),
                    "predict",
                    str(package / "rdf.yaml"),
                    "--inputs",
                    str(image),
                    "--outputs",
                    str(out_ref / "{output_id}.tif"),
                    "--weight-format",
                    "onnx",
                    "--blockwise",
                    blocks,
                    "--overwrite",
                ]
            )
            if code != 0:
                raise SystemExit(f"bioimageio predict exited with {code}")
            timings[name].append(seconds)
            cpu[name].append(used)
            rss[name] = max(rss.get(name, 0), peak)

    best = {k: min(v) for k, v in timings.items() if v}
    least_cpu = {k: min(v) for k, v in cpu.items() if v}
    print(f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work skews wall times)")
    for name, seconds in best.items():
        extra = f", peak RSS {rss[name]} MB" if name in rss else ""
        print(f"{name:>22}: {seconds:7.2f} s wall, {least_cpu[name]:7.2f} s CPU{extra}")
    import tifffile

    ours = tifffile.imread(next((work / "zoo-cli-0").glob("*.tif")))
    theirs = np.squeeze(tifffile.imread(next((work / f"reference-{blockwise_n}-0").glob("*.tif"))))
    print(
        f"zoo vs reference output: max |Δ| {np.abs(ours - theirs).max():.2e} (tiles placed differently; equal "
        "only where the halo covers the receptive field)"
    )
    if "reference CLI" in best:
        print(
            f"speed vs reference (--blockwise, its default blocks): {best['reference CLI'] / best['zoo CLI']:.2f}x"
            "  (target >= 1.5)"
        )
    print(f"speed vs reference with zoo's block size: {best['reference, zoo blocks'] / best['zoo CLI']:.2f}x")
    print(f"speed vs floor:     {best['floor'] / best['zoo in-process']:.2f}x  (target >= 0.8)")
    print(
        f"CPU time, floor / zoo in-process: {least_cpu['floor'] / least_cpu['zoo in-process']:.2f}x; "
        f"reference with zoo's blocks / zoo CLI: {least_cpu['reference, zoo blocks'] / least_cpu['zoo CLI']:.2f}x"
    )


if __name__ == "__main__":
    main()
