"""DIJ09–DIJ12: TensorFlow SavedModel weights: the stated version, the TF engine Fiji runs them on (settled from the
SavedModel's ops and attributes), the SavedModel's layout and its signature keys."""

from __future__ import annotations

from collections.abc import Iterator

from zoo.bioimage.rdf_tensors import tensors
from zoo.bioimage.rdf_weights import source_name, weights
from zoo.bioimage.weight_files import SavedModelContent, UnreadableWeights, read_saved_model
from zoo.validators.checks.deepimagej.common import TF_FORMAT, VANISHES, absent_weight_finding, dij, weight_absent
from zoo.validators.context import PackageUnderTest
from zoo.validators.deepimagej import engines
from zoo.validators.deepimagej.engines import EngineChoice, engine_for, version_tuple
from zoo.validators.deepimagej.known_ops import TF_ATTRS_ADDED_AFTER_2_7, TF_OPS, TF_OPS_NEWER_THAN_ENGINES
from zoo.validators.registry import Finding, Rule, failed, passed, skipped


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
    try:
        content = read_saved_model(pkg.root, source_name(entry))
    except UnreadableWeights as e:
        yield _unreadable_saved_model(pkg, rule_, entry, choice, details, e)
        return
    yield _saved_model_on_engine(rule_, content, choice, details)


def _unreadable_saved_model(
    pkg: PackageUnderTest, rule_: Rule, entry: dict, choice: EngineChoice, details: dict, error: UnreadableWeights
) -> Finding:
    """DIJ10 without the SavedModel's ops: a tensorflow_version not newer than the engine passes, an absent file is
    not judged here, an unreadable one may fail to load."""
    location = f"weights.{TF_FORMAT}"
    if (version_tuple(choice.declared) or (0,)) <= (version_tuple(choice.engine) or (0,)):
        return passed(
            rule_, f"tensorflow_version {choice.declared} runs on TF {choice.engine} ({error})", location, **details
        )
    if weight_absent(pkg, entry):
        return absent_weight_finding(
            pkg,
            rule_,
            TF_FORMAT,
            entry,
            f"tensorflow_version {choice.declared} is newer than TF {choice.engine}, and "
            "whether the SavedModel loads there is read from its ops",
        )
    return failed(
        rule_,
        f"tensorflow_version {choice.declared} is newer than TF {choice.engine}, the engine "
        f"Fiji's GUI installs, and the SavedModel could not be inspected ({error}): it may fail "
        "to load in Fiji",
        location,
        **details,
    )


def _saved_model_on_engine(rule_: Rule, content: SavedModelContent, choice: EngineChoice, details: dict) -> Finding:
    """DIJ10 from the SavedModel's content: the TF version that wrote it, and (when that is newer than the engine)
    the op types and attributes the engine lacks."""
    location = f"weights.{TF_FORMAT}"
    engine_version = version_tuple(choice.engine) or (0,)
    writer = content.tensorflow_version or choice.declared
    writer_version = version_tuple(writer) or (0,)
    absent = sorted(content.ops & TF_OPS_NEWER_THAN_ENGINES)
    unknown = sorted(op for op in content.ops if op not in TF_OPS and op not in TF_OPS_NEWER_THAN_ENGINES)
    new_attrs = sorted(
        f"{op}.{attr}" for op, attr in content.attrs if attr in TF_ATTRS_ADDED_AFTER_2_7.get(op, frozenset())
    )
    details = {
        **details,
        "writer_version": writer,
        "ops": len(content.ops),
        "absent_ops": absent,
        "unknown_ops": unknown,
        "new_attrs": new_attrs,
    }
    if writer_version[0] != engine_version[0]:
        return failed(
            rule_,
            f"the SavedModel was written by TF {writer} but tensorflow_version {choice.declared} "
            f"sends it to TF {choice.engine}: it will fail to load in Fiji",
            location,
            **details,
        )
    if writer_version <= engine_version:
        return passed(rule_, f"written by TF {writer}, runs on TF {choice.engine}", location, **details)
    parts = _missing_in_engine(absent, unknown, new_attrs)
    if parts:
        outcome = "will not load" if absent else "may fail to load"
        return failed(
            rule_,
            f"written by TF {writer}, Fiji's GUI runs it on TF {choice.engine}: {'; '.join(parts)}: "
            f"the TensorFlow weights {outcome} in Fiji",
            location,
            **details,
        )
    return passed(
        rule_,
        f"written by TF {writer}, runs on TF {choice.engine}: all {len(content.ops)} op types are "
        "in TF 2.7 and no node sets an attribute added later",
        location,
        **details,
    )


def _missing_in_engine(absent: list[str], unknown: list[str], new_attrs: list[str]) -> list[str]:
    """What the SavedModel uses that TF 2.7 lacks (or may lack), one phrase per kind."""
    parts = []
    if absent:
        parts.append(f'op types {", ".join(absent)} do not exist there ("Op type not registered")')
    if unknown:
        parts.append(f"op types {', '.join(unknown[:8])} are not on our list of ops TF 2.7 has")
    if new_attrs:
        parts.append(f'attributes {", ".join(new_attrs)} were added after TF 2.7 ("NodeDef mentions attr")')
    return parts


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
