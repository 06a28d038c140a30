"""DeXpression (Burkert et al., 2015), sized for 48x48 grey faces.

conv 7x7/2 -> max-pool 3x3/2 -> FeatEx -> max-pool 3x3/2 -> FeatEx -> max-pool 3x3/2 -> classifier.
A FeatEx block runs two paths in parallel and concatenates them: [1x1 conv -> 3x3 conv] and
[3x3 max-pool -> 1x1 conv]. The paper's local response normalisation is replaced by batch
norm, which trains more reliably and is what modern re-implementations use.
"""

from __future__ import annotations

import torch
from torch import nn

from classmood.models.registry import PixelNorm, classifier_head, conv_bn_relu, register_model


class FeatEx(nn.Module):
    """Parallel feature extraction block: [1x1 -> 3x3] || [pool -> 1x1], concatenated."""

    def __init__(self, cin: int, reduce: int = 96, mid: int = 208, pool_proj: int = 64) -> None:
        super().__init__()
        self.conv_path = nn.Sequential(conv_bn_relu(cin, reduce, k=1), conv_bn_relu(reduce, mid, k=3))
        self.pool_path = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn_relu(cin, pool_proj, k=1))
        self.out_channels = mid + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv_path(x), self.pool_path(x)], dim=1)


class DeXpression(nn.Module):
    def __init__(self, num_classes: int, stem: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        self.stem = nn.Sequential(PixelNorm(), conv_bn_relu(1, stem, k=7, stride=2), nn.MaxPool2d(3, 2, 1))
        self.featex1 = FeatEx(stem)
        self.pool1 = nn.MaxPool2d(3, 2, 1)
        self.featex2 = FeatEx(self.featex1.out_channels)
        self.pool2 = nn.MaxPool2d(3, 2, 1)
        self.head = classifier_head(self.featex2.out_channels, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.featex1(self.stem(x)))
        return self.head(self.pool2(self.featex2(x)))


@register_model("dexpression")
def dexpression(num_classes: int, dropout: float = 0.3) -> nn.Module:
    """DeXpression: 7x7 stem and two FeatEx blocks (24 -> 12 -> 6 -> 3 px)."""
    return DeXpression(num_classes, dropout=dropout)
