"""A plain VGG-style CNN: the baseline the original study started from.

Stages of two 3x3 conv-BN-ReLU layers followed by 2x2 max-pooling, widths doubling per stage.
"""

from __future__ import annotations

import torch
from torch import nn

from classmood.models.registry import PixelNorm, classifier_head, conv_bn_relu, register_model


class PlainCNN(nn.Module):
    def __init__(
        self, num_classes: int, width: int = 32, stages: int = 4, dropout: float = 0.3, match_contrast: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [PixelNorm(match_contrast)]
        cin = 1
        for i in range(stages):
            cout = width * 2**i
            layers += [conv_bn_relu(cin, cout), conv_bn_relu(cout, cout), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(cin, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("plain_cnn")
def plain_cnn(num_classes: int, width: int = 32, dropout: float = 0.3, match_contrast: bool = False) -> nn.Module:
    """VGG-style baseline, 4 stages (48 -> 3 px), ~1.2 M params at width 32."""
    return PlainCNN(num_classes, width=width, dropout=dropout, match_contrast=match_contrast)


@register_model("plain_cnn_small")
def plain_cnn_small(num_classes: int, width: int = 16, dropout: float = 0.2, match_contrast: bool = False) -> nn.Module:
    """The same design at a quarter of the MACs: a candidate for the ``fast`` live-video model."""
    return PlainCNN(num_classes, width=width, dropout=dropout, match_contrast=match_contrast)
