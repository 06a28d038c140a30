"""DenseNet-BC (Huang et al., 2017) for 48x48 input.

Each layer sees the concatenation of all earlier feature maps in its block (1x1 bottleneck then
3x3 conv, ``growth`` new channels); transitions halve channels and resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from classmood.models.registry import PixelNorm, classifier_head, conv_bn_relu, register_model


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


def _transition(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2)
    )


class DenseNet(nn.Module):
    def __init__(
        self, num_classes: int, growth: int = 16, blocks: tuple[int, ...] = (4, 8, 12, 8), dropout: float = 0.2
    ) -> None:
        super().__init__()
        c = 2 * growth
        # 3x3 stride-2 stem: 48 -> 24 px, then dense blocks at 24, 12, 6, 3 px.
        layers: list[nn.Module] = [PixelNorm(), conv_bn_relu(1, c, k=3, stride=2)]
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            if i < len(blocks) - 1:
                layers.append(_transition(c, c // 2))
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(c, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("densenet")
def densenet(num_classes: int, growth: int = 16, dropout: float = 0.2) -> nn.Module:
    """DenseNet-BC, blocks (4, 8, 12, 8), growth 16, compression 0.5."""
    return DenseNet(num_classes, growth=growth, dropout=dropout)
