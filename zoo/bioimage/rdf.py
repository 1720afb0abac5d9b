"""One faithful reading of a package description, formats 0.3, 0.4 and 0.5, for every stage.

Works on the yaml dict (read with `read_rdf`: bounded before it is parsed), never on bioimageio.spec's upgrade
to 0.5, which drops what it cannot express (a fixed batch of 0.4 shapes) or rejects whole packages (an output
with a halo and a fixed size, an invalid `cite` URL). Tensors and axes keep their original meaning: string axes
of 0.3/0.4 with JDLL's one-letter names, shapes as lists (fixed) or min/step (parameterized) or a reference with
scale and offset (nulls included: a null scale is a new axis of size 2·offset), halos, raw data types; weights
with their files and architecture sources; every file the rdf names, with the role it plays. Never raises on
odd values: what it cannot read it reports as None or "unknown"."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.bioimage import formats
from zoo.bioimage.files import is_url

RUNNABLE_FORMATS_V04 = ("torchscript", "pytorch_script", "onnx", "tensorflow_saved_model_bundle")
RUNNABLE_FORMATS_V05 = (*RUNNABLE_FORMATS_V04, "pytorch_state_dict")
NEVER_RUN_FORMATS = ("keras_hdf5", "tensorflow_js", "keras_v3")  # JDLL never runs these (keras_v3: unknown to it)


def spec_version(rdf: dict) -> str | None:
    """ "0.4" or "0.5" as JDLL decides it (the start of format_version); None for anything else."""
    text = str(rdf.get("format_version", ""))
    for version in ("0.4", "0.5"):
        if text.startswith(version):
            return version
    return None


@dataclass(frozen=True)
class Size:
    """One axis's size: fixed, min + n·step, a reference to an input axis, data-dependent, free or unknown."""

    kind: str  # "fixed", "parameterized", "reference", "data_dependent", "free", "unknown"
    value: int | None = None  # fixed size
    min: int | None = None
    step: int | None = None
    ref_tensor: str | None = None
    ref_axis: str | None = None  # axis id (0.5) or letter (0.4) of the referenced input axis
    scale: float = 1.0  # 0.4: the reference's factor; 0.5: the axis's own `scale`
    offset: float = 0.0  # 0.4: per side (spec: reference·scale + 2·offset); 0.5: total

    @property
    def smallest(self) -> int | None:
        return self.value if self.kind == "fixed" else self.min if self.kind == "parameterized" else None


@dataclass(frozen=True)
class AxisView:
    index: int
    letter: str | None  # JDLL's name for the axis ("b", "c", "x", ...), None when JDLL cannot name it
    axis_type: str | None  # 0.5 "type"; for 0.4 derived from the letter
    axis_id: str | None  # 0.5 "id" as written; for 0.4 the letter
    size: Size
    halo: int = 0
    scale: float = 1.0  # 0.5 axis scale
    raw: Any = None


@dataclass(frozen=True)
class TensorView:
    kind: str  # "inputs" or "outputs"
    index: int
    tensor_id: str
    axes: list[AxisView]
    raw: dict = field(repr=False)

    @property
    def location(self) -> str:
        return f"{self.kind}.{self.index}"

    @property
    def letters(self) -> str:
        return "".join(a.letter or "?" for a in self.axes)

    def axis(self, letter: str) -> AxisView | None:
        return next((a for a in self.axes if a.letter == letter), None)

    def processing(self) -> list[tuple[int, str, dict]]:
        """(index, op name, kwargs) of the pre- (inputs) or post-processing (outputs) steps."""
        steps = self.raw.get("preprocessing" if self.kind == "inputs" else "postprocessing") or []
        out = []
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            if isinstance(step, dict):
                name = step.get("id", step.get("name"))
                kwargs = step.get("kwargs") or {}
                out.append((i, str(name), kwargs if isinstance(kwargs, dict) else {}))
        return out

    @property
    def processing_key(self) -> str:
        return "preprocessing" if self.kind == "inputs" else "postprocessing"

    def data_type(self) -> str | None:
        """The declared data type: 0.5 `data.type` (float32 when absent), 0.4 `data_type`."""
        if "data_type" in self.raw:
            return str(self.raw["data_type"])
        data = self.raw.get("data")
        if isinstance(data, list) and data:
            data = data[0]
        if isinstance(data, dict):
            return str(data.get("type", "float32"))
        return "float32" if isinstance(self.raw.get("axes"), list) else None

    def channel_count(self) -> int | None:
        axis = self.axis("c")
        if axis is None:
            return 1
        if isinstance(axis.raw, dict) and isinstance(axis.raw.get("channel_names"), list):
            return len(axis.raw["channel_names"])
        return axis.size.smallest


