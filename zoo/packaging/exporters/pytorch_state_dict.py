from __future__ import annotations

import shutil
from pathlib import Path

from zoo.packaging.exporters import WEIGHT_FILES, ExportContext, ExportedWeights


def export_pytorch_state_dict(model, example, workdir: Path, context: ExportContext) -> ExportedWeights:
    """The native weights: a state dict plus the architecture source file that builds the module."""
    import torch

    path = workdir / WEIGHT_FILES["pytorch_state_dict"]
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
    architecture = workdir / context.architecture_file.name
    shutil.copyfile(context.architecture_file, architecture)
    return ExportedWeights(
        "pytorch_state_dict",
        path,
        "pytorch",
        torch.__version__.split("+")[0],
        details={
            "architecture_file": architecture,
            "callable": context.architecture_callable,
            "kwargs": dict(context.architecture_kwargs),
        },
    )
