"""Export time per weight format for the demo U-Net, PyTorch and Keras (untrained weights are enough for
timing). Prints, per format: seconds to export, seconds to prove agreement, and the max |Δ| found.

    python benchmarks/export_times.py [--depth 3] [--base-channels 16] [--size 160]"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def build(framework: str, kwargs: dict):
    if framework == "keras":
        from zoo.trainers.architectures.unet2d_keras import build_unet2d_keras

        return build_unet2d_keras(**kwargs)
    from zoo.trainers.architectures.unet2d import UNet2d

    return UNet2d(**kwargs).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

    from zoo.packaging.agreement import agreement_inputs
    from zoo.packaging.export import Geometry, prove_agreement
    from zoo.packaging.exporters import EXPORTERS, ExportContext, get_exporter
    from zoo.packaging.source_model import SourceModel
    from zoo.trainers.architectures import architecture_source
    from zoo.trainers.task import Task

    kwargs = dict(in_channels=1, out_channels=1, base_channels=args.base_channels, depth=args.depth)
    geometry = Geometry.for_unet(args.depth)
    print(f"U-Net depth {args.depth}, base channels {args.base_channels}, test input {args.size}x{args.size}")
    for framework, table in EXPORTERS.items():
        source = SourceModel(framework, Task().input_layout(framework), build(framework, kwargs))
        example = source.batch_of_one(
            np.random.default_rng(0).standard_normal((args.size, args.size)).astype(np.float32)
        )
        inputs = agreement_inputs(example, geometry.min_size, geometry.step, source.layout)
        context = ExportContext(architecture_source("unet2d"), "UNet2d", kwargs, "raw", "probability", source.layout)
        print(framework)
        with tempfile.TemporaryDirectory() as tmp:
            for weight_format in table:
                started = time.perf_counter()
                exported = get_exporter(framework, weight_format)(source.model, example, Path(tmp), context)
                exported_at = time.perf_counter()
                agreement = prove_agreement(exported, source.predict, inputs)
                proven_at = time.perf_counter()
                print(
                    f"  {weight_format:30s} export {exported_at - started:6.2f} s   "
                    f"proof {proven_at - exported_at:6.2f} s   max |Δ| {agreement.max_abs:.1e}"
                )


if __name__ == "__main__":
    main()
