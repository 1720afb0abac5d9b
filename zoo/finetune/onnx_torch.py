"""ONNX weights made trainable: the graph run node by node with torch operations (zoo.finetune.onnx_torch_ops and
onnx_torch_shapes), its weights (convolution kernels and biases, dense layers, normalisation scales and shifts) as
`nn.Parameter`s, and the trained values written back into the same graph.

Why not onnx2torch: it imports torchvision at import time, and no torchvision build loads beside the CPU build of
torch 2.13 that zoo pins (the PyPI wheel's extension needs libtorch_cuda), so `import onnx2torch` fails here.

Before any training the caller proves the module equal to the ONNX file as onnxruntime runs it (zoo.finetune.
trainable); an op the translator lacks is one line naming it before anything runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from zoo.errors import InputError
from zoo.finetune.onnx_torch_ops import LAYER_OPS, TRAINABLE_INPUTS, Node, UnsupportedOnnxOp
from zoo.finetune.onnx_torch_shapes import SHAPE_OPS

STANDARD_DOMAINS = ("", "ai.onnx")
OPS = {**LAYER_OPS, **SHAPE_OPS}
FINAL_ACTIVATIONS = {"Sigmoid": "sigmoid", "Softmax": "softmax"}


def _attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _key(name: str, taken: set[str]) -> str:
    """A module attribute name for an ONNX value name (no dots), unique."""
    key = re.sub(r"\W", "_", name).strip("_") or "value"
    key = key if not key[0].isdigit() else f"v_{key}"
    candidate, n = key, 1
    while candidate in taken:
        n += 1
        candidate = f"{key}_{n}"
    taken.add(candidate)
    return candidate


def _onnx_module_base():
    import torch

    return torch.nn.Module


class OnnxModule(_onnx_module_base()):
    """An ONNX graph with one input and one output as a PyTorch module whose weights train.

    `final_activation` is "sigmoid" or "softmax" when the graph ends in one (else None); with `logits` set, forward
    returns what goes into it, so that a loss can work on logits. Normalisation statistics stay as exported."""

    def __init__(self, path: Path):
        import onnx
        import onnx.numpy_helper
        import torch

        super().__init__()
        try:
            proto = onnx.load(str(path))
        except Exception as e:
            raise InputError(f"{path} cannot be read as ONNX ({type(e).__name__}: {e})") from e
        graph = proto.graph
        initializers = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
        inputs = [i.name for i in graph.input if i.name not in initializers]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise InputError(f"{path} has {len(inputs)} inputs and {len(graph.output)} outputs: expected one and one")
        self.input_name, self.output_name = inputs[0], graph.output[0].name
        constants = dict(initializers)
        nodes = []
        for node in graph.node:
            if node.domain not in STANDARD_DOMAINS:
                raise UnsupportedOnnxOp(f"{node.domain}.{node.op_type}", node.name, "from a custom domain is not run")
            attributes = _attributes(node)
            if node.op_type == "Constant":
                value = attributes.get("value")
                if value is None:
                    raise UnsupportedOnnxOp(node.op_type, node.name, "without a tensor value is not supported")
                constants[node.output[0]] = onnx.numpy_helper.to_array(value)
                continue
            if node.op_type not in OPS:
                raise UnsupportedOnnxOp(node.op_type, node.name)
            nodes.append(Node(node.op_type, node.name, tuple(node.input), tuple(node.output), attributes))
        self._nodes = nodes
        trainable = self._trainable_names(nodes, initializers)
        taken: set[str] = set()
        self.weights = torch.nn.ParameterDict()
        self._parameter_keys: dict[str, str] = {}
        self._constant_keys: dict[str, str] = {}
        for name, value in constants.items():
            if name in trainable:
                key = _key(name, taken)
                tensor = torch.from_numpy(np.array(value, dtype=np.float32))
                self.weights[key] = torch.nn.Parameter(tensor)
                self._parameter_keys[name] = key
            else:
                key = _key(f"constant_{name}", taken)
                array = np.array(value)
                array = array.astype(np.float32) if array.dtype.kind == "f" else array
                self.register_buffer(key, torch.from_numpy(array), persistent=True)
                self._constant_keys[name] = key
        self._dtypes = {name: initializers[name].dtype for name in self._parameter_keys}
        self._proto = proto.SerializeToString()
        last = next((n for n in nodes if self.output_name in n.outputs), None)
        self.final_activation = FINAL_ACTIVATIONS.get(last.op_type) if last is not None else None
        self.final_axis = int(last.attributes.get("axis", -1)) if last is not None and last.op_type == "Softmax" else 1
        self.logits = False

    @staticmethod
    def _trainable_names(nodes: list[Node], initializers: dict[str, np.ndarray]) -> set[str]:
        names = set()
        for node in nodes:
            for position in TRAINABLE_INPUTS.get(node.op_type, ()):
                if position >= len(node.inputs):
                    continue
                name = node.inputs[position]
                value = initializers.get(name)
                if value is None or value.dtype.kind != "f":
                    continue
                elementwise = node.op_type in ("Add", "Mul", "Sub")
                if elementwise and (value.size <= 1 or all(i in initializers for i in node.inputs)):
                    continue  # a scalar factor or constant arithmetic, not a learnt weight
                names.add(name)
        return names

    def forward(self, x):
        values = {self.input_name: x}
        for node in self._nodes:
            if self.logits and self.final_activation and self.output_name in node.outputs:
                return self._value(node.inputs[0], values)
            outputs = OPS[node.op_type](node, [self._value(name, values) for name in node.inputs])
            values.update(zip(node.outputs, outputs))
        return values[self.output_name]

    def _value(self, name: str, values: dict):
        if not name:
            return None  # an optional input left out
        if name in values:
            return values[name]
        if name in self._parameter_keys:
            return self.weights[self._parameter_keys[name]]
        if name in self._constant_keys:
            return getattr(self, self._constant_keys[name])
        raise InputError(f"ONNX value {name!r} is used before it is computed: the graph is not in topological order")

    def save_onnx(self, path: Path) -> Path:
        """The original graph with the current weights in place of the exported ones."""
        import onnx
        import onnx.numpy_helper

        proto = onnx.ModelProto()
        proto.ParseFromString(self._proto)
        for i, initializer in enumerate(proto.graph.initializer):
            key = self._parameter_keys.get(initializer.name)
            if key is None:
                continue
            value = self.weights[key].detach().cpu().numpy().astype(self._dtypes[initializer.name])
            proto.graph.initializer[i].CopyFrom(onnx.numpy_helper.from_array(value, initializer.name))
        onnx.save(proto, str(path))
        return Path(path)

    def trainable_names(self) -> dict[str, str]:
        """ONNX initializer name → this module's parameter name."""
        return {name: f"weights.{key}" for name, key in self._parameter_keys.items()}


__all__ = ["OnnxModule", "UnsupportedOnnxOp"]
