"""Shared fixtures: one tiny trained model and one package built from it per session, plus factories
that copy and break that package. No network, tiny synthetic data."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_MODELS = SHARED / "real-models"


def tiny_train_config(out: Path, **overrides):
    from zoo.config import DataConfig, TrainConfig

    values = dict(
        data=DataConfig(n_images=10, image_size=80),
        epochs=1,
        batch_size=2,
        patch_size=48,
        base_channels=4,
        depth=2,
        device="cpu",
        out=out,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A U-Net trained for one epoch on ten 48×48 synthetic images."""
    from zoo import api

    out = tmp_path_factory.mktemp("tiny-train")
    return api.train(tiny_train_config(out)).checkpoint


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory, tiny_checkpoint) -> Path:
    """The zip `zoo package` makes of the tiny checkpoint (validated while it was built)."""
    from zoo import api

    return api.package(tiny_checkpoint, tmp_path_factory.mktemp("tiny-package")).zip_path


@pytest.fixture(scope="session")
def tiny_keras_package(tmp_path_factory) -> Path:
    """The zip `zoo package` makes of a Keras U-Net trained for one epoch."""
    from zoo import api

    checkpoint = api.train(tiny_train_config(tmp_path_factory.mktemp("tiny-keras"), trainer="unet2d-keras")).checkpoint
    return api.package(checkpoint, tmp_path_factory.mktemp("tiny-keras-package")).zip_path


@pytest.fixture
def package_folder(tiny_package, tmp_path):
    """A fresh unzipped copy of the tiny package, to be edited by a test."""

    def make() -> Path:
        folder = tmp_path / f"package-{len(list(tmp_path.iterdir()))}"
        with zipfile.ZipFile(tiny_package) as archive:
            archive.extractall(folder)
        return folder

    return make


def load_rdf(folder: Path) -> dict:
    from ruyaml import YAML

    return YAML(typ="safe").load((folder / "rdf.yaml").read_text())


def save_rdf(folder: Path, rdf: dict) -> None:
    from ruyaml import YAML

    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with (folder / "rdf.yaml").open("w") as f:
        yaml.dump(rdf, f)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rehash(folder: Path, file_name: str) -> None:
    """Update every sha256 in the rdf that belongs to `file_name` (a deliberate, consistent edit)."""
    rdf = load_rdf(folder)
    digest = sha256(folder / file_name)

    def walk(node):
        if isinstance(node, dict):
            if node.get("source") == file_name and "sha256" in node:
                node["sha256"] = digest
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(rdf)
    save_rdf(folder, rdf)


def zip_folder(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return zip_path


def copy_real_model(name: str, tmp_path: Path) -> Path:
    if not (REAL_MODELS / name).is_dir():
        pytest.skip(f"../shared/real-models/{name} is not present (a user's clone)")
    target = tmp_path / name
    shutil.copytree(REAL_MODELS / name, target)
    return target


HANGING_ARCHITECTURE = """

def _hanging_init(self, *args, **kwargs):  # leaves a temporary folder, then hangs until it is killed
    import tempfile
    import time

    tempfile.mkdtemp(prefix="zoo-probe-")
    time.sleep(600)


UNet2d.__init__ = _hanging_init
"""


def hanging_package(package_folder) -> Path:
    """A package whose pytorch_state_dict architecture makes a temporary folder, then hangs when built."""
    folder = package_folder()
    with (folder / "unet2d.py").open("a") as f:
        f.write(HANGING_ARCHITECTURE)
    rehash(folder, "unet2d.py")
    return folder


@contextmanager
def one_torch_thread():
    """Torch on one thread, for tests that run tiny models many times: on cores that other work shares, more
    threads only contend."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
