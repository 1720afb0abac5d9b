"""Fine-tuning under a domain shift, on synthetic data with exact ground truth.

1. The default `unet2d` demo model (what `zoo demo` trains: 240 synthetic 128×128 images, 40 epochs) is trained and
   packaged (or an earlier such package is reused: --base).
2. A target domain it was not trained on (zoo.data.shifted: larger, dimmer nuclei, fewer per image, a brighter uneven
   background, more blur and read noise; --shift moderate or severe) gives training folders in the `--data` layout
   (--target-images, one run per count) and one independent test set.
3. On the target test set, measured through the packages as users run them (`zoo.api.predict`): the base model; the
   base model fine-tuned with `zoo finetune`'s default budget, from its TorchScript (no --trust: batch normalisation
   stays as traced) and from its state dict (--trust: the statistics adapt); and the same `unet2d` trained from
   scratch on the same folder with the same budget (the same number of optimiser steps on batches of the same size
   and crop size, and early stopping after the same number of steps without a better validation loss). Also the
   base model on its own domain (an independent source-domain test set).

Targets: fine-tuning recovers at least 90 % of the IoU the base model has on its own domain, and beats from-scratch.

4. The third-party package `unet2d_nuclei_broad` (fixed 512×512 input, TorchScript and ONNX, sigmoid in its
   post-processing) fine-tuned from each of its formats on a small folder of the target domain (eight 512×512
   images, --broad-epochs), to show that packages zoo did not make work.

    python benchmarks/finetune_domain_shift.py [--out runs/finetune-bench] [--target-images 16,40] [--base ZIP]
        [--shift moderate|severe]
        [--threads 1]

Prints one line per model and the machine's load; writes nothing outside --out."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

BROAD = Path(__file__).resolve().parents[2] / "shared" / "real-models" / "unet2d_nuclei_broad"


def iou_of_package(package: Path, folder: Path, out: Path) -> float:
    """IoU pooled over the images of `folder` (images/ + masks/), the package run by `zoo.api.predict`."""
    import tifffile

    from zoo import api

    shutil.rmtree(out, ignore_errors=True)
    result = api.predict(package, [str(folder / "images")], out, progress=False)
    predicted, truth = [], []
    for item in result.items:
        name = next(iter(item.inputs.values())).stem
        predicted.append(tifffile.imread(next(iter(item.outputs.values()))).ravel() > 0.5)
        truth.append(tifffile.imread(folder / "masks" / f"{name}.tif").ravel() > 0)
    p, t = np.concatenate(predicted), np.concatenate(truth)
    return float(np.logical_and(p, t).sum() / max(np.logical_or(p, t).sum(), 1))


def from_scratch(train: Path, steps: int, patience_steps: int, batch_size: int, patch: int, out: Path):
    """`zoo train --trainer unet2d --data train` for `steps` optimiser steps, with early stopping after as many steps
    without a better validation loss as the fine-tuning allows (its epochs are ceil(train split / batch) steps),
    packaged; returns (package, epochs, seconds of training)."""
    from zoo import api
    from zoo.config import DataConfig
    from zoo.trainers.datasets import split_indices

    n_train = len(split_indices(len(list((train / "images").glob("*.tif"))), DataConfig())[0])
    per_epoch = math.ceil(n_train / batch_size)
    epochs, patience = math.ceil(steps / per_epoch), math.ceil(patience_steps / per_epoch)
    config = api.training_config(
        "unet2d", data=train, epochs=epochs, batch_size=batch_size, patch_size=patch, early_stopping_patience=patience,
        out=out / "training",
    )  # fmt: skip
    started = time.perf_counter()
    run = api.train(config, overwrite=True)
    seconds = time.perf_counter() - started
    package = api.package(run.checkpoint, out, formats="pytorch_state_dict,torchscript", overwrite=True).zip_path
    return package, epochs, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/finetune-bench"))
    parser.add_argument("--base", type=Path, default=None, help="reuse this package of the default unet2d")
    parser.add_argument("--target-images", default="16,40", help="images in the target training folder(s)")
    parser.add_argument("--test-images", type=int, default=30, help="images in each independent test set")
    parser.add_argument("--size", type=int, default=128, help="side of the target images")
    parser.add_argument("--shift", choices=("moderate", "severe"), default="moderate", help="zoo.data.shifted.SHIFTS")
    parser.add_argument("--epochs", type=int, default=None, help="a budget other than zoo finetune's default")
    parser.add_argument("--broad-epochs", type=int, default=3)
    parser.add_argument("--skip-broad", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: on a busy machine, more threads are much slower)"
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import torch

    torch.set_num_threads(args.threads)
    from zoo import api
    from zoo.data.shifted import SHIFTS, make_shifted_nuclei, write_image_mask_folder
    from zoo.data.synthetic import make_nuclei
    from zoo.finetune import FinetuneConfig
    from zoo.trainers import default_config

    out, shape, loads = args.out, (args.size, args.size), [os.getloadavg()[0]]
    budget = FinetuneConfig(**({"epochs": args.epochs} if args.epochs else {}))
    print(
        f"zoo finetune's default budget: {budget.epochs} epochs, batch {budget.batch_size}, crops {budget.patch_size}"
    )
    started = time.perf_counter()
    base = args.base
    if base is None:
        base_run = api.train(default_config("unet2d", out=out / "base" / "training"), overwrite=True)
        base = api.package(base_run.checkpoint, out / "base", overwrite=True).zip_path
        print(f"base model trained and packaged in {time.perf_counter() - started:.0f} s")
    loads.append(os.getloadavg()[0])

    source_test = write_image_mask_folder(out / "source-test", *make_nuclei(args.test_images, shape, seed=1001))
    target_test = write_image_mask_folder(
        out / "target-test", *make_shifted_nuclei(args.test_images, shape, seed=3003, shift=SHIFTS[args.shift])
    )
    base_own = iou_of_package(base, source_test, out / "pred" / "base-source")
    base_target = iou_of_package(base, target_test, out / "pred" / "base-target")
    print(f"{'base, its own domain (source test set)':<58} IoU {base_own:.3f}")
    print(f"{'base, target test set':<58} IoU {base_target:.3f}")
    for n in [int(k) for k in args.target_images.split(",")]:
        train = write_image_mask_folder(
            out / f"target-train-{n}", *make_shifted_nuclei(n, shape, seed=2002, shift=SHIFTS[args.shift])
        )
        tuned = {}
        for route, trust in (("torchscript", False), ("pytorch_state_dict", True)):
            started = time.perf_counter()
            result = api.finetune(
                base, train, out / f"tuned-{n}-{route}", epochs=budget.epochs, trust=trust, overwrite=True,
                progress=False,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            predictions = out / "pred" / f"tuned-{n}-{route}"
            iou = iou_of_package(result.zip_path, target_test, predictions) if result.kept else float("nan")
            tuned[route] = (result, iou)
            label = f"{n} images: fine-tuned from {route} ({'--trust' if trust else 'no --trust'})"
            print(
                f"{label:<58} IoU {iou:.3f}  {iou / base_own:.1%} of base on its own domain; {len(result.history)} "
                f"epochs × {result.steps_per_epoch} steps, {seconds:.0f} s with export + validation; normalisation "
                f"{result.normalisation}; {result.verdict}"
            )
            loads.append(os.getloadavg()[0])
        result = tuned["torchscript"][0]
        steps = budget.epochs * result.steps_per_epoch
        patience = budget.early_stopping_patience * result.steps_per_epoch
        package, epochs, seconds = from_scratch(
            train, steps, patience, result.batch_size, min(budget.patch_size, args.size), out / f"scratch-{n}"
        )
        scratch = iou_of_package(package, target_test, out / "pred" / f"scratch-{n}")
        label = f"{n} images: from scratch, same budget ({steps} steps)"
        print(f"{label:<58} IoU {scratch:.3f}  {epochs} epochs asked, training {seconds:.0f} s")
        best = max(iou for _, iou in tuned.values())
        print(
            f"{n} images: best fine-tuned {best:.3f} = {best / base_own:.1%} of the base on its own domain "
            f"(target ≥ 90 %: {'met' if best >= 0.9 * base_own else 'NOT met'}); fine-tuned − scratch "
            f"{best - scratch:+.3f} ({'beats' if best > scratch else 'does NOT beat'} from scratch)"
        )
        loads.append(os.getloadavg()[0])
    if not args.skip_broad and BROAD.is_dir():
        broad_data = write_image_mask_folder(
            out / "broad-data", *make_shifted_nuclei(8, (512, 512), seed=4004, shift=SHIFTS[args.shift])
        )
        for weights in ("torchscript", "onnx"):
            started = time.perf_counter()
            result = api.finetune(
                BROAD, broad_data, out / f"broad-{weights}", weights=weights, epochs=args.broad_epochs,
                overwrite=True, progress=False,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            lineage = result.lineage
            shipped = ", ".join(w.weight_format for w in lineage.exported.weights) if lineage else "-"
            report = lineage.report if lineage else None
            print(
                f"unet2d_nuclei_broad from {weights}: IoU {result.before['IoU']:.3f} → {result.after['IoU']:.3f} "
                f"({len(result.history)} epochs × {result.steps_per_epoch} steps, {seconds:.0f} s in all), new "
                f"package: {shipped}; validation {report.status if report else '-'}, deepImageJ "
                f"{report.deepimagej_verdict if report else '-'}"
            )
        loads.append(os.getloadavg()[0])
    print(f"machine load (1-min average) during the run: {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
