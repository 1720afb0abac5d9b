"""Which engine Fiji would run a weight format on.

Derived from JDLL's own tables (Apache-2.0, io.bioimage:dl-modelrunner 0.6.1):
`availableDLVersions.json` (what JDLL can install) and `supportedVersions.json` (how a framework version maps to
an engine); the engines deepImageJ's GUI installs and the engine choice (`VersionStringUtils.
getMostCompatibleEngineVersion`: the closest equal-or-newer engine of the same major version, else the closest
older one; ONNX ignores the major version) follow RULES.md DIJ07, DIJ10 and DIJ13."""

from __future__ import annotations

import re
from dataclasses import dataclass

# framework -> engine versions JDLL can install (availableDLVersions.json, Python-side version numbers)
AVAILABLE_ENGINES: dict[str, tuple[str, ...]] = {
    "pytorch": ("1.7.1", "1.8.1", "1.9.0", "1.9.1", "1.10.0", "1.11.0", "1.12.1", "1.13.0", "1.13.1", "2.0.0"),
    "tensorflow": ("1.12.0", "1.13.1", "1.14.0", "1.15.0", "2.3.1", "2.4.1", "2.7.0", "2.7.1", "2.7.4", "2.10.1"),
    "onnx": ("8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18"),  # by opset
}
# what deepImageJ's GUI installs; TF 2.10.1 is installable from a macro only and needs Java 11
GUI_ENGINES: dict[str, tuple[str, ...]] = {
    "pytorch": ("1.13.1", "2.0.0"),
    "tensorflow": ("1.15.0", "2.7.0"),
    "onnx": ("17",),
}
MACRO_ONLY_ENGINES: dict[str, tuple[str, ...]] = {"tensorflow": ("2.10.1",)}
# opset -> the onnxruntime release of that JDLL engine (availableDLVersions.json "version" for "pythonVersion")
ONNX_RUNTIME_FOR_OPSET = {
    8: "1.3.1",
    9: "1.4.0",
    10: "1.5.2",
    11: "1.6.0",
    12: "1.7.0",
    13: "1.8.1",
    14: "1.9.0",
    15: "1.10.0",
    16: "1.11.0",
    17: "1.12.1",
    18: "1.13.1",
}
ONNX_MIN_OPSET, ONNX_GUI_MAX_OPSET = 8, 17
ONNX_MAX_IR_VERSION = 8  # onnxruntime 1.12.1 rejects newer IR versions (RULES.md DIJ13)

# weight format -> (framework, rdf key of its version, the version JDLL assumes when the key is absent)
FRAMEWORK_OF_FORMAT: dict[str, tuple[str, str, str | None]] = {
    "torchscript": ("pytorch", "pytorch_version", "1.13.1"),  # TorchscriptWeights: default 1.13.1
    "pytorch_script": ("pytorch", "pytorch_version", "1.13.1"),  # very old name JDLL still reads
    "onnx": ("onnx", "opset_version", "17"),  # OnnxWeights: default 17
    "tensorflow_saved_model_bundle": ("tensorflow", "tensorflow_version", None),  # no default: DIJ09
    "pytorch_state_dict": ("pytorch", "pytorch_version", None),  # runs in a Python env, not on an engine
}


@dataclass(frozen=True)
class EngineChoice:
    framework: str
    declared: str | None  # the version as JDLL reads it from the rdf
    engine: str | None  # the engine version Fiji would run, None when none fits

    def label(self) -> str:
        if self.engine == "python":
            return "deepImageJ's Python environment"
        if self.engine is None:
            return f"no {self.framework} engine"
        if self.framework == "onnx":
            return f"onnx opset {self.engine} (onnxruntime {ONNX_RUNTIME_FOR_OPSET[int(self.engine)]})"
        return f"{self.framework} {self.engine}"


def jdll_version_string(value) -> str | None:
    """The version string JDLL derives from the yaml value (`TorchscriptWeights.setTrainingVersion`): local
    suffixes (`+cu118`, `cuda`, `cu`) cut off, numbers turned into text as Java does (1.10 -> "1.1")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        for marker in ("+", "cuda", "cu"):
            if marker in value:
                return value[: value.index(marker)].strip()
        return value
    return str(value)


def version_tuple(version: str) -> tuple[int, ...] | None:
    """(2, 5, 1) for "2.5.1"; padded to three numbers; None when it does not start with a number."""
    numbers = [int(part) for part in re.findall(r"\d+", version.split("-")[0])[:3]]
    if not numbers or not re.match(r"\s*\d", version):
        return None
    return tuple(numbers + [0] * (3 - len(numbers)))


def most_compatible(framework: str, version: str | None, engines: tuple[str, ...]) -> str | None:
    """JDLL's choice among `engines` for a model of `version`."""
    if not engines:
        return None
    if version is None:  # JDLL then takes the newest engine
        return max(engines, key=lambda e: version_tuple(e) or (0,))
    wanted = version_tuple(version)
    if wanted is None:
        return None
    candidates = [(version_tuple(e), e) for e in engines]
    if framework != "onnx":
        candidates = [(v, e) for v, e in candidates if v and v[0] == wanted[0]]
    newer = [(v, e) for v, e in candidates if v >= wanted]
    if newer:
        return min(newer)[1]
    older = [(v, e) for v, e in candidates if v < wanted]
    return max(older)[1] if older else None


def engine_for(weight_format: str, entry: dict, engines: dict[str, tuple[str, ...]] = GUI_ENGINES) -> EngineChoice:
    """The engine Fiji picks for one weights entry of the raw rdf."""
    framework, key, default = FRAMEWORK_OF_FORMAT[weight_format]
    declared = jdll_version_string(entry.get(key)) if isinstance(entry, dict) else None
    declared = declared if declared is not None else default
    if weight_format == "pytorch_state_dict":  # runs in deepImageJ's own Python environment (DIJ14)
        return EngineChoice(framework, declared, "python")
    return EngineChoice(framework, declared, most_compatible(framework, declared, engines.get(framework, ())))
