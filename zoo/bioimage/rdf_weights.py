"""The weights an rdf lists (formats 0.3, 0.4 and 0.5, read from the raw yaml dict of
`zoo.bioimage.rdf.read_rdf`), with their files and architecture sources, and every file the rdf names, with the
role it plays. Never raises on odd values: what it cannot read it reports as None."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from zoo.bioimage import formats
from zoo.bioimage.files import is_url
from zoo.bioimage.rdf import format_version, spec_version

RUNNABLE_FORMATS_V04 = ("torchscript", "pytorch_script", "onnx", "tensorflow_saved_model_bundle")
RUNNABLE_FORMATS_V05 = (*RUNNABLE_FORMATS_V04, "pytorch_state_dict")
NEVER_RUN_FORMATS = ("keras_hdf5", "tensorflow_js", "keras_v3")  # JDLL never runs these (keras_v3: unknown to it)


def weights(rdf: dict) -> dict[str, dict]:
    """weight format -> its entry; entries that are not mappings are left out."""
    entries = rdf.get("weights")
    if not isinstance(entries, dict):
        return {}
    return {str(name): entry for name, entry in entries.items() if isinstance(entry, dict)}


def runnable_formats(rdf: dict) -> list[str]:
    allowed = RUNNABLE_FORMATS_V05 if spec_version(rdf) == "0.5" else RUNNABLE_FORMATS_V04
    return [name for name in weights(rdf) if name in allowed]


def source_name(entry: dict) -> str | None:
    source = entry.get("source") if isinstance(entry, dict) else None
    return str(source) if isinstance(source, str) else None


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
    named = [*_weight_files(rdf), *_tensor_files(rdf), *_other_files(rdf)]
    return [ref for ref in named if ref is not None]


def _file_ref(location: str, value, role: str, needed: bool, sha=None, weight_format=None) -> FileRef | None:
    """The file `value` names (a path or URL, or 0.5's {source, sha256}); None when it names none."""
    if isinstance(value, dict):  # 0.5 file descriptions: {source, sha256}
        value, sha = value.get("source"), value.get("sha256", sha)
    if isinstance(value, str) and value.strip():
        return FileRef(location, value.strip(), _text(sha), role, needed, weight_format)
    return None


def _weight_files(rdf: dict) -> Iterator[FileRef | None]:
    for name, entry in weight_entries(rdf).items():
        yield _file_ref(f"weights.{name}", entry.source, "weights", True, entry.sha256, name)
        arch = entry.architecture
        if arch is not None and arch.source and arch.problem is None:
            yield _file_ref(arch.location, arch.source, "architecture", True, arch.sha256, name)
        deps = entry.raw.get("dependencies")
        if isinstance(deps, str) and deps.startswith(("conda:", "pip:")):
            deps = deps.split(":", 1)[1]
        yield _file_ref(f"weights.{name}.dependencies", deps, "dependencies", False, None, name)


def _tensor_files(rdf: dict) -> Iterator[FileRef | None]:
    for kind, test_key, sample_key in (
        ("inputs", "test_inputs", "sample_inputs"),
        ("outputs", "test_outputs", "sample_outputs"),
    ):
        for key, role, needed in ((test_key, "test_tensor", True), (sample_key, "sample", False)):
            for i, value in enumerate(_list(rdf.get(key))):
                yield _file_ref(f"{key}.{i}", value, role, needed)
        for i, tensor in enumerate(_list(rdf.get(kind))):
            if isinstance(tensor, dict):
                yield _file_ref(f"{kind}.{i}.test_tensor", tensor.get("test_tensor"), "test_tensor", True)
                yield _file_ref(f"{kind}.{i}.sample_tensor", tensor.get("sample_tensor"), "sample", False)


def _other_files(rdf: dict) -> Iterator[FileRef | None]:
    yield _file_ref("documentation", rdf.get("documentation"), "documentation", False)
    for i, cover in enumerate(_list(rdf.get("covers"))):
        yield _file_ref(f"covers.{i}", cover, "cover", False)
    attachments = rdf.get("attachments")
    if isinstance(attachments, dict):  # 0.3/0.4: {files: [...]}
        attachments = attachments.get("files")
    for i, attachment in enumerate(_list(attachments)):
        yield _file_ref(f"attachments.{i}", attachment, "attachment", False)


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _text(value) -> str | None:
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
