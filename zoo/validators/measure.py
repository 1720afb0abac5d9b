"""Wall time and peak memory of one model call, as the validator reports them (PRF001).

tracemalloc sees only Python allocations and an RSS difference before/after misses a peak that is freed again,
while native runtimes (libtorch, onnxruntime, TensorFlow) allocate their working memory outside Python. So a
thread samples the process's resident set size from /proc/self/statm while the call runs, and the kernel's
high-water mark (getrusage ru_maxrss) is read before and after: when the call raised the high-water mark, that
exact peak is used, which covers a spike shorter than the sampling interval. When the model runs in a worker process
(zoo.validators.model_worker), that process's RSS is added to this one's, and its own high-water mark (VmHWM) is
read the same way."""

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
    "call, and the process's ru_maxrss high-water mark (getrusage) before and after it; where the model runs in a "
    "worker process, its RSS (/proc/PID/statm, high-water mark VmHWM) is added"
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


def current_rss_mb(pids: tuple[int, ...] = ()) -> float:
    """The resident set size of this process now, plus that of the processes `pids` (0.0 where /proc is not
    available)."""
    return sum(_rss_mb(pid) for pid in ("self", *pids))


def _rss_mb(pid) -> float:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return 0.0


def max_rss_mb() -> float:
    """The kernel's high-water mark of this process's RSS (ru_maxrss: KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / 2**20 if sys.platform == "darwin" else value / 1024


def _high_water_mb(pid) -> float:
    """A process's RSS high-water mark: ru_maxrss for this one, VmHWM for another (0.0 where unknown)."""
    if pid == "self":
        return max_rss_mb()
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


class _Sampler(threading.Thread):
    """The peak RSS of each process while the body runs."""

    def __init__(self, pids: tuple) -> None:
        super().__init__(name="zoo-rss-sampler", daemon=True)
        self.peaks = {pid: _rss_mb(pid) for pid in pids}
        self._stop_event = threading.Event()

    def _sample(self) -> None:
        for pid, peak in self.peaks.items():
            self.peaks[pid] = max(peak, _rss_mb(pid))

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_INTERVAL_S):
            self._sample()

    def stop(self) -> dict:
        self._stop_event.set()
        self.join()
        self._sample()
        return self.peaks


@contextmanager
def measure(cuda: bool = False, pids: tuple[int, ...] = ()) -> Iterator[Measurement]:
    """Time the body and record its peak RSS (and CUDA peak with `cuda`), with that of the worker processes
    `pids` added (the sum of each process's peak); the Measurement is filled on exit."""
    processes = ("self", *pids)
    result = Measurement(rss_before_mb=current_rss_mb(pids))
    high_water_before = {pid: _high_water_mb(pid) for pid in processes}
    torch_cuda = _reset_cuda_peak() if cuda else None
    sampler = _Sampler(processes)
    sampler.start()
    started = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - started
        peaks = sampler.stop()
        for pid in processes:
            high_water = _high_water_mb(pid)
            if high_water > high_water_before[pid]:  # the body set a new high-water mark: that is its exact peak
                peaks[pid] = max(peaks[pid], high_water)
        result.peak_rss_mb = sum(peaks.values())
        if torch_cuda is not None:
            result.gpu_peak_mb = torch_cuda.max_memory_allocated() / 2**20


def _reset_cuda_peak():
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda


__all__ = ["MEMORY_METHOD", "Measurement", "current_rss_mb", "max_rss_mb", "measure"]
