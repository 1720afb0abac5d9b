"""Trainable weights from whatever a package has, and why that format: a `pytorch_state_dict` (its architecture's
code runs: only with trust), TorchScript (its parameters train as they are), ONNX (translated op by op into a PyTorch
module, zoo.finetune.onnx_torch) or Keras (through its ONNX export, with trust). Every route is proven equal to the
package's weights as zoo runs them (zoo.packaging.parent: the test input after the package's pre-processing and
random inputs of other valid sizes, ≤ AGREEMENT_ATOL) before anything trains; a package none of whose formats can
train is one InputError line that says why for each and what would work."""

from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bioimage.rdf_weights import weight_entries
from zoo.bioimage.source import OpenedSource, path_in_package
from zoo.errors import InputError, ZooError
from zoo.packaging.agreement import AGREEMENT_ATOL, Agreement, measure_agreement
from zoo.packaging.parent import ParentModel, convertible_tensors, open_parent

logger = logging.getLogger(__name__)

# best first: the weights the package was trained as, then a graph whose parameters train as they are, then
# translations (ONNX op by op; Keras through its ONNX export)
TRAINABLE_ORDER = ("pytorch_state_dict", "torchscript", "onnx", "keras_v3", "keras_hdf5")
WHY = {
    "pytorch_state_dict": "the weights the model was trained as, in its own architecture",
    "torchscript": "its parameters train as they are, no translation",
    "onnx": "translated op by op into a PyTorch module, proven equal to the ONNX file",
    "keras_v3": "exported to ONNX and translated into a PyTorch module, proven equal to the Keras model",
    "keras_hdf5": "exported to ONNX and translated into a PyTorch module, proven equal to the Keras model",
}
FREEZE_CHOICES = ("none", "encoder")
ENCODER_NAMES = re.compile(r"enc|down|contract|backbone", re.IGNORECASE)


