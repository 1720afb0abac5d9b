"""DIJ05–DIJ15: weight formats and the engines Fiji runs them on, settled from the weight files where they say so."""

from __future__ import annotations

import re
from collections.abc import Iterator

from zoo.bioimage.rdf import (
    NEVER_RUN_FORMATS,
    RUNNABLE_FORMATS_V05,
    runnable_formats,
    source_name,
    spec_version,
    tensors,
    weights,
)
from zoo.bioimage.weight_files import UnreadableWeights, read_onnx, read_saved_model, read_torchscript
from zoo.validators.checks.deepimagej.common import (
    TF_FORMAT,
    TORCHSCRIPT_FORMATS,
    VANISHES,
    absent_weight_finding,
    dij,
    entries,
    weight_absent,
    weight_path,
)
from zoo.validators.context import PackageUnderTest
from zoo.validators.deepimagej import engines
from zoo.validators.deepimagej.engines import EngineChoice, engine_for, version_tuple
from zoo.validators.deepimagej.known_ops import (
    LIBTORCH_MAX_FILE_FORMAT_VERSION,
    TF_ATTRS_ADDED_AFTER_2_7,
    TF_OPS,
    TF_OPS_NEWER_THAN_ENGINES,
    TORCH_ATEN_OPS,
    TORCH_PRIM_OPS,
)
from zoo.validators.registry import Finding, failed, passed, skipped

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


