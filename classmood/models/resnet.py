"""ResNet-18 layout (He et al., 2016) for 48x48 grey faces: the architecture the study chose.

A 3x3 stem replaces the 7x7/2 + max-pool of the 224-px network. ``stem_stride=1`` keeps all
48x48 pixels for the first stage (the GPU-sized model, ~11 M params at width 64);
``stem_stride=2`` starts at 24x24, a quarter of the MACs, which is what fits CPU training.
"""

from __future__ import annotations

import torch
from torch import nn

from classmood.models.registry import PixelNorm, classifier_head, conv_bn_relu, register_model


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(cin, cout, stride=stride),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self,
        num_classes: int,
        width: int = 64,
        depths: tuple[int, ...] = (2, 2, 2, 2),
        stem_stride: int = 1,
        dropout: float = 0.2,
        match_contrast: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [PixelNorm(match_contrast), conv_bn_relu(1, width, stride=stem_stride)]
        cin = width
        for i, depth in enumerate(depths):
            cout = width * 2**i
            for j in range(depth):
                layers.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
                cin = cout
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(cin, num_classes, dropout)
        for m in self.modules():  # zero-init the last BN of each block: each starts as identity
            if isinstance(m, BasicBlock):
                bn = m.body[-1]
                assert isinstance(bn, nn.BatchNorm2d)
                nn.init.zeros_(bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("resnet18")
def resnet18(
    num_classes: int, width: int = 64, dropout: float = 0.2, stem_stride: int = 1, match_contrast: bool = False
) -> nn.Module:
    """ResNet-18 at full 48x48 resolution (~11 M params at width 64): train on a GPU."""
    return ResNet(num_classes, width=width, stem_stride=stem_stride, dropout=dropout, match_contrast=match_contrast)


@register_model("resnet18_lite")
def resnet18_lite(num_classes: int, width: int = 32, dropout: float = 0.2, match_contrast: bool = False) -> nn.Module:
    """ResNet-18 with a stride-2 stem and half width (~2.8 M params): CPU-trainable."""
    return ResNet(num_classes, width=width, stem_stride=2, dropout=dropout, match_contrast=match_contrast)
