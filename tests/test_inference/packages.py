"""Tiny model packages for prediction tests, built here with bioimageio.spec objects (not with zoo's packaging):
a TorchScript (and optionally ONNX) file of a small torch module, test tensors from the module itself, and an
rdf whose axes the test chooses (cropped or scaled outputs, classifiers, 3D)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def space_in(axis_id: str, size):
    """A spatial input axis: `size` an int (fixed) or (min, step)."""
    from bioimageio.spec.model import v0_5

    if isinstance(size, tuple):
        size = v0_5.ParameterizedSize(min=size[0], step=size[1])
    return v0_5.SpaceInputAxis(id=v0_5.AxisId(axis_id), size=size)


def space_out(axis_id: str, *, tensor: str = "raw", offset: int = 0, scale: float = 1.0, halo: int = 0):
    """A spatial output axis that follows the input's axis of the same id: ·(1/scale) + offset, with a halo."""
    from bioimageio.spec.model import v0_5

    size = v0_5.SizeReference(tensor_id=v0_5.TensorId(tensor), axis_id=v0_5.AxisId(axis_id), offset=offset)
    if halo:
        return v0_5.SpaceOutputAxisWithHalo(id=v0_5.AxisId(axis_id), size=size, scale=scale, halo=halo)
    return v0_5.SpaceOutputAxis(id=v0_5.AxisId(axis_id), size=size, scale=scale)


def batch():
    from bioimageio.spec.model import v0_5

    return v0_5.BatchAxis()


def channel(*names: str):
    from bioimageio.spec.model import v0_5

    return v0_5.ChannelAxis(channel_names=[v0_5.Identifier(n) for n in names])


def build_package(
    folder: Path,
    module,
    example: np.ndarray,
    input_axes: list,
    output_axes: list,
    *,
    formats: tuple[str, ...] = ("torchscript",),
    normalize: bool = True,
    name: str = "tiny test model",
) -> Path:
    """Write `module` (a torch.nn.Module taking and returning one tensor) as a package into `folder`; its test
    output is the module's output on `example`. `normalize`: zero-mean unit-variance pre-processing per sample."""
    import torch
    from bioimageio.spec import ValidationContext, save_bioimageio_yaml_only
    from bioimageio.spec.model import v0_5

    folder.mkdir(parents=True)
    module = module.eval()
    tensor = torch.from_numpy(example)
    with torch.no_grad():
        expected = module(tensor if not normalize else (tensor - tensor.mean()) / (tensor.std() + 1e-6)).numpy()
    np.save(folder / "test_input.npy", example)
    np.save(folder / "test_output.npy", expected)
    (folder / "README.md").write_text(f"# {name}\n\nA test model.\n\n# Validation\n\nNone.\n")
    entries = {}
    if "torchscript" in formats:
        torch.jit.save(torch.jit.trace(module, tensor), str(folder / "weights.pt"))
        entries["torchscript"] = dict(source=Path("weights.pt"), pytorch_version=v0_5.Version(torch.__version__))
    if "onnx" in formats:
        dynamic = {i: f"d{i}" for i, axis in enumerate(input_axes) if str(axis.type) != "channel"}
        dynamic_out = {i: f"o{i}" for i, axis in enumerate(output_axes) if str(axis.type) != "channel"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (tensor,),
                str(folder / "weights.onnx"),
                dynamo=False,
                opset_version=17,
                input_names=["raw"],
                output_names=["out"],
                dynamic_axes={"raw": dynamic, "out": dynamic_out},
            )
        entries["onnx"] = dict(source=Path("weights.onnx"), opset_version=17)
    spatial = [v0_5.AxisId(str(a.id)) for a in input_axes if str(a.type) == "space"]
    preprocessing = [v0_5.ZeroMeanUnitVarianceDescr(kwargs=v0_5.ZeroMeanUnitVarianceKwargs(axes=spatial, eps=1e-6))]
    with ValidationContext(root=folder, perform_io_checks=True):
        weights = {}
        if "torchscript" in entries:
            weights["torchscript"] = v0_5.TorchscriptWeightsDescr(**entries["torchscript"])
        if "onnx" in entries:
            weights["onnx"] = v0_5.OnnxWeightsDescr(**entries["onnx"])
        descr = v0_5.ModelDescr(
            name=name,
            description="a test model",
            authors=[v0_5.Author(name="zoo tests")],
            cite=[v0_5.CiteEntry(text="zoo", url="https://bioimage.io")],
            license="MIT",
            documentation=v0_5.FileDescr(source=Path("README.md")),
            inputs=[
                v0_5.InputTensorDescr(
                    id=v0_5.TensorId("raw"),
                    axes=input_axes,
                    test_tensor=v0_5.FileDescr(source=Path("test_input.npy")),
                    preprocessing=preprocessing if normalize else [],
                )
            ],
            outputs=[
                v0_5.OutputTensorDescr(
                    id=v0_5.TensorId("out"),
                    axes=output_axes,
                    test_tensor=v0_5.FileDescr(source=Path("test_output.npy")),
                )
            ],
            weights=v0_5.WeightsDescr(**weights),
        )
    save_bioimageio_yaml_only(descr, folder / "rdf.yaml")
    return folder
