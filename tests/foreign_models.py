"""Models someone else made: small PyTorch modules written without zoo's architectures, each built by a function that
returns it seeded and in eval() mode (except `with_dropout`, left in train mode on purpose). Tests probe, package
and validate them as a user's TorchScript or state dict would be; `as_predict` runs one on numpy arrays."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def as_predict(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy-in, numpy-out callable running `model` without gradients."""

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return predict


def _block(conv: type[nn.Module], cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv(cin, cout, 3, padding=1), nn.ReLU())


class _UNet(nn.Module):
    """Padding-same convolutions, `depth` max-poolings, nearest upsampling and concatenation: sizes must divide
    by 2**depth, or the skip connections do not line up and torch.cat raises."""

    def __init__(self, dims: int, depth: int, channels: int, width: int) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.pool = nn.MaxPool2d(2) if dims == 2 else nn.MaxPool3d(2)
        self.up = nn.Upsample(scale_factor=2)
        widths = [width * min(2**level, 2) for level in range(depth + 1)]
        self.down = nn.ModuleList([_block(conv, channels, widths[0])])
        self.down.extend(_block(conv, widths[i], widths[i + 1]) for i in range(depth))
        self.decode = nn.ModuleList(_block(conv, widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = conv(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.down[0](x)]
        for block in self.down[1:]:
            skips.append(block(self.pool(skips[-1])))
        x = skips.pop()
        for block in self.decode:
            x = block(torch.cat([self.up(x), skips.pop()], dim=1))
        return torch.sigmoid(self.head(x))


def _seeded(build: Callable[[], nn.Module], train: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return build().train(train)


def unet_four_poolings(channels: int = 1) -> nn.Module:
    """2D U-Net, 4 poolings: accepts multiples of 16 (16, 32, ...), output the input's size, sigmoid."""
    return _seeded(lambda: _UNet(2, 4, channels, width=4))


def unet3d_two_poolings() -> nn.Module:
    """3D U-Net, 2 poolings: accepts cubes with sides that are multiples of 4, output the input's size, sigmoid."""
    return _seeded(lambda: _UNet(3, 2, 1, width=4))


def valid_convolutions() -> nn.Module:
    """Three 3x3 convolutions without padding: the output is 6 px smaller than the input; accepts 7 px and up."""
    return _seeded(
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 3), nn.Sigmoid()
        )
    )


def upsampling_x2() -> nn.Module:
    """Convolution, 2x nearest upsampling, convolution: the output is twice the input's size; accepts any size."""
    return _seeded(
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2), nn.Conv2d(4, 1, 3, padding=1)
        )
    )


def classifier_fixed(size: int = 32, classes: int = 3) -> nn.Module:
    """Convolution, flatten, linear: accepts exactly size x size; softmax over `classes` (output (b, classes))."""
    return _seeded(
        lambda: nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * size * size, classes),
            nn.Softmax(dim=1),
        )
    )


def with_dropout() -> nn.Module:
    """A small convolutional net whose Dropout2d was left on: returned in train() mode, as saved by mistake."""
    return _seeded(
        lambda: nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.5), nn.Conv2d(8, 1, 3, padding=1)
        ),
        train=True,
    )


def multichannel_net(channels: int = 3) -> nn.Module:
    """`channels` in, 2 channels out per pixel (no activation); accepts any size."""
    return _seeded(lambda: nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1)))


class _ChannelsLast(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def channels_last_net(channels: int = 3) -> nn.Module:
    """`multichannel_net` taking and returning (b, y, x, c), as a Keras model does."""
    return _seeded(lambda: _ChannelsLast(multichannel_net(channels)))


class _TwoOrThreeD(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.flat = nn.Conv2d(channels, 1, 3, padding=1)
        self.volume = nn.Conv3d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flat(x) if x.ndim == 4 else self.volume(x)


def two_or_three_d(channels: int = 3) -> nn.Module:
    """Runs on 2D images with `channels` channels and on one-channel 3D volumes: a (3, y, x) sample fits both."""
    return _seeded(lambda: _TwoOrThreeD(channels))
