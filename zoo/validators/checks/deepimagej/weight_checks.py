"""DIJ05, DIJ06, DIJ08, DIJ14, DIJ15: which weight formats deepImageJ runs and on which engine, the blocklist,
framework versions as written, the pytorch_state_dict fallback and the StarDist path. The checks of one weight
file's content are in torchscript_checks (DIJ07), tensorflow_checks (DIJ09–DIJ12) and onnx_checks (DIJ13)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from zoo.bioimage.rdf import spec_version
from zoo.bioimage.rdf_weights import NEVER_RUN_FORMATS, RUNNABLE_FORMATS_V05, runnable_formats, source_name, weights
from zoo.bioimage.weight_files import UnreadableWeights, read_saved_model, read_torchscript
from zoo.validators.checks.deepimagej.common import TF_FORMAT, TORCHSCRIPT_FORMATS, dij, weight_path
from zoo.validators.context import PackageUnderTest
from zoo.validators.deepimagej import engines
from zoo.validators.deepimagej.engines import EngineChoice, engine_for
from zoo.validators.deepimagej.known_ops import LIBTORCH_MAX_FILE_FORMAT_VERSION, TF_OPS_NEWER_THAN_ENGINES
from zoo.validators.registry import Finding, failed, passed

# deepImageJ's Gui.UNSUPPORTED_MODELS (JDLL 0.6.1, io.bioimage.modelrunner.gui.Gui)
BLOCKLIST = frozenset(
    """idealistic-rat diplomatic-bug resourceful-lizard famous-fish happy-elephant affectionate-cow
faithful-chicken humorous-crab noisy-ox greedy-whale efficient-chipmunk philosophical-panda amiable-crocodile
loyal-parrot conscientious-seashell straightforward-crocodile polite-pig""".split()
)


@dij(
    "DIJ05",
    "error",
    "at least one weight format deepImageJ runs, each with an engine",
    "Ship torchscript or onnx (or a TF SavedModel) with a framework version an engine exists for.",
)
def check_weight_format_runnable(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_weight_format_runnable.rule
    formats = sorted(weights(pkg.rdf))
    runnable = runnable_formats(pkg.rdf)
    if not runnable:
        why = " (pytorch_state_dict runs only from format 0.5)" if "pytorch_state_dict" in formats else ""
        yield failed(
            rule_,
            f"weights {formats}: none runs in deepImageJ, which runs torchscript, onnx, "
            f"tensorflow_saved_model_bundle and, in format 0.5, pytorch_state_dict{why}: the model "
            "cannot run in Fiji",
            "weights",
            formats=formats,
            runnable=[],
        )
        return
    chosen: dict[str, str] = {}
    problems = 0
    for name in runnable:
        choice = engine_for(name, weights(pkg.rdf)[name])
        chosen[name] = choice.label()
        if choice.engine is None:
            problems += 1
            available = engines.AVAILABLE_ENGINES[choice.framework]
            yield failed(
                rule_,
                f"weights.{name} {choice.framework} version {choice.declared}: JDLL has no "
                f"{choice.framework} engine of that major version (it has {', '.join(available)}): "
                "this format cannot load in Fiji",
                f"weights.{name}",
                format=name,
                declared=choice.declared,
                engine=None,
            )
        else:
            reason = _cannot_load(pkg, name, weights(pkg.rdf)[name], choice)
            if reason:
                problems += 1
                yield failed(
                    rule_,
                    f"weights.{name}: {reason}; deepImageJ may pick this format, and then the model "
                    "does not load in Fiji",
                    f"weights.{name}",
                    format=name,
                    engine=choice.label(),
                    reason=reason,
                )
    ignored = [name for name in formats if name in NEVER_RUN_FORMATS]
    note = f"; {ignored} are never run" if ignored else ""
    if not problems:
        yield passed(
            rule_,
            f"runnable: {', '.join(f'{k} on {v}' for k, v in chosen.items())}{note}",
            "weights",
            engines=chosen,
            ignored=ignored,
        )


def _cannot_load(pkg: PackageUnderTest, name: str, entry: dict, choice: EngineChoice) -> str | None:
    """Why the file's content proves that its engine cannot load it (DIJ07, DIJ10 give the details); None if not."""
    if name in TORCHSCRIPT_FORMATS and (path := weight_path(pkg, entry)) is not None:
        try:
            version = read_torchscript(path).file_format_version
        except UnreadableWeights:
            return None
        most = LIBTORCH_MAX_FILE_FORMAT_VERSION.get(choice.engine or "")
        if version is not None and most is not None and version > most:
            return f"archive file-format version {version}, libtorch {choice.engine} reads ≤ {most} (see DIJ07)"
    if name == TF_FORMAT:
        try:
            ops = read_saved_model(pkg.root, source_name(entry)).ops
        except UnreadableWeights:
            return None
        absent = sorted(ops & TF_OPS_NEWER_THAN_ENGINES)
        if absent:
            return f"the SavedModel uses {', '.join(absent)}, which TF {choice.engine} lacks (see DIJ10)"
    return None


