"""The one builder of test packages: a small torch module written as a format-0.5 bioimage.io package (TorchScript,
optionally ONNX), its test output computed by the module itself, with the axes the test chooses (fixed or
parameterized sizes, outputs cropped, scaled or with a halo, classifiers, 3D). The rdf is written as raw YAML,
as a third party's would be, not with zoo's packaging; the axis helpers give its entries."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np

from tests.conftest import load_rdf, save_rdf


def batch() -> dict:
    return {"type": "batch"}


def channel(*names: str) -> dict:
    return {"type": "channel", "channel_names": list(names)}


def space_in(axis_id: str, size) -> dict:
    """A spatial input axis: `size` an int (fixed) or (min, step)."""
    if isinstance(size, tuple):
        size = {"min": size[0], "step": size[1]}
    return {"type": "space", "id": axis_id, "size": size}


def space_out(axis_id: str, *, tensor: str = "raw", offset: int = 0, scale: float = 1.0, halo: int = 0) -> dict:
    """A spatial output axis that follows the input's axis of the same id: ·(1/scale) + offset, with a halo."""
    axis = {"type": "space", "id": axis_id, "size": {"tensor_id": tensor, "axis_id": axis_id, "offset": offset}}
    if scale != 1.0:
        axis["scale"] = scale
    if halo:
        axis["halo"] = halo
    return axis


def image_axes(spatial: str = "yx", size: dict | int | None = None, with_batch: bool = True) -> list[dict]:
    size = size if size is not None else {"min": 16, "step": 1}
    return [
        *([batch()] if with_batch else []),
        channel("raw"),
        *({"type": "space", "id": a, "size": size} for a in spatial),
    ]


def output_axes(
    spatial: str = "yx", halo: int | None = None, input_id: str = "raw", with_batch: bool = True, offset: int = 0
) -> list[dict]:
    axes = [*([batch()] if with_batch else []), channel("out")]
    for a in spatial:
        axis = space_out(a, tensor=input_id, offset=offset, halo=halo or 0)
        if halo is not None:
            axis["halo"] = halo
        axes.append(axis)
    return axes


