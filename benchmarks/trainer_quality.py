"""Quality of every trainer with its default settings on its held-out synthetic test split, against the targets
of issue 6, and the wall time of each run (target: under 15 minutes on 2 CPU cores).

    python benchmarks/trainer_quality.py [--trainers unet2d,care2d] [--out runs/quality] [--json quality.json]

Each trainer runs `zoo.api.train` with `zoo.trainers.default_config(name)` (what `zoo train --trainer NAME` and
`zoo demo --trainer NAME` use). Prints one line per trainer and writes the numbers as JSON."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

# trainer -> (metric, target, how the metric must compare)
TARGETS = {
    "unet2d": ("test_iou", 0.85),
    "unet2d-keras": ("test_iou", 0.85),
    "unet2d-multiclass": ("test_mean_iou", 0.75),
    "care2d": ("test_psnr_gain", 6.0),
    "n2v2d": ("test_psnr_gain", 3.0),
    "classifier2d": ("test_accuracy", 0.95),
    "unet3d": ("test_iou", 0.8),
}
TIME_LIMIT_S = 15 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trainers", default=",".join(TARGETS))
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    parser.add_argument("--json", type=Path, default=None, help="append results here (one JSON object per line)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

    from zoo import api
    from zoo.trainers import default_config

    print(
        f"{'trainer':<18} {'metric':<16} {'value':>8} {'target':>8} {'ok':>4} {'epochs':>6} {'wall s':>7} "
        f"{'< 15 min':>8} {'load':>5}"
    )
    for name in [t.strip() for t in args.trainers.split(",") if t.strip()]:
        metric, target = TARGETS[name]
        config = default_config(name, device=args.device, out=args.out / name)
        started = time.perf_counter()
        result = api.train(config)
        wall = time.perf_counter() - started
        value = float(result.metrics[metric])
        load = os.getloadavg()[0]
        row = {
            "trainer": name,
            "metric": metric,
            "value": value,
            "target": target,
            "passed": value >= target,
            "epochs_run": result.epochs_run,
            "epochs": config.epochs,
            "wall_s": round(wall, 1),
            "within_time": wall < TIME_LIMIT_S,
            "load_1min": round(load, 1),
            "device": result.device,
            "metrics": {k: float(v) for k, v in result.metrics.items()},
        }
        print(
            f"{name:<18} {metric:<16} {value:>8.3f} {target:>8.3g} {'yes' if row['passed'] else 'NO':>4} "
            f"{result.epochs_run:>6} {wall:>7.0f} {'yes' if row['within_time'] else 'NO':>8} {load:>5.1f}",
            flush=True,
        )
        if args.json:
            with args.json.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
