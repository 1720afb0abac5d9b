"""Weights that act: operations in a "weights-only" format that reach outside the model, found by reading the
file (zoo.bioimage.weight_files, zoo.bioimage.onnx_file), never by loading it. TorchScript and TF SavedModel
graphs can read and write files (`torch.from_file(..., shared=True)`, `tf.io.write_file`) or call Python (PyFunc);
an ONNX node outside the standard domains runs a custom kernel. Such weights are not run without --trust."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zoo.bioimage.onnx_file import read_onnx_domains
from zoo.bioimage.weight_files import UnreadableWeights, read_saved_model, read_torchscript

TORCHSCRIPT_OPS = {
    "aten::from_file": "maps a file of the host into a tensor (and creates it with shared=True)",
    "aten::save": "writes a file",
    "aten::load": "reads a file",
    "aten::_save_for_mobile": "writes a file",
    "aten::_load_for_mobile": "reads a file",
}
TENSORFLOW_OPS = {
    "WriteFile": "writes a file",
    "ReadFile": "reads a file",
    "MatchingFiles": "lists files of the host",
    "DeleteFile": "deletes a file",
    "PyFunc": "calls Python code",
    "PyFuncStateless": "calls Python code",
    "EagerPyFunc": "calls Python code",
    "ImmutableConst": "maps a file of the host into memory",
    "CreateSummaryFileWriter": "writes files",
    "WriteSummary": "writes files",
    "WriteScalarSummary": "writes files",
    "WriteImageSummary": "writes files",
    "WriteAudioSummary": "writes files",
    "WriteHistogramSummary": "writes files",
    "WriteGraphSummary": "writes files",
    "WriteRawProtoSummary": "writes files",
    "FlushSummaryWriter": "writes files",
    "DebugIdentity": "can write to debug URLs",
    "DebugIdentityV2": "can write to debug URLs",
    "DebugNanCount": "can write to debug URLs",
    "DebugNumericSummary": "can write to debug URLs",
    "TFRecordDataset": "reads files",
    "TextLineDataset": "reads files",
    "FixedLengthRecordDataset": "reads files",
    "WholeFileReader": "reads files",
    "WholeFileReaderV2": "reads files",
    "TextLineReader": "reads files",
    "TextLineReaderV2": "reads files",
    "TFRecordReader": "reads files",
    "TFRecordReaderV2": "reads files",
    "FixedLengthRecordReader": "reads files",
    "FixedLengthRecordReaderV2": "reads files",
    "LoadAndRemapMatrix": "reads a checkpoint file",
    "Save": "writes a file",
    "SaveSlices": "writes a file",
    "SaveV2": "writes a file",
    "MergeV2Checkpoints": "writes and deletes files",
}
ONNX_STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


@dataclass(frozen=True)
class ActingOp:
    op: str  # "aten::from_file", "WriteFile", "custom.domain::MyOp"
    where: str  # the code record, graph node or function it was found in
    why: str

    def __str__(self) -> str:
        return f"{self.op} ({self.why}) in {self.where}"


def acting_ops(weight_format: str, path: Path, package_root: Path | None = None) -> list[ActingOp]:
    """The operations of the weights at `path` that reach outside the model; [] for formats that hold none of
    these graphs (state dicts and Keras files run Python anyway and need --trust for that). Raises
    UnreadableWeights when the file cannot be read as its format."""
    if weight_format == "torchscript":
        content = read_torchscript(path)
        return [ActingOp(op, where, TORCHSCRIPT_OPS[op]) for op, where in content.op_sites if op in TORCHSCRIPT_OPS]
    if weight_format == "tensorflow_saved_model_bundle":
        root = package_root or path.parent
        content = read_saved_model(root, str(path.relative_to(root)) if path.is_relative_to(root) else path.name)
        return [ActingOp(op, where, TENSORFLOW_OPS[op]) for op, where in content.op_sites if op in TENSORFLOW_OPS]
    if weight_format == "onnx":
        return [
            ActingOp(f"{domain}::{op}", where, "runs a kernel outside the ONNX standard")
            for domain, op, where in read_onnx_domains(path)
            if domain not in ONNX_STANDARD_DOMAINS
        ]
    return []


__all__ = ["ActingOp", "UnreadableWeights", "acting_ops"]
