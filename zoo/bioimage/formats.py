"""The one table of weight formats: the runtime that executes each, whether loading it runs code shipped in
the package (so it needs --trust), the names older rdfs and users give it, and the order in which a device
prefers them. Every stage reads it from here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightFormat:
    name: str  # the rdf's key (format 0.5)
    runtime: str | None  # the Python package that runs it (None: nothing here does)
    runs_package_code: bool  # loading it executes code from the package (architecture source, pickles, lambdas)
    aliases: tuple[str, ...] = ()  # other names: older rdfs (0.3's pytorch_script) and the CLI's short forms


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    f.name: f
    for f in (
        WeightFormat("onnx", "onnxruntime", False),
        WeightFormat("torchscript", "torch", False, ("pytorch_script",)),
        WeightFormat("pytorch_state_dict", "torch", True, ("state_dict",)),
        WeightFormat("tensorflow_saved_model_bundle", "tensorflow", False, ("tensorflow",)),
        WeightFormat("keras_v3", "keras", True, ("keras",)),
        WeightFormat("keras_hdf5", "tensorflow", True),
        WeightFormat("tensorflow_js", None, False),
    )
}
# fastest first: onnxruntime is the quickest CPU runtime here, TorchScript the natural one on a GPU
PREFERENCE: dict[str, tuple[str, ...]] = {
    "cpu": ("onnx", "torchscript", "tensorflow_saved_model_bundle", "pytorch_state_dict", "keras_v3", "keras_hdf5"),
    "cuda": ("torchscript", "onnx", "pytorch_state_dict", "tensorflow_saved_model_bundle", "keras_v3", "keras_hdf5"),
}
CODE_EXECUTING_FORMATS = tuple(f.name for f in WEIGHT_FORMATS.values() if f.runs_package_code)
RUNTIMES = {f.name: f.runtime for f in WEIGHT_FORMATS.values() if f.runtime}
ALIASES = {alias: f.name for f in WEIGHT_FORMATS.values() for alias in f.aliases}


def canonical(name: str) -> str:
    """The rdf key for `name` (an alias of an older format version or the CLI), else `name` unchanged."""
    return ALIASES.get(name, name)


__all__ = ["ALIASES", "CODE_EXECUTING_FORMATS", "PREFERENCE", "RUNTIMES", "WEIGHT_FORMATS", "WeightFormat", "canonical"]
