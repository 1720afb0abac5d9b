"""`zoo info`: what a package is, read without running it.

The description as zoo reads it for every stage (zoo.bioimage: any format 0.3–0.5), plus what the static rules
find: the quality the package records (QUA001) and deepImageJ's verdict from the rules that need no model run
(a rule that needs a run to judge says "cannot judge" rather than guess)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zoo.bioimage.rdf import RdfError, read_rdf
from zoo.bioimage.rdf_tensors import tensors
from zoo.bioimage.rdf_weights import weight_entries
from zoo.bioimage.source import open_source
from zoo.bioimage.tensors import AxisSpec, TensorSpec, tensor_specs
from zoo.errors import SourceError


@dataclass
class PackageInfo:
    source: str
    name: str
    format_version: str
    description: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    weight_formats: list[str]
    processing: dict[str, list[str]]  # tensor id -> its pre- or post-processing steps, in order
    recorded_quality: str  # QUA001's message, "" when the package records none
    quality_note: str  # what the package records about poor quality (Verdict.quality), "" when none
    deepimagej: str | None  # deepImageJ's verdict from the static rules
    lineage: str = ""  # the parent model, and the base a zoo fine-tuning started from; "" when none is named
    warnings: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"{self.name} (format {self.format_version}): {self.source}"]
        if self.description:
            lines.append(f"  {self.description}")
        for kind, specs in (("input", self.inputs), ("output", self.outputs)):
            for spec in specs:
                lines.append(f"{kind} {spec.id}: axes {''.join(_letter(a) for a in spec.axes)}")
                lines += [f"  {_axis_text(axis, self.inputs)}" for axis in spec.axes]
                steps = self.processing.get(f"{kind}s.{spec.id}")
                if steps:
                    lines.append(f"  {'pre' if kind == 'input' else 'post'}-processing: {' → '.join(steps)}")
        lines.append(f"weights: {', '.join(self.weight_formats) or 'none'}")
        if self.lineage:
            lines.append(f"lineage: {self.lineage}")
        lines.append(f"recorded quality: {self.recorded_quality or 'none recorded'}")
        if self.quality_note:
            lines.append(f"  poor: {self.quality_note}")
        lines.append(f"deepImageJ (Fiji), from the rules that need no model run: {self.deepimagej or 'not checked'}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _letter(axis: AxisSpec) -> str:
    return {"batch": "b", "channel": "c", "time": "t", "index": "i"}.get(axis.kind, axis.id[:1])


def _axis_text(axis: AxisSpec, inputs: list[TensorSpec] = ()) -> str:
    if axis.kind == "batch":
        size = f"fixed {axis.sizes.min}" if axis.sizes is not None and axis.sizes.step == 0 else "free"
        return f"batch: {size}"
    if axis.kind == "channel":
        names = f" ({', '.join(axis.channel_names)})" if axis.channel_names else ""
        count = len(axis.channel_names) or (axis.sizes.min if axis.sizes else "?")
        return f"channel: {count}{names}"
    if axis.reference is not None:
        factor = _reference_scale(axis.reference, inputs) / axis.scale if axis.scale else 1.0
        scale = f" × {factor:g}" if factor != 1 else ""
        offset = f" {axis.offset:+d}" if axis.offset else ""
        size = f"size of {axis.reference[0]}.{axis.reference[1]}{scale}{offset}"
    elif axis.sizes is not None:
        size = f"size {axis.sizes}"
    else:
        size = "size set by the data"
    halo = f", halo {axis.halo}" if axis.halo else ""
    return f"{axis.kind} {axis.id}: {size}{halo}"


def _reference_scale(reference: tuple[str, str], inputs: list[TensorSpec]) -> float:
    """The scale of the axis a size refers to (the spec's size is reference · its scale / the axis' scale)."""
    for spec in inputs:
        for axis in spec.axes if spec.id == reference[0] else ():
            if axis.id == reference[1]:
                return axis.scale or 1.0
    return 1.0


def package_info(source: Path) -> PackageInfo:
    """Read a package (folder, rdf or zip) and run the rules that need no model run."""
    from zoo.validators import validate_source

    with open_source(Path(source)) as opened:
        try:
            rdf = read_rdf(opened.rdf_path)
        except (RdfError, OSError) as e:
            raise SourceError(f"{source}: {e}") from e
        inputs, outputs = tensor_specs(rdf)
        processing = {}
        for kind in ("inputs", "outputs"):
            for view in tensors(rdf, kind):
                steps = [name for _, name, _ in view.processing()]
                if steps:
                    processing[f"{kind}.{view.tensor_id}"] = steps
        formats = list(weight_entries(rdf))
    report = validate_source(Path(source), static_only=True)
    recorded = [f.message.removeprefix("recorded: ") for f in report.by_id("QUA001") if f.status == "passed"]
    failed = [f"{f.id}: {f.message}" for f in report.findings if f.status == "failed" and f.rule.target == "bioimageio"]
    return PackageInfo(
        source=str(source),
        name=str(rdf.get("name") or Path(source).name),
        format_version=str(rdf.get("format_version") or "?"),
        description=str(rdf.get("description") or ""),
        inputs=inputs,
        outputs=outputs,
        weight_formats=formats,
        processing=processing,
        recorded_quality=recorded[0] if recorded else "",
        quality_note=report.quality_note(),
        deepimagej=report.deepimagej_verdict,
        lineage=_lineage(rdf),
        warnings=failed[:5],
    )


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _lineage(rdf: dict) -> str:
    """The rdf's `parent` (format 0.5: id and version; earlier: a text) and, for a package zoo fine-tuned, the base
    model and the data it was fine-tuned on (config.zoo.finetune)."""
    parts = []
    parent = rdf.get("parent")
    if isinstance(parent, dict) and parent.get("id"):
        version = f" (version {parent['version']})" if parent.get("version") else ""
        parts.append(f"parent {parent['id']}{version}")
    elif isinstance(parent, str) and parent.strip():
        parts.append(f"parent {parent.strip()}")
    finetune = _mapping(_mapping(_mapping(rdf.get("config")).get("zoo")).get("finetune"))
    base, data = _mapping(finetune.get("base")), _mapping(finetune.get("data"))
    if base:
        text = f"fine-tuned with zoo from '{base.get('name') or base.get('id') or 'a package'}'"
        if base.get("rdf_sha256"):
            text += f" (its rdf's sha256 {str(base['rdf_sha256'])[:12]}…)"
        if base.get("weights"):
            text += f", its {base['weights']} weights"
        if data.get("n_files"):
            text += f", on {data['n_files']} files of {data.get('folder_name') or 'a folder'}"
        parts.append(text)
    return "; ".join(parts)
