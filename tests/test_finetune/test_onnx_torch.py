"""zoo's ONNX → PyTorch translator: the module equals onnxruntime on ONNX files PyTorch writes (U-Net parts:
convolutions, normalisation, pooling, transposed convolutions, resizing, concatenation), its weights train, the trained
weights written back into the graph run in onnxruntime as in torch, and an op it lacks is named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from zoo.finetune.onnx_torch import OnnxModule, UnsupportedOnnxOp


class Net(nn.Module):
    def __init__(self, upsample: str):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.LeakyReLU(0.1))
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2) if upsample == "transposed" else nn.Conv2d(8, 4, 1)
        self.upsample = upsample
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x):
        skip = self.enc(x)
        y = self.down(nn.functional.max_pool2d(skip, 2))
        if self.upsample == "transposed":
            y = self.up(y)
        else:
            y = nn.functional.interpolate(self.up(y), size=skip.shape[2:], mode=self.upsample)
        return torch.sigmoid(self.head(torch.cat([y, skip], dim=1)))


def export(module: nn.Module, path, opset: int = 17):
    torch.manual_seed(0)
    module.eval()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    torch.onnx.export(
        module, (torch.randn(1, 1, 32, 32),), str(path), dynamo=False, opset_version=opset, input_names=["x"],
        output_names=["y"], dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}, "y": {0: "b", 2: "h", 3: "w"}},
    )  # fmt: skip
    return path


def onnxruntime_run(path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("upsample", ["transposed", "nearest", "bilinear"])
def test_translated_module_equals_onnxruntime(tmp_path, upsample):
    path = export(Net(upsample), tmp_path / "net.onnx")
    module = OnnxModule(path).eval()
    rng = np.random.default_rng(0)
    for shape in ((1, 1, 32, 32), (2, 1, 24, 40)):
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            got = module(torch.from_numpy(x)).numpy()
        assert np.abs(got - onnxruntime_run(path, x)).max() < 1e-5
    assert module.final_activation == "sigmoid"


def test_weights_train_and_are_written_back(tmp_path):
    path = export(Net("transposed"), tmp_path / "net.onnx")
    module = OnnxModule(path)
    names = module.trainable_names()
    assert len(names) == len(list(module.parameters())) >= 8  # convolutions, transposed convolution, normalisation
    x = torch.randn(2, 1, 32, 32)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    before = module(x).detach()
    module(x).mean().backward()
    optimizer.step()
    assert not torch.allclose(module(x).detach(), before)
    module.logits = True
    logits = module(x).detach()
    module.logits = False
    assert torch.allclose(torch.sigmoid(logits), module(x).detach(), atol=1e-6)
    written = module.save_onnx(tmp_path / "trained.onnx")
    with torch.no_grad():
        expected = module(x).numpy()
    assert np.abs(onnxruntime_run(written, x.numpy()) - expected).max() < 1e-5


def test_an_op_the_translator_lacks_is_named(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="ij,jk->ik")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
    )  # fmt: skip
    path = tmp_path / "einsum.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(UnsupportedOnnxOp) as caught:
        OnnxModule(path)
    assert caught.value.op_type == "Einsum"
    assert "\n" not in str(caught.value)
