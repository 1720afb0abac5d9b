"""`zoo package SOURCE --sample IMAGE` on a 2D U-Net that zoo did not train, from each kind of source: a TorchScript
file, an ONNX file, a Python architecture with its state dict, and a Keras file. Prints, per source, the time to probe
the model (axes, valid sizes, batch, output relation, halo), the time to export every format and prove each copy, the
time to validate the package, the total, and what was found and shipped. Target: under a minute each on 2 CPU cores.

The U-Net (4 poolings, 16 features at the top, bilinear up-sampling or transposed convolutions, sigmoid output) is
written here, as a user's own script would be; its weights are random but fixed (seed 0): timings do not depend on
training.

    python benchmarks/bring_your_own_model.py [--size 256] [--keep DIR]"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ARCHITECTURE = """
import torch
from torch import nn


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    def __init__(self, depth=4, width=16):
        super().__init__()
        widths = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList([block(1, widths[0])] + [block(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth))
        self.decode = nn.ModuleList(block(2 * widths[i], widths[i]) for i in range(depth))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x):
        skips = [self.down[0](x)]
        for block_ in self.down[1:]:
            skips.append(block_(nn.functional.max_pool2d(skips[-1], 2)))
        x = skips.pop()
        for level in reversed(range(len(self.up))):
            x = self.decode[level](torch.cat([self.up[level](x), skips.pop()], dim=1))
        return torch.sigmoid(self.head(x))
"""


def write_sources(folder: Path) -> dict[str, dict]:
    """Each source kind of the same U-Net (Keras: the same layout, its own random weights)."""
    import importlib.util

    import torch

    architecture = folder / "unet_arch.py"
    architecture.write_text(ARCHITECTURE)
    spec = importlib.util.spec_from_file_location("unet_arch", architecture)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.UNet().eval()
    example = torch.randn(1, 1, 64, 64)
    torch.jit.trace(model, example).save(str(folder / "unet.pt"))
    dynamic = {0: "batch", 2: "y", 3: "x"}
    torch.onnx.export(
        model,
        (example,),
        str(folder / "unet.onnx"),
        dynamo=False,
        opset_version=17,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": dynamic, "y": dynamic},
    )
    torch.save(model.state_dict(), folder / "unet_state_dict.pt")
    keras_file = write_keras_unet(folder / "unet.keras")
    return {
        "torchscript": {"source": folder / "unet.pt"},
        "onnx": {"source": folder / "unet.onnx"},
        "python + state dict": {
            "source": f"{architecture}:UNet",
            "weights": folder / "unet_state_dict.pt",
            "trust": True,
        },
        "keras": {"source": keras_file},
    }


def write_keras_unet(path: Path, depth: int = 4, width: int = 16) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    x, skips = inputs, []
    for level in range(depth + 1):
        for _ in range(2):
            x = keras.layers.Conv2D(width * 2**level, 3, padding="same", activation="relu")(x)
        if level < depth:
            skips.append(x)
            x = keras.layers.MaxPooling2D()(x)
    for level in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(width * 2**level, 2, strides=2)(x)
        x = keras.layers.Concatenate()([x, skips.pop()])
        for _ in range(2):
            x = keras.layers.Conv2D(width * 2**level, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    keras.Model(inputs, outputs).save(path)
    return path


def write_sample(path: Path, size: int) -> Path:
    """Bright blobs on a dim, noisy background: a fluorescence-like image the U-Net takes."""
    import tifffile

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    image = rng.normal(100, 10, (size, size))
    for cy, cx in rng.uniform(0, size, (size // 16, 2)):
        image += 400 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40)
    tifffile.imwrite(path, image.clip(0, 65535).astype(np.uint16))
    return path


class Timed:
    """A progress sink that records when each stage (probing, exporting, validating) starts and ends."""

    def __init__(self):
        self.marks: dict[str, list[float]] = {}
        self.stage = None

    def start(self, description: str, total: int | None = None, **_) -> None:
        self.stage = description.split()[0]
        self.marks.setdefault(self.stage, [time.perf_counter(), time.perf_counter()])

    def advance(self, steps: int = 1, **_) -> None:
        if self.stage:
            self.marks[self.stage][1] = time.perf_counter()

    def finish(self, **_) -> None:
        self.advance(0)

    def seconds(self, stage: str) -> float:
        start, end = self.marks.get(stage, (0.0, 0.0))
        return end - start

    def __getattr__(self, name):  # any other Progress method: nothing to record
        return lambda *args, **kwargs: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="side of the square sample image in pixels")
    parser.add_argument("--keep", type=Path, help="keep the sources and packages in this folder")
    args = parser.parse_args()

    from zoo import api

    work = Path(tempfile.mkdtemp(prefix="zoo-byom-"))
    try:
        sources = write_sources(work)
        sample = write_sample(work / "sample.tif", args.size)
        rows = []
        for kind, options in sources.items():
            timed = Timed()
            start = time.perf_counter()
            options = dict(options)
            result = api.package(
                options.pop("source"),
                work / "packages" / kind.replace(" ", "-").replace("+", "and"),
                sample=sample,
                preprocessing="zero_mean_unit_variance",
                progress=timed,
                name=f"benchmark unet {kind}",
                target="bioimageio",
                **options,
            )
            total = time.perf_counter() - start
            probe = result.probe
            rows.append(
                (
                    kind,
                    timed.seconds("probing"),
                    timed.seconds("exporting"),
                    timed.seconds("validating"),
                    total,
                    f"{probe.sizes_text}, halo {probe.halo}",
                    ",".join(
                        w.weight_format.replace("tensorflow_saved_model_bundle", "tf") for w in result.exported.weights
                    ),
                    result.report.status,
                    result.report.deepimagej_verdict,
                )
            )
            print(f"{kind}: {total:.1f} s", flush=True)
        header = ("source", "probe s", "export+proof s", "validate s", "total s", "found", "shipped", "zoo", "Fiji")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            cells = [row[0], *(f"{v:.1f}" for v in row[1:5]), *row[5:]]
            print("| " + " | ".join(cells) + " |")
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