def tensors(rdf: dict, kind: str) -> list[TensorView]:
    entries = rdf.get(kind)
    if not isinstance(entries, list):
        return []
    reference_axes = {}
    for source in (rdf.get("inputs"), entries):
        for entry in source if isinstance(source, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("axes"), str):
                reference_axes.setdefault(str(entry.get("name", entry.get("id"))), entry["axes"])
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        tensor_id = str(entry.get("id", entry.get("name", i)))
        axes = entry.get("axes")
        if isinstance(axes, str):
            views = _axes_v04(entry, axes, kind, reference_axes)
        elif isinstance(axes, list):
            views = [_axis_v05(j, axis) for j, axis in enumerate(axes)]
        else:
            views = []
        out.append(TensorView(kind, i, tensor_id, views, entry))
    return out


V04_TYPES = {"b": "batch", "c": "channel", "x": "space", "y": "space", "z": "space", "t": "time", "i": "index"}


def _axes_v04(entry: dict, axes: str, kind: str, reference_axes: dict[str, str] | None = None) -> list[AxisView]:
    """0.3/0.4 axes. A reference (`reference_tensor`, 0.3's `reference_input`) follows the referenced tensor's
    axis of the same letter (`reference_axes`: tensor name -> its axes string; a letter it lacks is a free batch
    or an unknown size). A null scale is a new axis whose size is 2·offset (spec 0.4); a null offset is 0.
    A parameterized axis with step 0 is fixed at its min, except the batch: a list shape fixes it, min/step
    leaves it free."""
    shape = entry.get("shape")
    halo = entry.get("halo") if isinstance(entry.get("halo"), list) else []
    reference = None
    if isinstance(shape, dict):
        reference = shape.get("reference_tensor", shape.get("reference_input"))
    views = []
    for j, letter in enumerate(axes):
        if isinstance(shape, list):
            value = _int(shape[j]) if j < len(shape) else None
            if value is not None and value > 0:
                size = Size("fixed", value=value)
            else:  # 0.3 wrote -1 (or null) for "any size", mostly for the batch
                size = Size("free") if letter == "b" else Size("unknown")
        elif isinstance(shape, dict) and reference is not None:
            scale = _float(_pick(shape.get("scale"), j, 1.0), None)
            offset = _float(_pick(shape.get("offset"), j, 0.0), 0.0)
            if scale is None:  # a new axis: its size is 2·offset
                value = 2 * offset
                size = Size("fixed", value=int(value)) if value.is_integer() else Size("unknown")
            else:
                ref_axes = (reference_axes or {}).get(str(reference))
                if ref_axes is not None and letter not in ref_axes:  # 0.3 axes may differ (input yxc, output byxc)
                    size = Size("free") if letter == "b" else Size("unknown")
                else:
                    size = Size("reference", ref_tensor=str(reference), ref_axis=letter, scale=scale, offset=offset)
        elif isinstance(shape, dict) and "min" in shape:
            minimum, step = _int(_pick(shape.get("min"), j, None)), _int(_pick(shape.get("step"), j, 0))
            if letter == "b":  # 0.4: "the batch dimension can always be increased" (its step must be 0)
                size = Size("free")
            elif step == 0 and minimum is not None:
                size = Size("fixed", value=minimum)
            else:
                size = Size("parameterized", min=minimum, step=step)
        else:
            size = Size("unknown")
        views.append(
            AxisView(j, letter, V04_TYPES.get(letter), letter, size, halo=_int(_pick(halo, j, 0)) or 0, raw=letter)
        )
    return views


