"""One faithful reading of a package description, formats 0.3, 0.4 and 0.5, for every stage: the file itself,
bounded before it is parsed, and its format version. The views on what it describes live beside it:
`zoo.bioimage.rdf_tensors` (tensors and axes) and `zoo.bioimage.rdf_weights` (weights, their architectures and
every file the rdf names).

Works on the yaml dict (read with `read_rdf`: bounded before it is parsed), never on bioimageio.spec's upgrade
to 0.5, which drops what it cannot express (a fixed batch of 0.4 shapes) or rejects whole packages (an output
with a halo and a fixed size, an invalid `cite` URL). Never raises on odd values: what it cannot read it reports
as None or "unknown"."""

from __future__ import annotations

from pathlib import Path


def spec_version(rdf: dict) -> str | None:
    """ "0.4" or "0.5" as JDLL decides it (the start of format_version); None for anything else."""
    text = str(rdf.get("format_version", ""))
    for version in ("0.4", "0.5"):
        if text.startswith(version):
            return version
    return None


def format_version(rdf: dict) -> tuple[int, ...]:
    """(0, 4, 10) for "0.4.10"; () when absent or unreadable."""
    parts = []
    for part in str(rdf.get("format_version", "")).split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def deepimagej_config(rdf: dict) -> dict | None:
    config = rdf.get("config")
    section = config.get("deepimagej") if isinstance(config, dict) else None
    return section if isinstance(section, dict) else None


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
