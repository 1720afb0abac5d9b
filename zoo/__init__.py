"""zoo: train, export, package, validate and run microscopy models for bioimage.io and Fiji.

In a notebook or script::

    import zoo
    run = zoo.train(trainer="unet2d", data="my_images/", epochs=30)
    packaged = zoo.package(run.checkpoint, "packages/", name="my nuclei", license="CC-BY-4.0")
    report = zoo.validate(packaged.zip_path)
    report.write("report.html")
    mask = zoo.predict(packaged.zip_path, image)  # a numpy array in, a numpy array out

The functions are those of zoo.api, imported on first use (`import zoo` loads no framework)."""

import os

from zoo.version import __version__ as __version__

API = (
    "train",
    "export",
    "package",
    "validate",
    "validate_collection",
    "predict",
    "info",
    "demo",
    "fix_deepimagej",
    "convert",
    "finetune",
)


def quiet_frameworks() -> None:
    """Silence TensorFlow's C++ log lines (they reach notebooks and terminals); set before TF is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # quiet, and deterministic TF numerics


quiet_frameworks()


def __getattr__(name: str):
    if name in API:
        from zoo import api

        return getattr(api, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
