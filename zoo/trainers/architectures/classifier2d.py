"""A small 2D image classifier: convolution blocks with max pooling, global average pooling, one linear layer.

Self-contained: imports only torch, because bioimage.io packages ship this file as the architecture of
their `pytorch_state_dict` weights. Input (batch, channels, y, x), output (batch, classes).
"""

from __future__ import annotations

import torch
from torch import nn


class Classifier2d(nn.Module):
    """`depth` blocks of two 3×3 convolutions (BatchNorm, ReLU) each followed by 2×2 max pooling; `final_activation`
    is "softmax" (class probabilities) or "none" (logits)."""

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 3,
        base_channels: int = 16,
        depth: int = 3,
        final_activation: str = "softmax",
    ):
        super().__init__()
        if final_activation not in ("softmax", "none"):
            raise ValueError(f"final_activation {final_activation!r}, expected softmax or none")
        layers: list[nn.Module] = []
        previous = in_channels
        for level in range(depth):
            width = base_channels * 2**level
            layers += [
                nn.Conv2d(previous, width, kernel_size=3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, kernel_size=3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(previous, n_classes)
        self.final_activation = final_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        x = self.classifier(x)
        if self.final_activation == "softmax":
            return torch.softmax(x, dim=1)
        return x
