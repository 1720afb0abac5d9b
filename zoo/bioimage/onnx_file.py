"""Reading what an ONNX file says about itself, without the onnx package and without running it: opset, IR
version, graph inputs/outputs and node domains, through a small protobuf wire reader (no external data)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from zoo.bioimage.weight_files import UnreadableWeights, file_stamp

ONNX_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    16: "bfloat16",
}


@dataclass(frozen=True)
class OnnxContent:
    opset: int | None  # of the default domain
    ir_version: int
    inputs: list[tuple[str, str]]  # (name, dtype) in graph order, initializers left out
    outputs: list[tuple[str, str]]


def read_onnx(path: Path) -> OnnxContent:
    return _onnx_model(str(path), *file_stamp(path)).content


def read_onnx_domains(path: Path) -> list[tuple[str, str, str]]:
    """(domain, op type, where) of every node: the main graph, subgraphs of If/Loop/Scan, and functions."""
    return _onnx_model(str(path), *file_stamp(path)).nodes


# ONNX files are read with a small protobuf wire-format reader: the fields needed here are few, and importing the
# onnx package costs half a second of every validation. Field numbers from onnx.proto (IR version 10).
_WIRE_VARINT, _WIRE_64, _WIRE_LEN, _WIRE_32 = 0, 1, 2, 5


@dataclass(frozen=True)
class _OnnxModel:
    content: OnnxContent
    nodes: list[tuple[str, str, str]]


@lru_cache(maxsize=16)
def _onnx_model(path_text: str, *stamp) -> _OnnxModel:
    path = Path(path_text)
    try:
        data = memoryview(path.read_bytes())
        return _parse_onnx(data)
    except (ValueError, IndexError, UnicodeDecodeError) as e:
        raise UnreadableWeights(f"{path.name} cannot be parsed as ONNX ({type(e).__name__}: {e})") from e


def _parse_onnx(data: memoryview) -> _OnnxModel:
    ir_version, opsets, graph, functions = None, [], None, []
    for number, wire, value in _fields(data):
        if number == 1 and wire == _WIRE_VARINT:
            ir_version = value
        elif number == 8 and wire == _WIRE_LEN:
            opsets.append(_opset(value))
        elif number == 7 and wire == _WIRE_LEN:
            graph = value
        elif number == 25 and wire == _WIRE_LEN:
            functions.append(value)
    if ir_version is None or graph is None:
        raise ValueError("no IR version or no graph: not an ONNX model")
    nodes: list[tuple[str, str, str]] = []
    inputs, outputs, initializers = _graph(graph, "", nodes)
    for function in functions:
        _function(function, nodes)
    default = [v for d, v in opsets if d in ("", "ai.onnx") and v is not None]
    content = OnnxContent(
        max(default) if default else None,
        int(ir_version),
        [(name, ONNX_TYPES.get(t, f"onnx type {t}")) for name, t in inputs if name not in initializers],
        [(name, ONNX_TYPES.get(t, f"onnx type {t}")) for name, t in outputs],
    )
    return _OnnxModel(content, nodes)


def _opset(value: memoryview) -> tuple[str, int | None]:
    """OperatorSetIdProto: (domain, version)."""
    domain, version = "", None
    for n, w, v in _fields(value):
        if n == 1 and w == _WIRE_LEN:
            domain = _text(v)
        elif n == 2 and w == _WIRE_VARINT:
            version = v
    return domain, version


def _function(function: memoryview, nodes: list) -> None:
    """FunctionProto: its nodes, named after the function."""
    name, domain, body = "", "", []
    for n, w, v in _fields(function):
        if n == 1 and w == _WIRE_LEN:
            name = _text(v)
        elif n == 10 and w == _WIRE_LEN:
            domain = _text(v)
        elif n == 7 and w == _WIRE_LEN:
            body.append(v)
    for node in body:
        _node(node, f"function {domain}::{name}/", nodes)


def _graph(graph: memoryview, where: str, nodes: list) -> tuple[list, list, set]:
    inputs, outputs, initializers = [], [], set()
    for number, wire, value in _fields(graph):
        if wire != _WIRE_LEN:
            continue
        if number == 1:
            _node(value, where, nodes)
        elif number == 5:  # TensorProto: its name is field 8
            initializers.update(_text(v) for n, w, v in _fields(value) if n == 8 and w == _WIRE_LEN)
        elif number in (11, 12):
            (inputs if number == 11 else outputs).append(_value_info(value))
    return inputs, outputs, initializers


def _node(node: memoryview, where: str, nodes: list) -> None:
    name, op_type, domain, subgraphs = "", "", "", []
    for number, wire, value in _fields(node):
        if wire != _WIRE_LEN:
            continue
        if number == 3:
            name = _text(value)
        elif number == 4:
            op_type = _text(value)
        elif number == 7:
            domain = _text(value)
        elif number == 5:  # AttributeProto: a subgraph in g (6) or graphs (11)
            subgraphs += [v for n, w, v in _fields(value) if n in (6, 11) and w == _WIRE_LEN]
    nodes.append((domain, op_type, f"{where}node {name or op_type}"))
    for subgraph in subgraphs:
        _graph(subgraph, f"{where}{name or op_type}/", nodes)


def _value_info(value: memoryview) -> tuple[str, int]:
    name, elem_type = "", 0
    for number, wire, field_value in _fields(value):
        if number == 1 and wire == _WIRE_LEN:
            name = _text(field_value)
        elif number == 2 and wire == _WIRE_LEN:  # TypeProto.tensor_type (1) .elem_type (1)
            for n, w, v in _fields(field_value):
                if n == 1 and w == _WIRE_LEN:
                    elem_type = next((t for n2, w2, t in _fields(v) if n2 == 1 and w2 == _WIRE_VARINT), 0)
    return name, elem_type


def _fields(data: memoryview):
    """(field number, wire type, value) of one protobuf message: an int for varints, a memoryview for
    length-delimited fields; fixed-width fields are skipped over (their value is not needed here)."""
    position, end = 0, len(data)
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            value, position = _varint(data, position)
        elif wire == _WIRE_LEN:
            length, position = _varint(data, position)
            if position + length > end:
                raise ValueError("a field runs past the end of its message")
            value, position = data[position : position + length], position + length
        elif wire == _WIRE_64:
            value, position = None, position + 8
        elif wire == _WIRE_32:
            value, position = None, position + 4
        else:
            raise ValueError(f"wire type {wire} is not used by ONNX")
        yield number, wire, value


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("a varint longer than 10 bytes")


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8")
