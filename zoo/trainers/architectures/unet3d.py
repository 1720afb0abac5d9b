"""A small 3D U-Net (Çiçek et al. 2016, doi:10.1007/978-3-319-46723-8_49) for (z, y, x) volumes.

Self-contained: imports only torch, because bioimage.io packages ship this file as the architecture of
their `pytorch_state_dict` weights. Every spatial size must be a multiple of 2**depth.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv3d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet3d(nn.Module):
    """U-Net with `depth` poolings in z, y and x; `final_activation` is "sigmoid", "softmax" or "none"."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        base_channels: int = 8,
        depth: int = 2,
        final_activation: str = "sigmoid",
    ):
        super().__init__()
        if final_activation not in ("sigmoid", "softmax", "none"):
            raise ValueError(f"final_activation {final_activation!r}, expected sigmoid, softmax or none")
        channels = [base_channels * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList()
        previous = in_channels
        for width in channels[:-1]:
            self.encoders.append(_conv_block(previous, width))
            previous = width
        self.bottleneck = _conv_block(channels[-2], channels[-1])
        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(depth)):
            self.upsamplers.append(nn.ConvTranspose3d(channels[level + 1], channels[level], 2, stride=2))
            self.decoders.append(_conv_block(2 * channels[level], channels[level]))
        self.head = nn.Conv3d(channels[0], out_channels, kernel_size=1)
        self.final_activation = final_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = nn.functional.max_pool3d(x, 2)
        x = self.bottleneck(x)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips)):
            x = decoder(torch.cat([upsample(x), skip], dim=1))
        x = self.head(x)
        if self.final_activation == "sigmoid":
            return torch.sigmoid(x)
        if self.final_activation == "softmax":
            return torch.softmax(x, dim=1)
        return x
