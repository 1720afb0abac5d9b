"""GPU: the model computes the same on the GPU as on the CPU. Kernels differ between devices (cuDNN's
convolution algorithms, TF32 matmuls, fused ops), and a package tested on one device only can give other numbers on
the other. Without a usable CUDA GPU the check is skipped with the reason."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from zoo.validators.checks.reproduction import compare_reproduction, run_on_test_input, tolerance
from zoo.validators.checks.runtime import error_text, formats_to_run
from zoo.validators.context import PackageUnderTest
from zoo.validators.registry import Finding, failed, passed, rule, skipped

logger = logging.getLogger(__name__)

TORCH_FORMATS = ("torchscript", "pytorch_state_dict")


def accelerator() -> tuple[str | None, str]:
    """("cuda", the GPU's name) when torch can use a CUDA GPU, else (None, why not). torch is imported only when
    it is loaded already or an NVIDIA driver is present, so that a machine without a GPU pays nothing."""
    torch = sys.modules.get("torch")
    if torch is None:
        if not Path("/proc/driver/nvidia").exists() and shutil.which("nvidia-smi") is None:
            return None, "no NVIDIA driver on this machine (no /proc/driver/nvidia, no nvidia-smi)"
        try:
            import torch
        except ImportError:
            return None, "torch is not installed, so torch.cuda.is_available() cannot be asked"
    if not torch.cuda.is_available():
        return None, "torch.cuda.is_available() is False"
    return "cuda", torch.cuda.get_device_name(0)


def device_pair(weight_format: str, gpu: str) -> tuple[str, str] | str:
    """The (CPU, GPU) device names bioimageio.core takes for a weight format, or why it cannot choose."""
    if weight_format in TORCH_FORMATS:
        return "cpu", gpu
    if weight_format == "onnx":
        try:
            import onnxruntime
        except ImportError:
            return "onnxruntime is not installed"
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return "onnxruntime has no CUDAExecutionProvider here (onnxruntime-gpu is not installed)"
        return "CPUExecutionProvider", "CUDAExecutionProvider"
    return f"bioimageio.core does not place {weight_format} models on a chosen device"


def run_on_device(pkg: PackageUnderTest, weight_format: str, device: str):
    """The test input's outputs with `weight_format` on `device` (the package's own run when it is that device)."""
    if device == pkg.device:
        return pkg.test_output(weight_format)
    return pkg.memo(
        ("device run", weight_format, device),
        lambda: run_on_test_input(pkg.pipeline(weight_format, device), pkg.test_input_sample()),
    )


@rule(
    "GPU001",
    "error",
    "CPU and GPU give the same outputs (when a GPU is present)",
    "Make the model deterministic across devices (disable TF32: torch.backends.cuda.matmul.allow_tf32 = False; "
    "avoid device-specific ops), or state a wider reproducibility_tolerance.",
    "devices",
)
def check_cpu_gpu_agree(pkg: PackageUnderTest) -> Iterator[Finding]:
    rule_ = check_cpu_gpu_agree.rule
    gpu, about = accelerator()
    if gpu is None:
        yield skipped(rule_, f"not run: no CUDA GPU here ({about})")
        return
    formats, skip = formats_to_run(pkg, rule_)
    if skip:
        yield skip
        return
    for weight_format in formats:
        location = f"weights.{weight_format}"
        pair = device_pair(weight_format, gpu)
        if isinstance(pair, str):
            yield skipped(rule_, f"{weight_format} not compared: {pair}", location)
            continue
        try:
            on_cpu, on_gpu = (run_on_device(pkg, weight_format, device) for device in pair)
        except Exception as e:
            logger.debug("%s on %s failed", weight_format, pair, exc_info=True)
            yield failed(
                rule_, f"{weight_format} did not run on both {pair[0]} and {pair[1]} ({error_text(e)})", location
            )
            continue
        for member_id, tensor in on_cpu.members.items():
            where = f"{location}/outputs[{member_id}]"
            other = on_gpu.members.get(member_id)
            a = tensor.data.to_numpy()
            b = other.data.to_numpy() if other is not None else None
            if b is None or a.shape != b.shape:
                yield failed(
                    rule_,
                    f"outputs[{member_id}]: {pair[1]} gave {'no output' if b is None else b.shape}, "
                    f"{pair[0]} {a.shape}",
                    where,
                )
                continue
            rtol, atol, ppm_budget = tolerance(pkg.descr, weight_format, str(member_id))
            result = compare_reproduction(b, a, rtol, atol)
            details = {
                **result,
                "devices": list(pair),
                "gpu": about,
                "rtol": rtol,
                "atol": atol,
                "ppm_budget": ppm_budget,
            }
            if result["ppm"] > ppm_budget:
                yield failed(
                    rule_,
                    f"outputs[{member_id}]: {pair[1]} ({about}) differs from {pair[0]}: "
                    f"{result['mismatched']} elements ({result['ppm']:.0f} ppm) over {atol:g} + "
                    f"{rtol:g}·|cpu|, max |Δ| {result['max_abs']:.2e}, worst at "
                    f"{tuple(result['worst_index'])}",
                    where,
                    **details,
                )
            else:
                yield passed(
                    rule_,
                    f"outputs[{member_id}]: {pair[1]} ({about}) agrees with {pair[0]}, max |Δ| {result['max_abs']:.2e}",
                    where,
                    **details,
                )
