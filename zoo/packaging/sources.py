"""Open a model someone else made: a TorchScript file, an ONNX file, a Keras `.keras`/`.h5` file, or a Python
architecture `FILE.py:ClassName` with a state dict. What the file is comes from its content, not its name; code
runs only with `trust` (a Python architecture, a Keras file with Lambda layers or custom objects), and that is
refused before any work."""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.bioimage.files import sha256_of
from zoo.errors import InputError
from zoo.packaging.source_model import SourceModel
from zoo.trainers.task import Task

logger = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
SOURCE_KINDS = ("checkpoint", "torchscript", "onnx", "keras", "python")


@dataclass
class ModelSource:
    """A loaded model and what its file says about it."""

    kind: str  # one of SOURCE_KINDS
    path: Path  # the model file (the weights for a Python architecture)
    sha256: str
    framework: str  # the exporter table: "pytorch", "torchscript", "onnx", "keras"
    source_format: str  # the weight format the file is: "torchscript", "onnx", "keras_v3", "pytorch_state_dict", ...
    model: Any
    channels_last: bool = False  # Keras models take channels last; an ONNX graph says which
    declared_shape: tuple[int | None, ...] | None = None  # the input shape the file declares (None: dynamic axis)
    architecture: tuple[Path, str, dict[str, Any]] | None = None  # (file.py, ClassName, kwargs) for state dicts
    notes: list[str] = field(default_factory=list)

    def source_model(self, layout: str, task: Task, output_layout: str | None = None) -> SourceModel:
        return SourceModel(self.framework, layout, self.model, task, outputs=output_layout)

    def describe(self) -> str:
        what = {
            "torchscript": "TorchScript file",
            "onnx": "ONNX file",
            "keras": "Keras file",
            "python": "PyTorch state dict with its Python architecture",
            "checkpoint": "zoo checkpoint",
        }[self.kind]
        return f"{what} {self.path.name} (sha256 {self.sha256[:12]}…)"


def is_zoo_checkpoint(path: Path) -> bool:
    """A torch archive that holds zoo's checkpoint fields (read without unpickling: the names in the archive)."""
    return _torch_archive_kind(path) == "checkpoint"


def open_model_source(
    source: str | Path, *, weights: Path | None = None, kwargs: dict[str, Any] | None = None, trust: bool = False
) -> ModelSource:
    """Load `source` (see the module) or raise one InputError line saying what to give instead."""
    text = str(source)
    architecture = _split_architecture(text)
    if architecture is not None:
        return _open_python(*architecture, weights=weights, kwargs=kwargs or {}, trust=trust)
    path = Path(text)
    if not path.exists():
        raise InputError(f"{path} does not exist: give a TorchScript, ONNX or Keras file, or FILE.py:ClassName")
    if path.is_dir() or path.name.endswith(("rdf.yaml", "bioimageio.yaml")):
        raise InputError(
            f"{path} is a bioimage.io package, not a model file: use `zoo convert {path} --formats ...` to add "
            "weight formats to it"
        )
    if weights is not None or kwargs:
        raise InputError("--weights and --kwargs go with a Python architecture SOURCE (FILE.py:ClassName)")
    if path.suffix.lower() == ".onnx":  # ONNX files have no magic bytes: the suffix decides
        return _open_onnx(path, trust)
    if path.suffix.lower() in KERAS_SUFFIXES:
        return _open_keras(path, trust)
    kind = _torch_archive_kind(path)
    if kind == "torchscript":
        return _open_torchscript(path, trust)
    if kind == "state_dict":
        raise InputError(
            f"{path} holds PyTorch weights without their architecture: give the class that builds the network as "
            f"SOURCE (FILE.py:ClassName) and this file as --weights"
        )
    if kind == "checkpoint":
        raise InputError(f"{path} is a zoo checkpoint: package it with `zoo package {path}` (no --sample needed)")
    raise InputError(
        f"{path} is not a model file zoo reads: give a TorchScript (.pt), ONNX (.onnx) or Keras (.keras, .h5) file, "
        "or FILE.py:ClassName with --weights"
    )


def _split_architecture(text: str) -> tuple[Path, str] | None:
    """`net.py:UNet` → (net.py, "UNet"); anything else → None."""
    head, sep, name = text.rpartition(":")
    if not sep or not head.endswith(".py"):
        return None
    if not name.isidentifier():
        raise InputError(f"{text}: {name!r} is not a Python class name; write FILE.py:ClassName")
    return Path(head), name


def _torch_archive_kind(path: Path) -> str | None:
    """ "torchscript", "checkpoint", "state_dict" or None, from the names inside a torch zip archive."""
    if not path.is_file() or not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names):
                return "torchscript"
            data = next((n for n in names if n.endswith("/data.pkl")), None)
            if data is None:
                return None
            pickled = archive.read(data)
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return "checkpoint" if b"checkpoint_version" in pickled else "state_dict"


def _refuse_acting_ops(weight_format: str, path: Path, trust: bool) -> None:
    from zoo.bioimage.weight_scan import UnreadableWeights, acting_ops

    try:
        found = acting_ops(weight_format, path)
    except UnreadableWeights as e:
        raise InputError(f"{path} cannot be read as {weight_format}: {e}") from e
    if found and not trust:
        raise InputError(
            f"{path} contains operations that reach outside the model ({found[0]}); pass --trust only if you trust "
            "its author"
        )