@dij(
    "DIJ06",
    "error",
    "the model id is not on deepImageJ's blocklist",
    "Publish under another id; deepImageJ refuses to run these models.",
)
def check_model_id_not_blocklisted(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_model_id_not_blocklisted.rule
    config = pkg.rdf.get("config")
    bioimageio = config.get("bioimageio") if isinstance(config, dict) else None
    candidates = {
        "id": pkg.rdf.get("id"),
        "config.bioimageio.nickname": bioimageio.get("nickname") if isinstance(bioimageio, dict) else None,
    }
    for location, value in candidates.items():
        if isinstance(value, str) and value.split("/")[0] in BLOCKLIST:
            yield failed(
                rule_,
                f"{location} {value!r} is on deepImageJ's list of unsupported models: the GUI refuses to run it",
                location,
                model_id=value,
            )
            return
    model_id = candidates["id"] or candidates["config.bioimageio.nickname"]
    yield passed(rule_, "id not on the blocklist", model_id=model_id)


VERSION_KEYS = ("pytorch_version", "tensorflow_version")


@dij(
    "DIJ08",
    "wrong",
    "framework versions are YAML strings",
    'Quote framework versions, e.g. pytorch_version: "1.10"; an unquoted 1.10 is read as 1.1.',
)
def check_framework_versions_quoted(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_framework_versions_quoted.rule
    literals = _version_literals(pkg)
    problems = 0
    read_as_written: list[str] = []
    for name, entry in weights(pkg.rdf).items():
        if name not in (*RUNNABLE_FORMATS_V05, *TORCHSCRIPT_FORMATS):
            continue
        for key in VERSION_KEYS:
            value = entry.get(key)
            if value is None or isinstance(value, str):
                continue
            read_as = engines.jdll_version_string(value)
            written = next((lit for lit in literals.get(key, []) if _same_number(lit, value)), read_as)
            if written == read_as:  # 1.15 is read as "1.15": unquoted, but JDLL gets the version meant
                read_as_written.append(f"weights.{name}.{key} {written}")
                continue
            problems += 1
            framework = "pytorch" if key == "pytorch_version" else "tensorflow"
            available = engines.AVAILABLE_ENGINES[framework]
            engine_read = engines.most_compatible(framework, read_as, available)
            engine_meant = engines.most_compatible(framework, written, available)
            consequence = (
                f"JDLL picks the {framework} {engine_read} engine instead of {engine_meant}"
                if engine_read != engine_meant
                else "a version written this way can pick the wrong engine"
            )
            yield failed(
                rule_,
                f'weights.{name}.{key} is the unquoted YAML number {written}, read as "{read_as}": {consequence}',
                f"weights.{name}.{key}",
                written=written,
                read_as=read_as,
                engine_read=engine_read,
                engine_meant=engine_meant,
            )
    if not problems:
        note = f" or read as written ({', '.join(read_as_written)}, unquoted)" if read_as_written else ""
        yield passed(rule_, f"framework versions are strings{note}", read_as_written=read_as_written)


def _version_literals(pkg: PackageUnderTest) -> dict[str, list[str]]:
    """The version numbers exactly as written in the rdf text (the parsed float has lost `1.10`'s zero)."""
    try:
        text = pkg.opened.rdf_path.read_text(encoding="utf-8")
    except OSError:
        return {}
    out: dict[str, list[str]] = {}
    for match in re.finditer(
        r"^\s*(pytorch_version|tensorflow_version)\s*:\s*([0-9][0-9._]*)\s*(?:#.*)?$", text, re.MULTILINE
    ):
        out.setdefault(match.group(1), []).append(match.group(2))
    return out


def _same_number(literal: str, value) -> bool:
    try:
        return float(literal) == float(value)
    except ValueError:
        return False


@dij(
    "DIJ14",
    "risk",
    "pytorch_state_dict is not the only way to run the model",
    "Ship torchscript or onnx beside pytorch_state_dict; deepImageJ's Python fallback has a fixed environment.",
)
def check_state_dict_not_needed(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_state_dict_not_needed.rule
    entry = weights(pkg.rdf).get("pytorch_state_dict")
    location = "weights.pytorch_state_dict"
    if entry is None:
        yield passed(rule_, "no pytorch_state_dict weights")
        return
    if spec_version(pkg.rdf) != "0.5":
        yield passed(rule_, "format 0.4: deepImageJ never runs pytorch_state_dict (see DIJ05)", location)
        return
    others = [name for name in runnable_formats(pkg.rdf) if name != "pytorch_state_dict"]
    if others:
        yield passed(rule_, f"not used: deepImageJ runs {', '.join(others)}", location, used_instead=others)
        return
    architecture = entry.get("architecture")
    dependencies = entry.get("dependencies")
    details = {
        "architecture": architecture.get("callable") if isinstance(architecture, dict) else architecture,
        "dependencies": dependencies,
    }
    if not isinstance(architecture, dict) or not architecture.get("callable"):
        yield failed(
            rule_,
            f"pytorch_state_dict is the only runnable format and its architecture is "
            f"{architecture!r}, not a format-0.5 mapping with a callable: deepImageJ cannot build "
            "the model",
            location,
            **details,
        )
        return
    ignored = f"; its dependencies {dependencies!r} are ignored" if dependencies else ""
    yield failed(
        rule_,
        f"pytorch_state_dict is the only runnable format: deepImageJ runs "
        f"{architecture.get('callable')} in its own Python 3.10 environment (torch 2.4/2.2, biapy, "
        f"cellpose, careamics){ignored}: it fails in Fiji if the architecture needs anything else",
        location,
        **details,
    )


@dij(
    "DIJ15",
    "wrong",
    "the model is not routed to deepImageJ's StarDist path",
    "Remove 'stardist' from the name or config.stardist unless the model is a StarDist model.",
)
def check_stardist_routing_absent(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_stardist_routing_absent.rule
    name = pkg.rdf.get("name")
    config = pkg.rdf.get("config")
    named = isinstance(name, str) and "stardist" in name.lower()
    configured = isinstance(config, dict) and config.get("stardist") is not None
    if named and configured:
        yield failed(
            rule_,
            f"name {name!r} contains 'stardist' and config.stardist exists: deepImageJ runs it "
            "through its StarDist path with StarDist's own post-processing, not the rdf's",
            "name",
            name=name,
        )
    else:
        yield passed(rule_, "not routed to the StarDist path", name=name, config_stardist=configured)
