"""Reading what weight files say about themselves, without executing or unpickling anything.

TorchScript: the zip archive's `version` record and the operators its `code/` calls. TensorFlow SavedModel: tags,
signatures, op types and attributes from saved_model.pb (the protobuf only; nothing is loaded into a TF runtime).
ONNX files are read by `zoo.bioimage.onnx_file` (a protobuf wire reader)."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

MAX_CODE_BYTES = 64 * 1024**2  # TorchScript code records read at most
MAX_PB_BYTES = 2 * 1024**3  # protobuf's own limit

# `torch.conv2d(` / `ops.aten.upsample(` / `ops.prim.NumToTensor(`, not `__torch__.torch.nn.functional.relu(`
_TORCH_CALL = re.compile(r"(?<![\w.])torch\.([A-Za-z_]\w*)\s*\(")
_OPS_CALL = re.compile(r"(?<![\w.])ops\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*\(")


class UnreadableWeights(Exception):
    """The file is not what its format says; the message says why."""


@dataclass(frozen=True)
class TorchScriptContent:
    file_format_version: int | None
    ops: frozenset[str]  # "aten::conv2d", "prim::NumToTensor", "torchvision::nms"
    op_sites: frozenset[tuple[str, str]] = frozenset()  # (op, code record that calls it)


def read_torchscript(path: Path) -> TorchScriptContent:
    return _read_torchscript(str(path), *file_stamp(path))


def file_stamp(path: Path) -> tuple[int, int]:
    """(size, mtime) so that a cached reading is reused only for the same file content."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=16)
def _read_torchscript(path_text: str, *stamp) -> TorchScriptContent:
    path = Path(path_text)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UnreadableWeights(f"{path.name} is not a TorchScript zip archive ({e})") from e
    with archive:
        names = archive.namelist()
        version_records = [n for n in names if _is_record(n, "version") or _is_record(n, ".data/version")]
        version = None
        for record in sorted(version_records, key=lambda n: ".data/" not in n):
            text = archive.read(record)[:32].decode("ascii", "replace").strip()
            if text.isdigit():
                version = int(text)
                break
        ops: set[str] = set()
        sites: set[tuple[str, str]] = set()
        budget = MAX_CODE_BYTES
        for name in names:
            parts = PurePosixPath(name).parts
            if len(parts) < 3 or parts[1] != "code" or not name.endswith(".py"):
                continue
            info = archive.getinfo(name)
            if info.file_size > budget:
                break
            budget -= info.file_size
            code = archive.read(name).decode("utf-8", "replace")
            found = {f"aten::{m.group(1)}" for m in _TORCH_CALL.finditer(code)}
            found |= {f"{m.group(1)}::{m.group(2)}" for m in _OPS_CALL.finditer(code)}
            ops |= found
            sites |= {(op, name) for op in found}
    if version is None and not ops:
        raise UnreadableWeights(f"{path.name} is a zip without a TorchScript version record or code")
    return TorchScriptContent(version, frozenset(ops), frozenset(sites))


def _is_record(name: str, record: str) -> bool:
    """`archive/version`: a record directly under the archive's single top folder."""
    parts = PurePosixPath(name).parts
    return len(parts) == 1 + len(PurePosixPath(record).parts) and "/".join(parts[1:]) == record


TF_TYPES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    9: "int64",
    10: "bool",
    17: "uint16",
    19: "float16",
    22: "uint32",
    23: "uint64",
}


@dataclass(frozen=True)
class Signature:
    inputs: dict[str, str]  # key -> dtype
    outputs: dict[str, str]


@dataclass(frozen=True)
class SavedModelContent:
    where: str  # "weights zip" or "package folder"
    root_members: frozenset[str]  # names at the root of the zip or folder ("saved_model.pb", "variables/")
    tags: list[frozenset[str]] = field(default_factory=list)  # per meta graph
    signatures: dict[str, Signature] = field(default_factory=dict)  # of the meta graph tagged "serve"
    ops: frozenset[str] = frozenset()
    attrs: frozenset[tuple[str, str]] = frozenset()  # (op, attr) pairs set on nodes
    tensorflow_version: str | None = None  # the writer's, from meta_info_def
    # (op, node or function) for every op the serving signatures reach (all nodes when there is no serve graph)
    op_sites: frozenset[tuple[str, str]] = frozenset()


def find_saved_model(root: Path, source: str | None) -> tuple[str, Path] | None:
    """("weights zip", path) or ("package folder", root) where deepImageJ would find the SavedModel."""
    if source:
        path = root / Path(source).name
        if path.is_file() and zipfile.is_zipfile(path):
            return "weights zip", path
        if path.is_dir() and (path / "saved_model.pb").is_file():
            return "weights folder", path
    if (root / "saved_model.pb").is_file():
        return "package folder", root
    return None