def _axis_v05(j: int, axis: Any) -> AxisView:
    if not isinstance(axis, dict):
        return AxisView(j, None, None, None, Size("unknown"), raw=axis)
    axis_type, axis_id = axis.get("type"), axis.get("id")
    if axis_type is None:
        letter = None  # JDLL dereferences the missing type (AxisV05)
    elif axis_type == "batch":
        letter = "b"
    elif axis_id == "channel" or axis_type == "channel":
        letter = "c"
    else:
        letter = str(axis_id) if axis_id is not None else None
    raw_size = axis.get("size")
    if axis_type == "channel":
        names = axis.get("channel_names")
        size = Size("fixed", value=len(names)) if isinstance(names, list) else Size("unknown")
    elif raw_size is None:
        size = Size("free") if axis_type == "batch" else Size("unknown")
    elif isinstance(raw_size, int) and not isinstance(raw_size, bool):
        size = Size("fixed", value=raw_size)
    elif isinstance(raw_size, dict) and "tensor_id" in raw_size:
        size = Size(
            "reference",
            ref_tensor=str(raw_size["tensor_id"]),
            ref_axis=_str(raw_size.get("axis_id")),
            scale=_float(axis.get("scale"), 1.0),
            offset=_float(raw_size.get("offset"), 0.0),
        )
    elif isinstance(raw_size, dict) and "step" in raw_size:
        size = Size("parameterized", min=_int(raw_size.get("min")), step=_int(raw_size.get("step")))
    elif isinstance(raw_size, dict):
        size = Size("data_dependent", min=_int(raw_size.get("min")))
    else:
        size = Size("unknown")
    return AxisView(
        j,
        letter,
        _str(axis_type),
        _str(axis_id),
        size,
        halo=_int(axis.get("halo")) or 0,
        scale=_float(axis.get("scale"), 1.0),
        raw=axis,
    )


def weights(rdf: dict) -> dict[str, dict]:
    """weight format -> its entry; entries that are not mappings are left out."""
    entries = rdf.get("weights")
    if not isinstance(entries, dict):
        return {}
    return {str(name): entry for name, entry in entries.items() if isinstance(entry, dict)}


def runnable_formats(rdf: dict) -> list[str]:
    allowed = RUNNABLE_FORMATS_V05 if spec_version(rdf) == "0.5" else RUNNABLE_FORMATS_V04
    return [name for name in weights(rdf) if name in allowed]


def deepimagej_config(rdf: dict) -> dict | None:
    config = rdf.get("config")
    section = config.get("deepimagej") if isinstance(config, dict) else None
    return section if isinstance(section, dict) else None


def source_name(entry: dict) -> str | None:
    source = entry.get("source") if isinstance(entry, dict) else None
    return str(source) if isinstance(source, str) else None


def _pick(values, j: int, default):
    if isinstance(values, list):
        return values[j] if j < len(values) else default
    return values if values is not None else default


def _int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value, default):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


def _str(value) -> str | None:
    return None if value is None else str(value)


# --- reading the file: bounded before it is parsed ---------------------------------------------------------

MAX_RDF_BYTES = 4 * 1024**2  # real descriptions are a few KB; a larger one is refused unread
MAX_RDF_NODES = 200_000  # nodes after alias expansion ("billion laughs": a 1 KB file that expands to GBs)
MAX_RDF_DEPTH = 64


class RdfError(ValueError):
    """The rdf cannot be read as a description: one line saying why."""


