"""Wall time and peak memory of one model call, as the validator reports them (PRF001).

tracemalloc sees only Python allocations and an RSS difference before/after misses a peak that is freed again,
while native runtimes (libtorch, onnxruntime, TensorFlow) allocate their working memory outside Python. So a
thread samples the process's resident set size from /proc/self/statm while the call runs, and the kernel's
high-water mark (getrusage ru_maxrss) is read before and after: when the call raised the high-water mark, that
exact peak is used, which covers a spike shorter than the sampling interval."""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

SAMPLE_INTERVAL_S = 0.002
MEMORY_METHOD = (
    f"resident set size sampled every {SAMPLE_INTERVAL_S * 1000:g} ms from /proc/self/statm during the "
    "call, and the process's ru_maxrss high-water mark (getrusage) before and after it"
)
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


@dataclass
class Measurement:
    """One call: seconds, the process's RSS before it and its peak while it ran (MB)."""

    seconds: float = 0.0
    rss_before_mb: float = 0.0
    peak_rss_mb: float = 0.0
    gpu_peak_mb: float | None = None  # torch.cuda.max_memory_allocated, when the call ran on a CUDA device

    @property
    def increase_mb(self) -> float:
        """How far the call raised the process's memory above where it started."""
        return max(0.0, self.peak_rss_mb - self.rss_before_mb)

    def to_dict(self) -> dict:
        return {**asdict(self), "increase_mb": self.increase_mb}


def current_rss_mb() -> float:
    """The resident set size of this process now (0.0 where /proc is not available)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return 0.0


def max_rss_mb() -> float:
    """The kernel's high-water mark of this process's RSS (ru_maxrss: KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / 2**20 if sys.platform == "darwin" else value / 1024


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="zoo-rss-sampler", daemon=True)
        self.peak = current_rss_mb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_INTERVAL_S):
            self.peak = max(self.peak, current_rss_mb())

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, current_rss_mb())


@contextmanager
def measure(cuda: bool = False) -> Iterator[Measurement]:
    """Time the body and record its peak RSS (and CUDA peak with `cuda`); the Measurement is filled on exit."""
    result = Measurement(rss_before_mb=current_rss_mb())
    high_water_before = max_rss_mb()
    torch_cuda = _reset_cuda_peak() if cuda else None
    sampler = _Sampler()
    sampler.start()
    started = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - started
        peak = sampler.stop()
        high_water = max_rss_mb()
        if high_water > high_water_before:  # the body set a new high-water mark: that is its exact peak
            peak = max(peak, high_water)
        result.peak_rss_mb = peak
        if torch_cuda is not None:
            result.gpu_peak_mb = torch_cuda.max_memory_allocated() / 2**20


def _reset_cuda_peak():
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda


__all__ = ["MEMORY_METHOD", "Measurement", "current_rss_mb", "max_rss_mb", "measure"]