def read_saved_model(root: Path, source: str | None) -> SavedModelContent:
    found = find_saved_model(root, source)
    if found is None:
        raise UnreadableWeights(
            f"no SavedModel: {source} is neither a zip nor a folder with saved_model.pb, and "
            "the package folder holds no saved_model.pb"
        )
    where, path = found
    stamp = file_stamp(path if where == "weights zip" else path / "saved_model.pb")
    return _read_saved_model(where, str(path), *stamp)


@lru_cache(maxsize=8)
def _read_saved_model(where: str, path_text: str, *stamp) -> SavedModelContent:
    path = Path(path_text)
    if where == "weights zip":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            root_members = frozenset(_root_member(n) for n in names)
            if "saved_model.pb" not in names:
                return SavedModelContent(where, root_members)
            info = archive.getinfo("saved_model.pb")
            if info.file_size > MAX_PB_BYTES:
                raise UnreadableWeights(f"saved_model.pb is {info.file_size} bytes, more than protobuf reads")
            data = archive.read("saved_model.pb")
    else:
        root_members = frozenset(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
        data = (path / "saved_model.pb").read_bytes()
    return _parse_saved_model(where, root_members, data)


def _root_member(name: str) -> str:
    head, sep, _ = name.partition("/")
    return head + sep


def _parse_saved_model(where: str, root_members: frozenset[str], data: bytes) -> SavedModelContent:
    try:
        from tensorflow.core.protobuf import saved_model_pb2
    except ImportError as e:
        raise UnreadableWeights("tensorflow is not installed here, so saved_model.pb cannot be parsed") from e
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(data)
    except Exception as e:
        raise UnreadableWeights(f"saved_model.pb cannot be parsed ({type(e).__name__}: {e})") from e
    tags = [frozenset(mg.meta_info_def.tags) for mg in saved.meta_graphs]
    serving = next((mg for mg in saved.meta_graphs if "serve" in mg.meta_info_def.tags), None)
    signatures: dict[str, Signature] = {}
    ops: set[str] = set()
    attrs: set[tuple[str, str]] = set()
    version = None
    for mg in saved.meta_graphs:
        version = version or mg.meta_info_def.tensorflow_version or None
        functions = {f.signature.name for f in mg.graph_def.library.function}
        nodes = list(mg.graph_def.node) + [n for f in mg.graph_def.library.function for n in f.node_def]
        for node in nodes:
            if node.op not in functions:
                ops.add(node.op)
                attrs.update((node.op, name) for name in node.attr)
    if serving is not None:
        for name, signature in serving.signature_def.items():
            signatures[name] = Signature(
                {k: TF_TYPES.get(v.dtype, f"tf type {v.dtype}") for k, v in signature.inputs.items()},
                {k: TF_TYPES.get(v.dtype, f"tf type {v.dtype}") for k, v in signature.outputs.items()},
            )
    return SavedModelContent(
        where,
        root_members,
        tags,
        signatures,
        frozenset(ops),
        frozenset(attrs),
        version,
        frozenset(_reachable_ops(saved, serving)),
    )


def _reachable_ops(saved, serving) -> set[tuple[str, str]]:
    """(op, where) of the nodes the serving signatures' outputs depend on, following node inputs and the
    functions nodes call (StatefulPartitionedCall's `f`, While/If bodies): a saver's SaveV2 beside the serving
    graph is not reached, a WriteFile the outputs depend on is."""
    graphs = [serving] if serving is not None else list(saved.meta_graphs)
    sites: set[tuple[str, str]] = set()
    for mg in graphs:
        library = {f.signature.name: f for f in mg.graph_def.library.function}
        nodes = {n.name: n for n in mg.graph_def.node}
        starts = [t.name for sig in mg.signature_def.values() for t in sig.outputs.values()] if serving else []
        pending = [name.split(":")[0].lstrip("^") for name in starts] or list(nodes)
        seen: set[str] = set()
        functions: list[str] = []
        while pending:
            name = pending.pop()
            if name in seen or name not in nodes:
                continue
            seen.add(name)
            node = nodes[name]
            sites.add((node.op, f"node {name}"))
            pending.extend(i.split(":")[0].lstrip("^") for i in node.input)
            functions.extend(_called_functions(node, library))
        done: set[str] = set()
        while functions:
            fname = functions.pop()
            if fname in done:
                continue
            done.add(fname)
            for node in library[fname].node_def:
                sites.add((node.op, f"function {fname}"))
                functions.extend(_called_functions(node, library))
    return sites


def _called_functions(node, library) -> list[str]:
    names = [node.op] if node.op in library else []
    for value in node.attr.values():
        if value.HasField("func") and value.func.name in library:
            names.append(value.func.name)
        names.extend(f.name for f in value.list.func if f.name in library)
    return names