def read_rdf(path: Path) -> dict:
    """The rdf as a plain dict, refused (RdfError) when the file is too large, not YAML, nests too deep or
    expands through aliases beyond MAX_RDF_NODES nodes; the size is checked before reading and the expansion
    is counted on the composed node graph before any object is built."""
    from ruyaml import YAML

    path = Path(path)
    size = path.stat().st_size
    if size > MAX_RDF_BYTES:
        raise RdfError(f"{path.name} is {size} bytes, more than the {MAX_RDF_BYTES} an rdf may have; refused unread")
    text = path.read_bytes().decode("utf-8", errors="replace")
    yaml = YAML(typ="safe")
    try:
        node = yaml.compose(text)
        _check_expansion(node, path.name)
        rdf = yaml.load(text)
    except RdfError:
        raise
    except Exception as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise RdfError(f"{path.name} is not readable YAML ({type(e).__name__}: {first_line})") from e
    if not isinstance(rdf, dict):
        raise RdfError(f"{path.name} holds a {type(rdf).__name__}, expected a mapping")
    return rdf


def _check_expansion(root, name: str) -> None:
    """Count the nodes the document expands to, each shared (aliased) node as often as it is used, without
    expanding: memoised per node, so a bomb is measured in microseconds."""
    sizes: dict[int, int] = {}

    def size_of(node, depth: int) -> int:
        if depth > MAX_RDF_DEPTH:
            raise RdfError(f"{name} nests deeper than {MAX_RDF_DEPTH} levels; refused")
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = MAX_RDF_NODES + 1  # a node that contains itself expands forever
        value = node.value
        total = 1
        if isinstance(value, list):
            for item in value:
                children = item if isinstance(item, tuple) else (item,)
                for child in children:
                    total += size_of(child, depth + 1)
                    if total > MAX_RDF_NODES:
                        break
        sizes[key] = total
        return total

    if root is not None and size_of(root, 0) > MAX_RDF_NODES:
        raise RdfError(
            f"{name} expands to more than {MAX_RDF_NODES} nodes through YAML aliases (an alias bomb?); refused"
        )


def format_version(rdf: dict) -> tuple[int, ...]:
    """(0, 4, 10) for "0.4.10"; () when absent or unreadable."""
    parts = []
    for part in str(rdf.get("format_version", "")).split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