@dataclass
class Trainable:
    """A package's weights as a module that trains, with what exporting the result needs."""

    weight_format: str  # the package's weights it came from
    why: str
    module: Any  # a torch.nn.Module (_Training): what the loop trains
    framework: str  # the exporter table the result goes through: "pytorch", "torchscript" or "onnx"
    parent: ParentModel  # the package's weights as zoo runs them: example, proof inputs, export context
    proof: Agreement  # the module against the package's weights, before training
    normalisation: str = ""  # whether its normalisation statistics adapt to the new images (normalisation())
    passed_over: dict[str, str] = field(default_factory=dict)  # better formats the package has, and why not them

    @property
    def final_activation(self) -> str | None:
        return self.module.final_activation

    @property
    def trains_on_logits(self) -> bool:
        return self.module.can_give_logits

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model as the package ships it (final activation included), in eval mode, on one array."""
        import torch

        self.module.eval()
        with torch.no_grad():
            return self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    def export_model(self, workdir: Path):
        """What the exporters start from: the trained module (pytorch, torchscript), or the ONNX graph with the
        trained weights written back into it (onnx)."""
        inner = self.module.inner
        if self.framework == "onnx":
            workdir.mkdir(parents=True, exist_ok=True)
            return inner.save_onnx(workdir / "finetuned.onnx")
        return inner


def choose_trainable(
    opened: OpenedSource, rdf: dict, *, trust: bool, workdir: Path, weights: str | None = None
) -> Trainable:
    """The first format of TRAINABLE_ORDER (or the one asked for as `weights`) that loads, translates and proves
    equal; InputError (one line) when none does. Package-level problems (several inputs, axes other than
    batch/channel/z/y/x) are raised first."""
    from zoo.bioimage.formats import canonical
    from zoo.inference.model import weights_problem

    convertible_tensors(opened, rdf)
    present = weight_entries(rdf)
    order = TRAINABLE_ORDER
    if weights is not None:
        weights = canonical(weights)
        if weights not in present:
            raise InputError(f"--weights {weights}: {opened.source} has {', '.join(present) or 'no weights'}")
        if weights not in TRAINABLE_ORDER:
            raise InputError(f"--weights {weights}: {_untrainable(weights, present[weights], opened)}")
        order = (weights,)
    passed_over: dict[str, str] = {}
    for weight_format in order:
        if weight_format not in present:
            continue
        problem = weights_problem(weight_format, present[weight_format], opened, "cpu", trust)
        if problem is not None:
            passed_over[weight_format] = problem
            continue
        try:
            trainable = _load(opened, weight_format, trust, workdir)
        except ZooError as e:
            passed_over[weight_format] = str(e)
            continue
        trainable.passed_over = dict(passed_over)
        trainable.why = WHY[weight_format] + "".join(f"; not {f}: {why}" for f, why in passed_over.items())
        return trainable
    reasons = [f"{f}: {why}" for f, why in passed_over.items()]
    reasons += [f"{f}: {_untrainable(f, present[f], opened)}" for f in present if f not in TRAINABLE_ORDER]
    raise InputError(
        f"{opened.source} cannot be fine-tuned ({'; '.join(reasons) or 'the package lists no weights'}); a package "
        "with torchscript, onnx, pytorch_state_dict (with --trust) or keras (with --trust) weights would work"
    )


def _untrainable(weight_format: str, entry, opened: OpenedSource) -> str:
    if weight_format != "tensorflow_saved_model_bundle":
        return "zoo does not train this format"
    path, _ = path_in_package(opened.root, entry.source or "")
    variables = False
    if path is not None and path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            variables = any("variables.data" in name for name in archive.namelist())
    elif path is not None and path.is_dir():
        variables = any(path.glob("**/variables.data*"))
    if not variables:
        return "a frozen TensorFlow graph without variables: nothing in it can train"
    return "zoo does not train TensorFlow SavedModel variables (a Keras file of the model would work)"


def _load(opened: OpenedSource, weight_format: str, trust: bool, workdir: Path) -> Trainable:
    parent = open_parent(opened, weight_format, trust=trust)
    if parent.framework == "pytorch":
        inner, framework = parent.model, "pytorch"
    elif parent.framework == "torchscript":
        inner, framework = parent.model, "torchscript"
    elif parent.framework == "onnx":
        inner, framework = _onnx_module(Path(parent.model)), "onnx"
    else:  # keras: its ONNX export (tf2onnx), translated
        from zoo.packaging.exporters import get_exporter

        folder = workdir / "keras-onnx"
        folder.mkdir(parents=True, exist_ok=True)
        exported = get_exporter("keras", "onnx")(parent.model, parent.example, folder, parent.context)
        inner, framework = _onnx_module(exported.path), "onnx"
    module = _Training(inner)
    proof = measure_agreement(weight_format, parent.reference, _runner(module), parent.inputs)
    if not proof.passed:
        worst = max(proof.cases, key=lambda c: c.max_abs)
        raise InputError(
            f"the trainable module differs from the {weight_format} weights by max |Δ| {proof.max_abs:.2e} (case "
            f"{worst.case!r}, shape {worst.shape}), expected ≤ {AGREEMENT_ATOL:g}: not fine-tuned from them"
        )
    return Trainable(
        weight_format, WHY[weight_format], module, framework, parent, proof, normalisation(module, parent.example)
    )


def _onnx_module(path: Path):
    from zoo.finetune.onnx_torch import OnnxModule

    return OnnxModule(path)


def _runner(module):
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        module.eval()
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return run


def _module_base():
    import torch

    return torch.nn.Module


class _Training(_module_base()):
    """The module that trains, and where the model's final sigmoid or softmax can be left out (zoo's architectures,
    ONNX graphs ending in one), `logits` leaves it out so that the loss works on logits."""

    def __init__(self, inner):
        import torch

        super().__init__()
        self.inner = inner
        scripted = isinstance(inner, torch.jit.ScriptModule)  # its code is compiled: an attribute changes nothing
        declared = None if scripted else getattr(inner, "final_activation", None)
        self.final_activation = declared if declared in ("sigmoid", "softmax") else None
        self.can_give_logits = self.final_activation is not None
        self._activation_attribute = self.can_give_logits and not hasattr(inner, "logits")

    def set_logits(self, on: bool) -> None:
        if not self.can_give_logits:
            return
        if self._activation_attribute:
            self.inner.final_activation = "none" if on else self.final_activation
        else:
            self.inner.logits = on

    def forward(self, x):
        return self.inner(x)


def normalisation(module, example: np.ndarray) -> str:
    """Whether the model's normalisation statistics adapt to the new images while it trains, found by running it once
    in training mode (and putting everything back): a state dict's architecture and scripted TorchScript compute them
    in training mode; a traced TorchScript or an ONNX graph has them fixed as exported."""
    import torch

    statistics = {k: v for k, v in module.state_dict().items() if k.endswith(("running_mean", "running_var"))}
    if not statistics:
        return "none in the model"
    saved = {k: v.detach().clone() for k, v in module.state_dict().items()}
    module.train()
    with torch.no_grad():
        module(torch.from_numpy(np.ascontiguousarray(example, dtype=np.float32)))
    changed = any(not torch.equal(module.state_dict()[k], saved[k]) for k in statistics)
    module.load_state_dict(saved)
    module.eval()
    return "adapts to your images while training" if changed else "fixed as exported (a traced or ONNX graph)"


@dataclass(frozen=True)
class Frozen:
    """Which parameters do not train, and by which rule."""

    mode: str
    frozen: int  # parameter tensors frozen
    total: int
    rule: str

    def text(self) -> str:
        if self.mode == "none":
            return f"nothing frozen: all {self.total} parameter tensors train"
        return f"{self.frozen} of {self.total} parameter tensors frozen ({self.rule})"


def freeze(module, mode: str) -> Frozen:
    """Freeze the encoder (`mode` "encoder"): parameters named like one (enc, down, contract, backbone), else the
    first half of the parameter tensors in the order the model registers them (the contracting path of a U-Net
    translated from a graph, whose names say nothing). "none" trains everything."""
    if mode not in FREEZE_CHOICES:
        raise InputError(f"--freeze {mode}: choose {' or '.join(FREEZE_CHOICES)}")
    named = list(module.named_parameters())
    for _, parameter in named:
        parameter.requires_grad_(True)
    if mode == "none":
        return Frozen(mode, 0, len(named), "")
    chosen = [p for name, p in named if ENCODER_NAMES.search(name)]
    rule = "parameters named enc*, down*, contract* or backbone*"
    if not chosen or len(chosen) == len(named):
        chosen = [p for _, p in named[: len(named) // 2]]
        rule = "the first half in the model's order: its names do not say which are the encoder"
    for parameter in chosen:
        parameter.requires_grad_(False)
    return Frozen(mode, len(chosen), len(named), rule)


__all__ = ["FREEZE_CHOICES", "TRAINABLE_ORDER", "Frozen", "Trainable", "choose_trainable", "freeze"]
