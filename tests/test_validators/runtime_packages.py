"""Small TorchScript packages made in the tests, for the runtime rules (SIZ, DET, TIL, OUT, GPU, PRF): models that
are fine, and models with one deliberate flaw each (randomness at inference, a division by the image's spread,
batch entries that leak into each other, a global mean), in 2D, 3D and as a classifier. No pre/post-processing,
so the test output is the module's output on the test input. Packages come from the one builder, tests.packages."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from tests.conftest import load_rdf, save_rdf
from tests.packages import image_axes, output_axes, write_package  # noqa: F401 (the one package builder)


def _torch():
    import torch

    return torch


def conv_stack(layers: int = 3, dims: int = 2, channels: int = 1, seed: int = 0):
    """`layers` 3×3(×3) convolutions with zero padding: the output depends on `layers` pixels around each pixel."""
    torch = _torch()
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d
    modules = []
    for i in range(layers):
        modules.append(conv(channels if i == 0 else 4, 4 if i < layers - 1 else 1, 3, padding=1))
        if i < layers - 1:
            modules.append(torch.nn.Tanh())
    return torch.nn.Sequential(*modules).eval()


def dropout_model():
    """Randomness left on at inference: F.dropout with training=True survives model.eval()."""
    torch = _torch()

    class Dropout(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = conv_stack(2)

        def forward(self, x):
            return torch.nn.functional.dropout(self.body(x), 0.5, training=True)

    return Dropout().eval()


def spread_normalising_model():
    """Scales the image by its own min and max inside the model: 0/0, NaN, on a constant image."""
    torch = _torch()

    class Normalise(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = conv_stack(1)

        def forward(self, x):
            return self.body((x - x.amin()) / (x.amax() - x.amin()))

    return Normalise().eval()


def batch_seam_model():
    """Stacks the batch along y before a convolution: entries see each other across the seam."""
    torch = _torch()

    class Seam(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv_stack(1)

        def forward(self, x):
            b, c, h, w = x.shape
            tall = x.permute(1, 0, 2, 3).reshape(1, c, b * h, w)
            y = self.conv(tall)
            return y.reshape(y.shape[1], b, h, w).permute(1, 0, 2, 3)

    return Seam().eval()


def global_mean_model():
    """Subtracts the mean over the whole output: every pixel depends on the whole input."""
    torch = _torch()

    class GlobalMean(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = conv_stack(1)

        def forward(self, x):
            y = self.body(x)
            return y - y.mean()

    return GlobalMean().eval()


def classifier_model(classes: int = 3):
    torch = _torch()
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, classes),
        torch.nn.Softmax(dim=1),
    ).eval()


def blob_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Smooth blobs on a gradient: content a model can tell apart from noise."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape[2:]], indexing="ij")
    image = sum(grids) + 0.3 * rng.standard_normal(shape[2:])
    return np.broadcast_to(image, shape).astype(np.float32).copy()


def only_weights(folder: Path, keep: str) -> Path:
    """Drop every weight format but `keep` from an unzipped package (faster runs, fewer frameworks)."""
    rdf = load_rdf(folder)
    entry = dict(rdf["weights"][keep])
    entry.pop("parent", None)
    rdf["weights"] = {keep: entry}
    save_rdf(folder, rdf)
    return folder


def unzip(archive: Path, folder: Path) -> Path:
    with zipfile.ZipFile(archive) as z:
        z.extractall(folder)
    return folder


def run_rules(folder: Path, rule_ids: tuple[str, ...], **options) -> dict[str, list]:
    """The findings of some rules on a package, in this process, sharing one PackageUnderTest as validate does."""
    import zoo.validators.checks  # noqa: F401
    from zoo.bioimage.source import open_source
    from zoo.validators import load_package, run_rule
    from zoo.validators.context import PackageUnderTest

    with open_source(folder) as opened:
        pkg = PackageUnderTest(opened, **options)
        load_package(pkg)
        assert pkg.descr is not None, pkg.invalid
        try:
            return {rule_id: run_rule(pkg, rule_id) for rule_id in rule_ids}
        finally:
            pkg.close()


def statuses(findings: list) -> set[str]:
    return {f.status for f in findings}