# --- weights and the files an rdf names ------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """Where a pytorch_state_dict's network comes from: a file in the package and a callable in it, or an
    importable module (`import_from`). `problem` says why the reference is unusable, statically."""

    source: str | None  # file in the package (or URL)
    callable: str | None
    import_from: str | None
    sha256: str | None
    location: str
    problem: str | None = None


@dataclass(frozen=True)
class WeightsEntry:
    format: str  # canonical name (0.3's pytorch_script is torchscript)
    source: str | None
    sha256: str | None
    raw: dict = field(repr=False)
    architecture: Architecture | None = None

    @property
    def is_url(self) -> bool:
        return self.source is not None and is_url(self.source)


def weight_entries(rdf: dict) -> dict[str, WeightsEntry]:
    """Canonical weight format -> its entry, with the architecture for state dicts (0.3 keeps it at the top)."""
    out = {}
    for name, entry in weights(rdf).items():
        canonical = formats.canonical(name)
        architecture = None
        if canonical == "pytorch_state_dict":
            architecture = _architecture(rdf, entry, name)
        out[canonical] = WeightsEntry(
            canonical, _text(entry.get("source")), _text(entry.get("sha256")), entry, architecture
        )
    return out


def _architecture(rdf: dict, entry: dict, name: str) -> Architecture:
    raw, location, sha = entry.get("architecture"), f"weights.{name}.architecture", entry.get("architecture_sha256")
    if raw is None and "source" in rdf and format_version(rdf)[:2] == (0, 3):
        raw, location, sha = rdf.get("source"), "source", rdf.get("sha256")
    if isinstance(raw, dict):  # 0.5
        callable_ = _text(raw.get("callable"))
        if raw.get("import_from") is not None:
            return Architecture(None, callable_, _text(raw.get("import_from")), None, location)
        return Architecture(
            _text(raw.get("source")),
            callable_,
            None,
            _text(raw.get("sha256")),
            location,
            None if raw.get("source") else "names no source file",
        )
    if not isinstance(raw, str) or not raw:
        return Architecture(None, None, None, None, location, "is missing")
    # 0.3/0.4: "file.py:Callable" for a file in the package, "package.module.Callable" for an importable one
    if ":" in raw.replace("://", "") or raw.endswith(".py"):
        source, _, callable_ = raw.rpartition(":") if not is_url(raw) else raw.rpartition(":")
        problem = None
        if not source or not callable_:
            source, callable_ = (source or raw), (callable_ or None)
            problem = f"{raw!r} is not written `file.py:Callable`"
        elif not callable_.isidentifier():
            problem = f"{raw!r}: {callable_!r} is not a Python name (write `file.py:Callable`)"
        elif source.endswith(":"):
            problem = f"{raw!r} is not written `file.py:Callable`"
        return Architecture(source, callable_, None, _text(sha), location, problem)
    module, _, callable_ = raw.rpartition(".")
    if not module or not all(p.isidentifier() for p in raw.split(".")):
        problem = f"{raw!r} is neither `file.py:Callable` nor `module.Callable`"
        return Architecture(None, None, None, None, location, problem)
    return Architecture(None, callable_, module, None, location)


@dataclass(frozen=True)
class FileRef:
    """A file the rdf names. `role`: weights, architecture, test_tensor, sample, documentation, cover,
    attachment, dependencies, other. `needed` is True for what running and reproducing the model reads."""

    location: str
    source: str
    sha256: str | None
    role: str
    needed: bool
    weight_format: str | None = None

    @property
    def is_url(self) -> bool:
        return is_url(self.source)


def referenced_files(rdf: dict) -> list[FileRef]:
    """Every file the rdf names, read from the raw description (any format version, valid or not)."""
    found: list[FileRef] = []

    def add(location: str, value, role: str, needed: bool, sha=None, weight_format=None) -> None:
        if isinstance(value, dict):  # 0.5 file descriptions: {source, sha256}
            value, sha = value.get("source"), value.get("sha256", sha)
        if isinstance(value, str) and value.strip():
            found.append(FileRef(location, value.strip(), _text(sha), role, needed, weight_format))

    for name, entry in weight_entries(rdf).items():
        add(f"weights.{name}", entry.source, "weights", True, entry.sha256, name)
        arch = entry.architecture
        if arch is not None and arch.source and arch.problem is None:
            add(arch.location, arch.source, "architecture", True, arch.sha256, name)
        deps = entry.raw.get("dependencies")
        if isinstance(deps, str) and deps.startswith(("conda:", "pip:")):
            deps = deps.split(":", 1)[1]
        add(f"weights.{name}.dependencies", deps, "dependencies", False, None, name)
    for kind, test_key, sample_key in (
        ("inputs", "test_inputs", "sample_inputs"),
        ("outputs", "test_outputs", "sample_outputs"),
    ):
        for key, role, needed in ((test_key, "test_tensor", True), (sample_key, "sample", False)):
            values = rdf.get(key)
            for i, value in enumerate(values if isinstance(values, list) else []):
                add(f"{key}.{i}", value, role, needed)
        for i, tensor in enumerate(rdf.get(kind) if isinstance(rdf.get(kind), list) else []):
            if isinstance(tensor, dict):
                add(f"{kind}.{i}.test_tensor", tensor.get("test_tensor"), "test_tensor", True)
                add(f"{kind}.{i}.sample_tensor", tensor.get("sample_tensor"), "sample", False)
    add("documentation", rdf.get("documentation"), "documentation", False)
    for i, cover in enumerate(rdf.get("covers") if isinstance(rdf.get("covers"), list) else []):
        add(f"covers.{i}", cover, "cover", False)
    attachments = rdf.get("attachments")
    if isinstance(attachments, dict):  # 0.3/0.4: {files: [...]}
        attachments = attachments.get("files")
    for i, attachment in enumerate(attachments if isinstance(attachments, list) else []):
        add(f"attachments.{i}", attachment, "attachment", False)
    return found


def _text(value) -> str | None:
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
