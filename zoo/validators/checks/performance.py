"""PRF: how long one inference takes and how much memory it needs, per weight format, on the test input. Never
fails: it informs the choice of a format and of a tile size. The numbers come from the runs the other checks make
anyway (loading, REP001's first run, DET001's second run), measured as zoo.validators.measure describes."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from zoo.validators.checks.runtime import error_text, formats_to_run
from zoo.validators.context import PackageUnderTest
from zoo.validators.measure import MEMORY_METHOD
from zoo.validators.probes import shape_text
from zoo.validators.registry import Finding, passed, rule, skipped

logger = logging.getLogger(__name__)


@rule(
    "PRF001",
    "info",
    "time and peak memory of one inference per weight format (reported, never failing)",
    "Nothing to fix; prefer the fastest format for the device, and size tiles by the memory shown.",
    "performance",
)
def check_performance(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_performance.rule
    formats, skip = formats_to_run(pkg, rule_)
    if skip:
        yield skip
        return
    shape = ", ".join(shape_text(t.data.shape) for t in pkg.test_input_sample().members.values())
    for weight_format in formats:
        location = f"weights.{weight_format}"
        try:
            pkg.repeated_test_output(weight_format)
        except Exception as e:
            yield skipped(rule_, f"{weight_format}: no second run to time ({error_text(e)}; see DET001)", location)
            continue
        measured = pkg.performance.get(weight_format, {})
        load, first, again = measured.get("load"), measured.get("first inference"), measured.get("inference")
        if first is None or again is None:
            yield skipped(rule_, f"{weight_format}: the inference was not measured", location)
            continue
        details = {
            "weight_format": weight_format,
            "device": pkg.device,
            "input_shape": shape,
            "load_s": load.seconds if load else None,
            "load_increase_mb": load.increase_mb if load else None,
            "first_inference_s": first.seconds,
            "inference_s": again.seconds,
            "peak_rss_mb": max(first.peak_rss_mb, again.peak_rss_mb),
            "inference_increase_mb": max(first.increase_mb, again.increase_mb),
            "gpu_peak_mb": max((m.gpu_peak_mb for m in (first, again) if m.gpu_peak_mb is not None), default=None),
            "memory_method": MEMORY_METHOD,
        }
        loading = f"load {load.seconds:.2f} s (+{load.increase_mb:.0f} MB), " if load else ""
        gpu = f", GPU peak {details['gpu_peak_mb']:.0f} MB" if details["gpu_peak_mb"] is not None else ""
        yield passed(
            rule_,
            f"{weight_format} on {pkg.device}, input {shape}: {loading}first inference "
            f"{first.seconds:.3f} s, then {again.seconds:.3f} s; peak RSS "
            f"{details['peak_rss_mb']:.0f} MB, +{details['inference_increase_mb']:.0f} MB during "
            f"inference{gpu} (RSS sampled during the call, with ru_maxrss)",
            location,
            **details,
        )