def write_package(
    folder: Path,
    module,
    test_input: np.ndarray,
    in_axes: list[dict],
    out_axes: list[dict],
    *,
    formats: tuple[str, ...] = ("torchscript",),
    trace: bool = False,
    normalize: bool = False,
    data_range: list | None = None,
    name: str = "tiny test model",
) -> Path:
    """Write `module` (a torch.nn.Module taking and returning one tensor) as a package into `folder`. TorchScript
    is scripted, or traced with `trace`; `normalize` adds zero-mean unit-variance pre-processing per sample (the
    test output is then the module's output on the normalised input); `data_range` the output's declared range."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    test_input = np.asarray(test_input, dtype=np.float32)
    tensor = torch.from_numpy(test_input)
    scripted = torch.jit.trace(module, tensor) if trace else torch.jit.script(module)
    scripted.save(str(folder / "weights.pt"))
    with torch.no_grad():
        seen = (tensor - tensor.mean()) / (tensor.std() + 1e-6) if normalize else tensor
        test_output = module(seen).numpy()
    np.save(folder / "test_input.npy", test_input)
    np.save(folder / "test_output.npy", test_output.astype(np.float32))
    (folder / "README.md").write_text(f"# {name}\n\nA model made by zoo's tests.\n\n## Validation\n\nzoo validate.\n")
    weights = {"torchscript": {"source": "weights.pt", "pytorch_version": torch.__version__.split("+")[0]}}
    if "onnx" in formats:
        _write_onnx(folder / "weights.onnx", module, tensor, in_axes, out_axes)
        weights["onnx"] = {"source": "weights.onnx", "opset_version": 17}
    spatial = [a["id"] for a in in_axes if a["type"] == "space"]
    inputs = {
        "id": "raw",
        "description": "an image",
        "axes": in_axes,
        "test_tensor": {"source": "test_input.npy"},
        "data": {"type": "float32"},
    }
    if normalize:
        inputs["preprocessing"] = [{"id": "zero_mean_unit_variance", "kwargs": {"axes": spatial, "eps": 1e-6}}]
    output = {
        "id": "out",
        "description": "the model's output",
        "axes": out_axes,
        "test_tensor": {"source": "test_output.npy"},
    }
    if data_range is not None:
        output["data"] = {"type": "float32", "range": data_range}
    save_rdf(
        folder,
        {
            "format_version": "0.5.4",
            "type": "model",
            "name": name,
            "description": "a model made by zoo's tests",
            "authors": [{"name": "zoo"}],
            "cite": [{"text": "zoo", "url": "https://bioimage.io"}],
            "license": "MIT",
            "documentation": "README.md",
            "tags": ["test"],
            "timestamp": "2026-01-01T00:00:00",
            "inputs": [inputs],
            "outputs": [output],
            "weights": weights,
        },
    )
    return folder


def _write_onnx(path: Path, module, tensor, in_axes: list[dict], out_axes: list[dict]) -> None:
    import torch

    dynamic = {i: f"d{i}" for i, axis in enumerate(in_axes) if axis["type"] != "channel"}
    dynamic_out = {i: f"o{i}" for i, axis in enumerate(out_axes) if axis["type"] != "channel"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (tensor,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["raw"],
            output_names=["out"],
            dynamic_axes={"raw": dynamic, "out": dynamic_out},
        )


def write_state_dict_package(
    folder: Path,
    architecture_source: str,
    callable_name: str,
    kwargs: dict,
    test_input: np.ndarray,
    in_axes: list[dict],
    out_axes: list[dict],
    *,
    normalize: bool = True,
    seed: int = 0,
    name: str = "tiny state dict model",
) -> Path:
    """Like a CAREamics export: only `pytorch_state_dict` weights, with the architecture's Python file in the package
    (`architecture_source`, its class `callable_name` built with `kwargs`, initialised from `seed`). The rest as
    `write_package` writes it (test output from the module, zero-mean unit-variance pre-processing by default)."""
    import importlib.util

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    architecture = folder / "architecture.py"
    architecture.write_text(architecture_source)
    spec = importlib.util.spec_from_file_location(f"zoo_test_architecture_{abs(hash(str(folder)))}", architecture)
    module_code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module_code)
    torch.manual_seed(seed)
    module = getattr(module_code, callable_name)(**kwargs).eval()
    write_package(folder, module, test_input, in_axes, out_axes, trace=True, normalize=normalize, name=name)
    (folder / "weights.pt").unlink()
    torch.save(module.state_dict(), folder / "weights_state_dict.pt")
    rdf = load_rdf(folder)
    rdf["weights"] = {
        "pytorch_state_dict": {
            "source": "weights_state_dict.pt",
            "architecture": {"source": "architecture.py", "callable": callable_name, "kwargs": dict(kwargs)},
            "pytorch_version": torch.__version__.split("+")[0],
        }
    }
    save_rdf(folder, rdf)
    return folder


def write_onnx_package(
    folder: Path,
    module,
    test_input: np.ndarray,
    in_axes: list[dict],
    out_axes: list[dict],
    *,
    opset: int = 20,
    ir_version: int = 9,
    normalize: bool = False,
    name: str = "tiny onnx model",
) -> Path:
    """Only `onnx` weights, converted to `opset` (and stamped with `ir_version`) as a newer exporter writes them;
    the rest as `write_package` writes it."""
    import onnx
    from onnx import version_converter

    write_package(
        folder, module, test_input, in_axes, out_axes, formats=("onnx",), trace=True, normalize=normalize, name=name
    )
    (folder / "weights.pt").unlink()
    proto = onnx.load(str(folder / "weights.onnx"))
    if opset != 17:
        proto = version_converter.convert_version(proto, opset)
    proto.ir_version = ir_version
    onnx.save(proto, str(folder / "weights.onnx"))
    rdf = load_rdf(folder)
    rdf["weights"] = {"onnx": {"source": "weights.onnx", "opset_version": opset}}
    save_rdf(folder, rdf)
    return folder


def to_format_0_4(folder: Path) -> Path:
    """Rewrite a package written by this module at format 0.4.10, as older exporters wrote it: axes as letters,
    shapes as min/step lists (outputs as a reference to the input), `test_inputs`/`test_outputs` lists, no axis ids."""
    rdf = load_rdf(folder)
    inputs, outputs = rdf["inputs"], rdf["outputs"]
    letters = {"batch": "b", "channel": "c"}

    def axes(tensor: dict) -> str:
        return "".join(letters.get(a["type"], a.get("id", "x")) for a in tensor["axes"])

    def input_shape(tensor: dict) -> dict:
        minimum, step = [], []
        for axis in tensor["axes"]:
            size = axis.get("size")
            size = len(axis["channel_names"]) if axis["type"] == "channel" else (1 if size is None else size)
            minimum.append(size["min"] if isinstance(size, dict) else size)
            step.append(size["step"] if isinstance(size, dict) else 0)
        return {"min": minimum, "step": step}

    def converted(tensor: dict, shape: dict, processing: str) -> dict:
        out = {"name": tensor["id"], "axes": axes(tensor), "data_type": "float32", "shape": shape}
        if tensor.get(processing):
            kwargs = dict(tensor[processing][0]["kwargs"])
            kwargs["axes"] = "".join(kwargs.get("axes", ["y", "x"]))
            out[processing] = [{"name": tensor[processing][0]["id"], "kwargs": {"mode": "per_sample", **kwargs}}]
        return out

    for entry in rdf["weights"].values():
        architecture = entry.pop("architecture", None)
        if architecture is not None:  # 0.4: `file.py:Callable`, its sha256 and the kwargs beside it
            entry["architecture"] = f"{architecture['source']}:{architecture['callable']}"
            entry["architecture_sha256"] = hashlib.sha256((folder / architecture["source"]).read_bytes()).hexdigest()
            entry["kwargs"] = architecture.get("kwargs", {})
    n = len(outputs[0]["axes"])
    rdf.update(
        format_version="0.4.10",
        inputs=[converted(inputs[0], input_shape(inputs[0]), "preprocessing")],
        outputs=[converted(outputs[0], {"reference_tensor": inputs[0]["id"], "scale": [1] * n, "offset": [0] * n}, "")],
        test_inputs=[inputs[0]["test_tensor"]["source"]],
        test_outputs=[outputs[0]["test_tensor"]["source"]],
    )
    save_rdf(folder, rdf)
    return folder
