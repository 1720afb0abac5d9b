"""Check modules; importing this package registers every rule in zoo.validators.registry."""

from zoo.validators.checks import (  # noqa: F401
    cross_format,
    deepimagej,
    deepimagej_emulation,
    determinism,
    devices,
    files,
    instances,
    outputs,
    performance,
    quality,
    reproduction,
    safety,
    sizes,
    spec_format,
    tensors,
    tiling,
)