def _open_torchscript(path: Path, trust: bool) -> ModelSource:
    import torch

    _refuse_acting_ops("torchscript", path, trust)
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise InputError(f"{path} cannot be loaded as TorchScript ({type(e).__name__}: {_first_line(e)})") from e
    model.eval()
    return ModelSource("torchscript", path, sha256_of(path), "torchscript", "torchscript", model)


def _open_onnx(path: Path, trust: bool) -> ModelSource:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise InputError(f"{path} cannot be read as ONNX ({type(e).__name__}: {_first_line(e)})") from e
    graph_inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if len(graph_inputs) != 1 or len(proto.graph.output) != 1:
        raise InputError(
            f"{path} has {len(graph_inputs)} inputs and {len(proto.graph.output)} outputs: zoo packages models with "
            "one input and one output"
        )
    _refuse_acting_ops("onnx", path, trust)
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in graph_inputs[0].type.tensor_type.shape.dim)
    return ModelSource(
        "onnx",
        path,
        sha256_of(path),
        "onnx",
        "onnx",
        path,
        channels_last=_channels_last(dims),
        declared_shape=dims,
    )


def _channels_last(dims: tuple[int | None, ...]) -> bool:
    """A declared input shape like (None, None, None, 1) reads as channels last; (None, 1, None, None) as first."""
    if len(dims) < 3:
        return False
    first, last = dims[1], dims[-1]
    return last is not None and last <= 4 and (first is None or first > 4)


def _open_keras(path: Path, trust: bool) -> ModelSource:
    import keras

    uses_code = _keras_uses_code(path)
    if uses_code and not trust:
        raise InputError(f"{path} holds Python code ({uses_code}); pass --trust only if you trust its author")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not trust)
    except Exception as e:
        hint = (
            "; a custom layer needs its class: package the model from Python with zoo.api"
            if "Unknown" in str(e) or "custom" in str(e).lower()
            else ""
        )
        raise InputError(f"{path} cannot be loaded by Keras {keras.__version__} ({_first_line(e)}){hint}") from e
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise InputError(
            f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs: zoo packages models with one "
            "input and one output"
        )
    shape = tuple(model.inputs[0].shape)
    source_format = "keras_v3" if path.suffix.lower() == ".keras" else "keras_hdf5"
    return ModelSource(
        "keras", path, sha256_of(path), "keras", source_format, model, channels_last=True, declared_shape=shape
    )


def _keras_uses_code(path: Path) -> str | None:
    """The first Lambda layer or class from outside Keras in the file's model config, else None."""
    config = _keras_config(path)
    if config is None:
        return None
    for item in _walk(config):
        if not isinstance(item, dict) or "class_name" not in item:
            continue
        module = str(item.get("module") or "")
        if item["class_name"] == "Lambda":
            return "a Lambda layer"
        if module and not module.startswith(("keras", "tensorflow", "tf_keras")):
            return f"the class {item['class_name']} from {module}"
    return None


def _keras_config(path: Path) -> Any:
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as f:
            text = f.attrs.get("model_config")
            return json.loads(text.decode() if isinstance(text, bytes) else text) if text is not None else None
    except Exception:  # an unreadable file is reported by Keras itself when it loads it
        return None


def _walk(value: Any):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _open_python(
    file: Path, class_name: str, *, weights: Path | None, kwargs: dict[str, Any], trust: bool
) -> ModelSource:
    if not file.is_file():
        raise InputError(f"{file} does not exist: give the Python file that defines {class_name}")
    if weights is None:
        raise InputError(f"{file}:{class_name} needs its trained weights: pass --weights STATE_DICT.pt")
    if not Path(weights).is_file():
        raise InputError(f"--weights {weights} does not exist")
    if not trust:
        raise InputError(
            f"{file}:{class_name} runs the Python code in {file.name}: pass --trust only if you trust its author"
        )
    import torch

    from zoo.bioimage.runtimes.pytorch_backend import PytorchStateDictBackend

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"--weights {weights} is not a PyTorch state dict ({_first_line(e)})") from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        raise InputError(
            f"--weights {weights} is a training checkpoint with a 'state_dict' entry: save "
            "checkpoint['state_dict'] alone with torch.save and pass that file"
        )
    try:
        backend = PytorchStateDictBackend(
            Path(weights), architecture_file=file, callable_name=class_name, kwargs=kwargs
        )
    except AttributeError as e:
        raise InputError(f"{file} defines no {class_name}: {_first_line(e)}") from e
    except TypeError as e:
        raise InputError(f"{file}:{class_name}({_kwargs_text(kwargs)}) failed: {_first_line(e)}; pass --kwargs") from e
    except RuntimeError as e:  # load_state_dict: missing or unexpected keys, wrong shapes
        details = " ".join(line.strip() for line in str(e).splitlines() if line.strip())[:300]
        raise InputError(
            f"--weights {weights} do not fit {class_name}({_kwargs_text(kwargs)}): {details}; check --kwargs"
        ) from e
    return ModelSource(
        "python",
        Path(weights),
        sha256_of(Path(weights)),
        "pytorch",
        "pytorch_state_dict",
        backend.model,
        architecture=(file, class_name, dict(kwargs)),
    )


def _kwargs_text(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]
