from __future__ import annotations

from pathlib import Path

from zoo.packaging.exporters import WEIGHT_FILES, ExportContext, ExportedWeights


def export_keras_v3(model, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """The native weights: Keras 3's `.keras` file (graph and weights; loads in safe mode, no code)."""
    import keras

    path = workdir / WEIGHT_FILES["keras_v3"]
    model.save(path)
    backend = keras.backend.backend()
    backend_version = __import__({"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}[backend]).__version__
    return ExportedWeights(
        "keras_v3",
        path,
        "keras",
        keras.__version__,
        details={"backend": backend, "backend_version": backend_version.split("+")[0]},
    )
