"""DIJ: will the package run in Fiji's deepImageJ (3.x, through JDLL 0.6.1)? One check per rule of
/work/shared/deepimagej/RULES.md (DIJ01..DIJ32), read from the raw rdf and the package files so that the rules also
run when bioimageio.spec rejects the rdf. Helpers (engine tables, rdf view, weight-file readers) are in
zoo.validators.deepimagej."""

from zoo.validators.checks.deepimagej import (  # noqa: F401  (registers the rules)
    onnx_checks,
    package_checks,
    processing_checks,
    tensor_checks,
    tensorflow_checks,
    tiling_checks,
    torchscript_checks,
    weight_checks,
)
