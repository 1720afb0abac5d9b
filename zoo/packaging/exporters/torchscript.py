from __future__ import annotations

from pathlib import Path

from zoo.packaging.exporters import WEIGHT_FILES, ExportContext, ExportedWeights


def export_torchscript(model, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """Trace the module; the zoo's U-Nets (2D, 3D) and classifiers have no data-dependent control flow, so the
    trace holds for every size the module accepts."""
    import torch

    path = workdir / WEIGHT_FILES["torchscript"]
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.from_numpy(example), check_trace=False)
    traced.save(str(path))
    return ExportedWeights("torchscript", path, "pytorch", torch.__version__.split("+")[0], parent="pytorch_state_dict")


def save_torchscript(model, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """A TorchScript module someone else made, saved as it is (scripted code stays scripted: no re-trace that could
    freeze a data-dependent branch)."""
    import torch

    path = workdir / WEIGHT_FILES["torchscript"]
    model.save(str(path))
    return ExportedWeights("torchscript", path, "pytorch", torch.__version__.split("+")[0])
