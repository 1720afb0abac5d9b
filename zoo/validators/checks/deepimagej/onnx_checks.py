"""DIJ13: ONNX weights: opset and IR version the GUI's onnxruntime engine reads, graph inputs and outputs in the
rdf's order."""

from __future__ import annotations

from collections.abc import Iterator

from zoo.bioimage.onnx_file import read_onnx
from zoo.bioimage.rdf_tensors import tensors
from zoo.bioimage.rdf_weights import weights
from zoo.bioimage.weight_files import UnreadableWeights
from zoo.validators.checks.deepimagej.common import absent_weight_finding, dij, weight_path
from zoo.validators.context import PackageUnderTest
from zoo.validators.deepimagej import engines
from zoo.validators.deepimagej.engines import engine_for
from zoo.validators.registry import Finding, failed, passed


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