@dij(
    "DIJ07",
    "risk",
    "TorchScript loads in the libtorch engine Fiji picks (1.13.1 or 2.0.0)",
    "Save TorchScript with torch ≤ 2.0, or keep to operators libtorch 2.0 has.",
)
def check_torchscript_engine_compatible(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_torchscript_engine_compatible.rule
    torchscript = entries(pkg, TORCHSCRIPT_FORMATS)
    if not torchscript:
        yield passed(rule_, "no TorchScript weights")
        return
    for name, entry in torchscript:
        location = f"weights.{name}"
        choice = engine_for(name, entry)
        if choice.engine is None:
            yield skipped(rule_, f"no pytorch engine for version {choice.declared} (see DIJ05)", location)
            continue
        path = weight_path(pkg, entry)
        if path is None:
            yield absent_weight_finding(
                pkg, rule_, name, entry, f"whether libtorch {choice.engine} loads the TorchScript is read from its file"
            )
            continue
        details = {"engine": choice.label(), "pytorch_version": choice.declared}
        try:
            content = read_torchscript(path)
        except UnreadableWeights as e:
            yield failed(rule_, f"{e}: libtorch {choice.engine} will fail to load it in Fiji", location, **details)
            continue
        max_version = (
            LIBTORCH_MAX_FILE_FORMAT_VERSION[choice.engine]
            if choice.engine in (LIBTORCH_MAX_FILE_FORMAT_VERSION)
            else 10
        )
        unknown = sorted(op for op in content.ops if not _torch_op_known(op))
        details.update(
            file_format_version=content.file_format_version,
            max_file_format_version=max_version,
            ops=len(content.ops),
            unknown_ops=unknown,
        )
        newer = (version_tuple(choice.declared or "") or (0,)) > (version_tuple(choice.engine) or (0,))
        saved_by = f"{path.name} (pytorch_version {choice.declared})"
        if content.file_format_version is not None and content.file_format_version > max_version:
            yield failed(
                rule_,
                f"{saved_by} has archive file-format version {content.file_format_version}, "
                f"libtorch {choice.engine} reads ≤ {max_version}: the model will not load in Fiji",
                location,
                **details,
            )
        elif newer and content.file_format_version is None:
            yield failed(
                rule_,
                f"{saved_by} has no archive version record, so whether libtorch {choice.engine} "
                "reads it is unknown: it may fail to load in Fiji",
                location,
                **details,
            )
        elif newer and unknown:
            yield failed(
                rule_,
                f"{saved_by} runs on libtorch {choice.engine}; {len(unknown)} of its "
                f"{len(content.ops)} operators are not on our list of operators libtorch "
                f"{choice.engine} has ({', '.join(unknown[:8])}): it may fail to load in Fiji with "
                "'Unknown builtin op'",
                location,
                **details,
            )
        elif newer:
            yield passed(
                rule_,
                f"{saved_by} runs on libtorch {choice.engine}: archive file-format version "
                f"{content.file_format_version} ≤ {max_version} and all {len(content.ops)} "
                f"operators are in libtorch {choice.engine}",
                location,
                **details,
            )
        else:
            yield passed(
                rule_, f"{saved_by} runs on libtorch {choice.engine}, not older than the file", location, **details
            )


def _torch_op_known(op: str) -> bool:
    namespace, _, name = op.partition("::")
    return (namespace == "aten" and name in TORCH_ATEN_OPS) or (namespace == "prim" and name in TORCH_PRIM_OPS)


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
    "DIJ09",
    "error",
    "TF SavedModel weights state tensorflow_version",
    "Add tensorflow_version (quoted) to the tensorflow_saved_model_bundle entry.",
)
def check_tensorflow_version_stated(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_tensorflow_version_stated.rule
    entry = weights(pkg.rdf).get(TF_FORMAT)
    if entry is None:
        yield passed(rule_, "no TensorFlow weights")
    elif entry.get("tensorflow_version") is None:
        yield failed(
            rule_,
            f"weights.{TF_FORMAT} has no tensorflow_version: JDLL cannot choose an engine, the whole "
            f"rdf fails to parse and {VANISHES}",
            f"weights.{TF_FORMAT}",
            tensorflow_version=None,
        )
    else:
        yield passed(
            rule_,
            f"tensorflow_version {entry['tensorflow_version']!r}",
            f"weights.{TF_FORMAT}",
            tensorflow_version=entry["tensorflow_version"],
        )


@dij(
    "DIJ10",
    "risk",
    "the SavedModel loads in the TF engine Fiji picks (1.15.0 or 2.7.0)",
    "Save the SavedModel with TF ≤ 2.7, or keep to ops and attributes TF 2.7 knows.",
)
def check_tensorflow_engine_compatible(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_tensorflow_engine_compatible.rule
    entry = weights(pkg.rdf).get(TF_FORMAT)
    location = f"weights.{TF_FORMAT}"
    if entry is None:
        yield passed(rule_, "no TensorFlow weights")
        return
    choice = engine_for(TF_FORMAT, entry)
    if choice.declared is None:
        yield skipped(rule_, "no tensorflow_version (see DIJ09)", location)
        return
    if choice.engine is None:
        yield skipped(rule_, f"no tensorflow engine for version {choice.declared} (see DIJ05)", location)
        return
    macro_engine = engines.MACRO_ONLY_ENGINES["tensorflow"][0]
    details = {
        "engine": choice.label(),
        "tensorflow_version": choice.declared,
        "macro_engine": f"tensorflow {macro_engine} (needs Java 11)",
    }
    engine_version = version_tuple(choice.engine) or (0,)
    try:
        content = read_saved_model(pkg.root, source_name(entry))
    except UnreadableWeights as e:
        if (version_tuple(choice.declared) or (0,)) <= engine_version:
            yield passed(
                rule_, f"tensorflow_version {choice.declared} runs on TF {choice.engine} ({e})", location, **details
            )
        elif weight_absent(pkg, entry):
            yield absent_weight_finding(
                pkg,
                rule_,
                TF_FORMAT,
                entry,
                f"tensorflow_version {choice.declared} is newer than TF {choice.engine}, and "
                "whether the SavedModel loads there is read from its ops",
            )
        else:
            yield failed(
                rule_,
                f"tensorflow_version {choice.declared} is newer than TF {choice.engine}, the engine "
                f"Fiji's GUI installs, and the SavedModel could not be inspected ({e}): it may fail "
                "to load in Fiji",
                location,
                **details,
            )
        return
    writer = content.tensorflow_version or choice.declared
    writer_version = version_tuple(writer) or (0,)
    absent = sorted(content.ops & TF_OPS_NEWER_THAN_ENGINES)
    unknown = sorted(op for op in content.ops if op not in TF_OPS and op not in TF_OPS_NEWER_THAN_ENGINES)
    new_attrs = sorted(
        f"{op}.{attr}" for op, attr in content.attrs if attr in TF_ATTRS_ADDED_AFTER_2_7.get(op, frozenset())
    )
    details.update(
        writer_version=writer, ops=len(content.ops), absent_ops=absent, unknown_ops=unknown, new_attrs=new_attrs
    )
    if writer_version[0] != engine_version[0]:
        yield failed(
            rule_,
            f"the SavedModel was written by TF {writer} but tensorflow_version {choice.declared} "
            f"sends it to TF {choice.engine}: it will fail to load in Fiji",
            location,
            **details,
        )
    elif writer_version <= engine_version:
        yield passed(rule_, f"written by TF {writer}, runs on TF {choice.engine}", location, **details)
    elif absent or unknown or new_attrs:
        parts = []
        if absent:
            parts.append(f'op types {", ".join(absent)} do not exist there ("Op type not registered")')
        if unknown:
            parts.append(f"op types {', '.join(unknown[:8])} are not on our list of ops TF 2.7 has")
        if new_attrs:
            parts.append(f'attributes {", ".join(new_attrs)} were added after TF 2.7 ("NodeDef mentions attr")')
        outcome = "will not load" if absent else "may fail to load"
        yield failed(
            rule_,
            f"written by TF {writer}, Fiji's GUI runs it on TF {choice.engine}: {'; '.join(parts)}: "
            f"the TensorFlow weights {outcome} in Fiji",
            location,
            **details,
        )
    else:
        yield passed(
            rule_,
            f"written by TF {writer}, runs on TF {choice.engine}: all {len(content.ops)} op types are "
            "in TF 2.7 and no node sets an attribute added later",
            location,
            **details,
        )


@dij(
    "DIJ11",
    "error",
    "the SavedModel has tag serve, signature serving_default, and saved_model.pb + variables/ at the zip root",
    "Save with tf.saved_model.save(..., signatures={'serving_default': f}) and zip the SavedModel folder's content.",
)
def check_savedmodel_layout_expected(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_savedmodel_layout_expected.rule
    entry = weights(pkg.rdf).get(TF_FORMAT)
    location = f"weights.{TF_FORMAT}"
    if entry is None:
        yield passed(rule_, "no TensorFlow weights")
        return
    if weight_absent(pkg, entry):
        yield absent_weight_finding(
            pkg, rule_, TF_FORMAT, entry, "the SavedModel's layout, tags and signatures are read from its file"
        )
        return
    try:
        content = read_saved_model(pkg.root, source_name(entry))
    except UnreadableWeights as e:
        yield failed(rule_, f"{e}: the TensorFlow model will not load in Fiji", location, reason=str(e))
        return
    members = sorted(content.root_members)
    details = {
        "where": content.where,
        "root_members": members[:20],
        "tags": [sorted(t) for t in content.tags],
        "signatures": sorted(content.signatures),
    }
    missing = [m for m in ("saved_model.pb", "variables/") if m not in content.root_members]
    problems = 0
    if missing:
        problems += 1
        yield failed(
            rule_,
            f"the {content.where} holds {members[:8]} at its root, expected saved_model.pb and "
            f"variables/ there (missing {missing}): the TensorFlow model will not load in Fiji",
            location,
            missing=missing,
            **details,
        )
    if content.tags and not any("serve" in tags for tags in content.tags):
        problems += 1
        yield failed(
            rule_,
            f"saved_model.pb has tags {details['tags']}, expected a meta graph tagged 'serve': the "
            "TensorFlow model will not load in Fiji",
            location,
            **details,
        )
    elif content.tags and "serving_default" not in content.signatures:
        problems += 1
        yield failed(
            rule_,
            f"the 'serve' meta graph has signatures {details['signatures']}, expected "
            "'serving_default': deepImageJ finds no inputs and outputs to run",
            location,
            **details,
        )
    if not problems:
        yield passed(
            rule_,
            "SavedModel tagged serve with signature serving_default, saved_model.pb and variables/ at the root",
            location,
            **details,
        )


@dij(
    "DIJ12",
    "wrong",
    "TF signature keys equal the rdf tensor ids",
    "Name the serving_default inputs and outputs after the rdf tensor ids.",
)
def check_signature_keys_match(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_signature_keys_match.rule
    entry = weights(pkg.rdf).get(TF_FORMAT)
    if entry is None:
        yield passed(rule_, "no TensorFlow weights")
        return
    if weight_absent(pkg, entry):
        yield absent_weight_finding(pkg, rule_, TF_FORMAT, entry, "the signature keys are read from the SavedModel")
        return
    try:
        signature = read_saved_model(pkg.root, source_name(entry)).signatures.get("serving_default")
    except UnreadableWeights:
        signature = None
    if signature is None:
        yield skipped(rule_, "no readable serving_default signature (see DIJ11)", f"weights.{TF_FORMAT}")
        return
    problems = 0
    for kind, keys in (("inputs", sorted(signature.inputs)), ("outputs", sorted(signature.outputs))):
        ids = [t.tensor_id for t in tensors(pkg.rdf, kind)]
        if set(keys) == set(ids):
            continue
        if len(ids) > 1 or len(keys) > 1:
            problems += 1
            yield failed(
                rule_,
                f"serving_default {kind} keys {keys}, rdf {kind} ids {ids}: deepImageJ then matches "
                f"them by position, so {kind} can be swapped and the numbers are wrong",
                f"weights.{TF_FORMAT}",
                kind=kind,
                keys=keys,
                ids=ids,
            )
    if not problems:
        yield passed(
            rule_,
            "signature keys match the tensor ids (or one tensor each, matched by position)",
            f"weights.{TF_FORMAT}",
            inputs=sorted(signature.inputs),
            outputs=sorted(signature.outputs),
        )


@dij(
    "DIJ13",
    "error",
    "ONNX opset 8–17 and IR version ≤ 8 (the GUI's onnxruntime 1.12.1 engine)",
    "Export ONNX at opset 17 or lower and save it with IR version 8 or lower.",
)
def check_onnx_opset_supported(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_onnx_opset_supported.rule
    entry = weights(pkg.rdf).get("onnx")
    location = "weights.onnx"
    if entry is None:
        yield passed(rule_, "no ONNX weights")
        return
    path = weight_path(pkg, entry)
    choice = engine_for("onnx", entry)
    if path is None:
        yield absent_weight_finding(pkg, rule_, "onnx", entry, "the opset and IR version are read from the ONNX file")
        return
    try:
        content = read_onnx(path)
    except UnreadableWeights as e:
        yield failed(rule_, f"{e}: the model will not load in Fiji", location, engine=choice.label())
        return
    details = {
        "opset": content.opset,
        "ir_version": content.ir_version,
        "declared_opset": entry.get("opset_version"),
        "engine": choice.label(),
        "max_opset": engines.ONNX_GUI_MAX_OPSET,
        "max_ir_version": engines.ONNX_MAX_IR_VERSION,
    }
    problems = 0
    opset = content.opset
    if opset is None or not engines.ONNX_MIN_OPSET <= opset <= engines.ONNX_GUI_MAX_OPSET:
        problems += 1
        extra = " (the opset-18 engine exists but the GUI does not install it)" if opset == 18 else ""
        yield failed(
            rule_,
            f"{path.name} opset {opset}, deepImageJ's engine reads opset "
            f"{engines.ONNX_MIN_OPSET} to {engines.ONNX_GUI_MAX_OPSET}{extra}: the model will not load "
            "in Fiji",
            location,
            **details,
        )
    if content.ir_version > engines.ONNX_MAX_IR_VERSION:
        problems += 1
        yield failed(
            rule_,
            f"{path.name} IR version {content.ir_version}, onnxruntime 1.12.1 reads IR ≤ "
            f"{engines.ONNX_MAX_IR_VERSION}: the model will not load in Fiji",
            location,
            **details,
        )
    for kind, graph in (("inputs", content.inputs), ("outputs", content.outputs)):
        ids = [t.tensor_id for t in tensors(pkg.rdf, kind)]
        names = [name for name, _ in graph]
        if len(names) != len(ids):
            problems += 1
            yield failed(
                rule_,
                f"{path.name} has {len(names)} graph {kind} {names}, the rdf {len(ids)} {ids}; "
                "deepImageJ binds them by position: the model will not run in Fiji",
                location,
                kind=kind,
                graph=names,
                ids=ids,
                **details,
            )
        elif set(names) == set(ids) and names != ids:
            problems += 1
            yield failed(
                rule_,
                f"{path.name} graph {kind} are ordered {names}, the rdf lists {ids}; deepImageJ binds "
                f"them by position, so {kind} are swapped in Fiji",
                location,
                kind=kind,
                graph=names,
                ids=ids,
                **details,
            )
    if not problems:
        yield passed(
            rule_,
            f"{path.name} opset {opset}, IR version {content.ir_version}: runs on {choice.label()}",
            location,
            **details,
        )


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
