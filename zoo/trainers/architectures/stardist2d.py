"""StarDist 2D (Schmidt, Weigert, Broaddus, Myers 2018, doi:10.1007/978-3-030-00934-2_30): a U-Net whose features
feed two heads, the probability that a pixel is inside an object (weighted towards its centre) and the distances
from the pixel to the object's boundary along `n_rays` equally spaced rays.

Self-contained: imports only torch, because bioimage.io packages ship this file as the architecture of their
`pytorch_state_dict` weights. The output is (batch, y, x, 1 + n_rays), channels last with the probability first,
as bioimage.io's `stardist_postprocessing` reads it; spatial sizes must be multiples of 2**depth.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class StarDist2d(nn.Module):
    """U-Net with `depth` poolings, a 3x3 feature layer of `head_channels`, then a probability channel (sigmoid,
    or the logit with `final_activation` "none") and `n_rays` distance channels (linear, in pixels)."""

    def __init__(
        self,
        in_channels: int = 1,
        n_rays: int = 32,
        base_channels: int = 32,
        depth: int = 3,
        head_channels: int = 128,
        final_activation: str = "sigmoid",
    ):
        super().__init__()
        if final_activation not in ("sigmoid", "none"):
            raise ValueError(f"final_activation {final_activation!r}, expected sigmoid or none")
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
            self.upsamplers.append(nn.ConvTranspose2d(channels[level + 1], channels[level], 2, stride=2))
            self.decoders.append(_conv_block(2 * channels[level], channels[level]))
        self.features = nn.Sequential(nn.Conv2d(channels[0], head_channels, kernel_size=3, padding=1), nn.ReLU())
        self.prob = nn.Conv2d(head_channels, 1, kernel_size=1)
        self.dist = nn.Conv2d(head_channels, n_rays, kernel_size=1)
        self.final_activation = final_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips)):
            x = decoder(torch.cat([upsample(x), skip], dim=1))
        x = self.features(x)
        prob = self.prob(x)
        if self.final_activation == "sigmoid":
            prob = torch.sigmoid(prob)
        # channels last (b, y, x, c): the axes bioimage.io's stardist_postprocessing reads and returns its labels in
        return torch.cat([prob, self.dist(x)], dim=1).permute(0, 2, 3, 1)
