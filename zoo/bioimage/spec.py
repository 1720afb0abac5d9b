"""What bioimageio.spec says about a description, in zoo's terms: its errors and warnings with a field location,
and the Keras backend its weights need (set before bioimageio.core imports Keras)."""

from __future__ import annotations

import os


def spec_details(descr) -> list[tuple[str, str, str]]:
    """(location, message, severity) of every error and warning bioimageio.spec recorded."""
    out = []
    summary = getattr(descr, "validation_summary", None)
    for detail in getattr(summary, "details", []) or []:
        for error in detail.errors:
            out.append((field_location(error.loc), error.msg, "error"))
        for warning in detail.warnings:
            out.append((field_location(warning.loc), warning.msg, "warning"))
    return out


def spec_errors(invalid) -> list[tuple[str, str]]:
    return [(loc, msg) for loc, msg, severity in spec_details(invalid) if severity == "error"]


def field_location(loc) -> str:
    """`inputs.0.axes.2.size`: pydantic's location without its validator wrappers."""
    return ".".join(str(part) for part in loc if not str(part).startswith(("function-", "union[", "tagged-union")))


def choose_keras_backend(descr) -> None:
    """bioimageio.core sets KERAS_BACKEND=torch unless told otherwise, and Keras reads it once, at import:
    a package's Keras weights say which backend they need, and TF SavedModels need the TensorFlow one."""
    weights = getattr(descr, "weights", None)
    if weights is None or "KERAS_BACKEND" in os.environ:
        return
    keras_v3 = getattr(weights, "keras_v3", None)
    if keras_v3 is not None:
        os.environ["KERAS_BACKEND"] = keras_v3.backend[0]
    elif getattr(weights, "tensorflow_saved_model_bundle", None) is not None or getattr(weights, "keras_hdf5", None):
        os.environ["KERAS_BACKEND"] = "tensorflow"


__all__ = ["choose_keras_backend", "field_location", "spec_details", "spec_errors"]
