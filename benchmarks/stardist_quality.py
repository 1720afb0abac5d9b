"""Instance segmentation quality of the default `stardist2d` trainer, against the targets of issue 16, beside the
`stardist` package's own StarDist2D trained on the same data, and a sanity figure on a real image.

    python benchmarks/stardist_quality.py [--out runs/stardist-quality] [--epochs N] [--no-reference] [--json F]

1. zoo: `zoo.api.train` with `zoo.trainers.default_config("stardist2d")` (what `zoo train --trainer stardist2d`
   runs): AP at IoU 0.5 and 0.75 on the held-out synthetic test split (targets ≥ 0.90 and ≥ 0.7), wall time
   (target: under 15 minutes on 2 CPU cores), thresholds chosen on the validation split.
2. Real image: the `stardist` package's shipped DSB 2018 nuclei image with its mask
   (`stardist.data.test_image_nuclei_2d(return_mask=True)`), segmented by both models: F1 and AP at IoU 0.5, as it
   is and at half size (its nuclei are larger than most synthetic ones: scale against appearance).
3. Reference: `stardist.models.StarDist2D` (TensorFlow) on the same train/validation/test split, with the same
   network size (U-Net depth and base filters), rays, grid, patch, batch, steps per epoch, epochs and the same
   augmentation (random 90° rotations, flips, intensity gain/offset); its thresholds optimised on the same
   validation split by its own `optimize_thresholds`. Both are scored by zoo.bioimage.instances on the test split.

Prints a table; `--json` appends the numbers as one JSON object."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

TARGETS = {"ap_50": 0.90, "ap_75": 0.7}
TIME_LIMIT_S = 15 * 60


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: comparable across runs on a machine others share."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def zoo_run(out: Path, overrides: dict, checkpoint: Path | None) -> dict:
    """Train with the default settings, or take a finished run of them (`checkpoint`: its recorded wall time)."""
    from zoo import api
    from zoo.trainers import default_config
    from zoo.trainers.checkpoint import load_checkpoint

    config = default_config("stardist2d", out=out, device="cpu", **overrides)
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint)
        ignored = ("out", "device", "resume")
        recorded = {k: v for k, v in loaded.config.items() if k not in ignored}
        wanted = {k: v for k, v in config.model_dump(mode="json").items() if k not in ignored}
        if recorded != wanted:
            changed = sorted(k for k in wanted if recorded.get(k) != wanted[k])
            raise SystemExit(f"{checkpoint} was not trained with the default settings (differs in {changed})")
        wall = float(loaded.environment["duration_s"])
        return {
            "config": config,
            "checkpoint": checkpoint,
            "wall_s": wall,
            "cpu_s": None,
            "epochs_run": len(loaded.history),
        }
    started, cpu = time.perf_counter(), cpu_seconds()
    result = api.train(config, overwrite=True)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return {
        "config": config,
        "checkpoint": result.checkpoint,
        "wall_s": wall,
        "cpu_s": cpu,
        "epochs_run": result.epochs_run,
    }


def zoo_labels(checkpoint_path: Path, images: list[np.ndarray]) -> list[np.ndarray]:
    """Labels of the checkpoint's model on raw images: the package's pre-processing, network, post-processing."""
    import torch

    from zoo.bioimage.star_convex import StarConvexParams, labels_from_prob_dist
    from zoo.trainers.checkpoint import load_checkpoint
    from zoo.trainers.datasets import normalize_image

    checkpoint = load_checkpoint(checkpoint_path)
    model = checkpoint.build_model()
    params = StarConvexParams.from_kwargs(checkpoint.task["extra"]["stardist"])
    step = 2 ** int(checkpoint.architecture_kwargs["depth"])
    labels = []
    for image in images:
        height, width = image.shape
        padded = np.pad(image, ((0, -height % step), (0, -width % step)), mode="reflect")
        with torch.no_grad():
            output = model(torch.from_numpy(normalize_image(padded)[None, None])).numpy()[0]
        labels.append(labels_from_prob_dist(np.moveaxis(output, -1, 0), params)[:height, :width])
    return labels


def scores(truths, predictions) -> dict:
    from zoo.bioimage.instances import instance_scores

    found = instance_scores(zip(truths, predictions))
    return {
        "ap_50": found.at(0.5).average_precision,
        "ap_75": found.at(0.75).average_precision,
        "ap_90": found.at(0.9).average_precision,
        "f1_50": found.at(0.5).f1,
        "panoptic_quality": found.at(0.5).panoptic_quality,
        "objects_true": found.n_true,
        "objects_found": found.n_pred,
    }


def real_image(segment) -> dict:
    """Scores of `segment` (raw float image -> labels) on the DSB 2018 image, as it is and at half size: its nuclei
    (median area 440 px², radius about 12) are larger than most synthetic ones (mean radius 5-12), so the half-size
    row tells a difference of scale from one of appearance. Labels found at half size are scaled back up."""
    from skimage.transform import resize
    from stardist.data import test_image_nuclei_2d

    image, mask = test_image_nuclei_2d(return_mask=True)
    image = np.asarray(image, np.float32)
    half = resize(image, (image.shape[0] // 2, image.shape[1] // 2), order=1, anti_aliasing=True)
    labels_half = resize(segment(half), image.shape, order=0, preserve_range=True, anti_aliasing=False)
    return {"as_is": scores([mask], [segment(image)]), "half_size": scores([mask], [labels_half.astype(np.int32)])}


def reference_run(config, splits, out: Path) -> dict:
    """StarDist2D on the same split, settings and augmentation; its own threshold optimisation."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from stardist.models import Config2D, StarDist2D

    from zoo.trainers.datasets import normalize_image
    from zoo.trainers.stardist2d import N_RAYS

    rng = np.random.default_rng(config.seed)

    def augment(x, y):
        k = int(rng.integers(4))
        x, y = np.rot90(x, k), np.rot90(y, k)
        if rng.random() < 0.5:
            x, y = x[:, ::-1], y[:, ::-1]
        return x * rng.uniform(0.8, 1.2) + rng.uniform(-0.2, 0.2), y

    steps = max(1, -(-len(splits.train_images) // config.batch_size))
    reference_config = Config2D(
        n_rays=N_RAYS,
        grid=(1, 1),
        n_channel_in=1,
        unet_n_depth=config.depth,
        unet_n_filter_base=config.base_channels,
        train_patch_size=(config.patch_size, config.patch_size),
        train_batch_size=config.batch_size,
        train_epochs=config.epochs,
        train_steps_per_epoch=steps,
        train_learning_rate=config.lr,
        train_tensorboard=False,
    )
    shutil.rmtree(out / "reference", ignore_errors=True)
    model = StarDist2D(reference_config, name="reference", basedir=str(out))
    started, cpu = time.perf_counter(), cpu_seconds()
    model.train(
        splits.train_images,
        [np.asarray(m, np.int32) for m in splits.train_masks],
        validation_data=(splits.val_images, [np.asarray(m, np.int32) for m in splits.val_masks]),
        augmenter=augment,
    )
    train_s, train_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    model.optimize_thresholds(splits.val_images, [np.asarray(m, np.int32) for m in splits.val_masks])
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    predictions = [model.predict_instances(x, show_tile_progress=False)[0] for x in splits.test_images]
    real = real_image(lambda raw: model.predict_instances(normalize_image(raw), show_tile_progress=False)[0])
    return {
        "real_image_dsb2018": real,
        "train_s": train_s,
        "train_cpu_s": train_cpu,
        "wall_s": wall,
        "cpu_s": cpu,
        "thresholds": dict(model.thresholds._asdict()),
        **scores(splits.test_masks, predictions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/stardist-quality"))
    parser.add_argument("--epochs", type=int, default=None, help="for both networks [default: the trainer's]")
    parser.add_argument("--no-reference", action="store_true", help="skip the stardist package's own StarDist2D")
    parser.add_argument("--json", type=Path, default=None, help="append the results here (one JSON object)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="score this run of the default settings")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from zoo.trainers.checkpoint import load_checkpoint
    from zoo.trainers.stardist2d import StarDist2dTrainer

    overrides = {"epochs": args.epochs} if args.epochs else {}
    load_before = os.getloadavg()[0]
    run = zoo_run(args.out / "zoo", overrides, args.checkpoint)
    config = run["config"]
    splits = StarDist2dTrainer().load_splits(config)  # the split the run trained and was tested on (seeded)
    ours = scores(splits.test_masks, zoo_labels(run["checkpoint"], splits.test_raw))
    recorded = load_checkpoint(run["checkpoint"]).metrics
    row = {
        "zoo": {
            **ours,
            "wall_s": run["wall_s"],
            "cpu_s": run["cpu_s"],
            "epochs_run": run["epochs_run"],
            "recorded_ap_50": recorded["test_ap_50"],
        },
        "real_image_dsb2018": real_image(lambda raw: zoo_labels(run["checkpoint"], [raw])[0]),
        "settings": {
            k: getattr(config, k) for k in ("epochs", "batch_size", "patch_size", "lr", "base_channels", "depth")
        },
        "load_before": load_before,
    }
    if not args.no_reference:
        row["stardist_package"] = reference_run(config, splits, args.out)
    row["load_after"] = os.getloadavg()[0]

    print(
        f"{'model':<26} {'AP@0.5':>7} {'AP@0.75':>8} {'AP@0.9':>7} {'F1@0.5':>7} {'PQ':>6} {'objects':>11} "
        f"{'wall s':>7} {'CPU s':>7}"
    )
    reference = row.get("stardist_package", {})
    for name, r in (
        ("zoo stardist2d", row["zoo"]),
        ("stardist StarDist2D", reference),
        ("zoo, DSB 2018 image", row["real_image_dsb2018"]["as_is"]),
        ("  at half size", row["real_image_dsb2018"]["half_size"]),
        ("StarDist2D, DSB 2018 image", reference.get("real_image_dsb2018", {}).get("as_is")),
        ("  at half size", reference.get("real_image_dsb2018", {}).get("half_size")),
    ):
        if not r:
            continue
        objects = f"{r['objects_found']}/{r['objects_true']}"
        wall, cpu = (f"{r[k]:.0f}" if r.get(k) is not None else "-" for k in ("wall_s", "cpu_s"))
        print(
            f"{name:<26} {r['ap_50']:>7.3f} {r['ap_75']:>8.3f} {r['ap_90']:>7.3f} {r['f1_50']:>7.3f} "
            f"{r['panoptic_quality']:>6.3f} {objects:>11} {wall:>7} {cpu:>7}"
        )
    zoo = row["zoo"]
    met = all(zoo[k] >= v for k, v in TARGETS.items())
    print(
        f"targets AP@0.5 ≥ {TARGETS['ap_50']}, AP@0.75 ≥ {TARGETS['ap_75']}: {'met' if met else 'NOT met'}; "
        f"wall {zoo['wall_s'] / 60:.1f} min ({'under' if zoo['wall_s'] < TIME_LIMIT_S else 'over'} 15 min), "
        f"{zoo['epochs_run']} epochs, load {load_before:.1f} → {row['load_after']:.1f} on {os.cpu_count()} cores"
    )
    if args.json:
        with args.json.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")


if __name__ == "__main__":
    main()
