"""Tiled against whole-image instance prediction on a large synthetic image (issue 16): every object matched
(IoU ≥ 0.9), none split, none duplicated.

    python benchmarks/stardist_tiling.py PACKAGE [--size 2048] [--tile 512,512] [--seed 1]

PACKAGE is a stardist2d package (`zoo package runs/.../checkpoint.pt --out DIR`, or `zoo demo --trainer stardist2d`).
The whole-image labels are what bioimageio.core computes: the network on the whole (normalised) image, then
`stardist_postprocessing` (the `stardist` package's NMS and polygon rendering). The tiled labels are `zoo predict`'s
(zoo.inference.predict.predict_arrays): tiles widened by twice the halo, objects kept by the tile that owns their
centre, rendered whole."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", type=Path)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--tile", default="512,512", help="tile size, as zoo predict --tile takes it, or auto")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from zoo.bioimage.instances import overlaps
    from zoo.bioimage.star_convex import labels_from_prob_dist
    from zoo.data.instances import make_instances
    from zoo.inference.model import load_model
    from zoo.inference.predict import predict_arrays
    from zoo.trainers.datasets import normalize_image

    model = load_model(args.package, device="cpu")
    (output_id, params), *_ = model.instance_outputs.items()
    image = make_instances(1, (args.size, args.size), seed=args.seed)[0][0]

    started = time.perf_counter()
    network = model.run([normalize_image(image)[None, None]])[0][0]  # (y, x, 1 + n_rays)
    whole = labels_from_prob_dist(np.moveaxis(network, -1, 0), params)
    whole_s = time.perf_counter() - started
    del network

    started = time.perf_counter()
    tiled = predict_arrays(model, image[None, None], tile=args.tile)[output_id][0, :, :, 0]
    tiled_s = time.perf_counter() - started

    found = overlaps(whole, tiled)
    pairs, iou = found.matches(0.9)
    split = found.split_true()
    extra = found.n_pred - len(found.matches(0.5)[0])
    halo = max(model.geometry.halo.values()) - model.instance_margin
    print(
        f"{args.size}x{args.size} px, tile {args.tile}, halo {halo} px + context margin {model.instance_margin} px, "
        f"{model.weight_format} on {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"whole image: {found.n_true} objects in {whole_s:.1f} s; tiled: {found.n_pred} objects ({tiled.dtype}) in "
        f"{tiled_s:.1f} s"
    )
    print(
        f"matched at IoU ≥ 0.9: {len(pairs)} of {found.n_true} ({len(pairs) / max(found.n_true, 1):.2%}); "
        f"IoU of the matches ≥ {iou.min() if len(iou) else float('nan'):.3f}; split: {len(split)}; "
        f"duplicated or extra: {extra}; pixels labelled differently (fore/background): "
        f"{int(((whole > 0) != (tiled > 0)).sum())}"
    )
    model.close()


if __name__ == "__main__":
    main()
