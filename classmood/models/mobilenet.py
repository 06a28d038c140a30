"""MobileNetV2 (Sandler et al., 2018) adapted to 48x48 input.

The 224-px network downsamples 32x; here the stem keeps full resolution (or halves it, for the
lite variant) and there are four stride-2 stages, so small faces keep their detail.
"""

from __future__ import annotations

import torch
from torch import nn

from classmood.models.registry import PixelNorm, classifier_head, conv_bn_relu, register_model


def _round8(v: float) -> int:
    return max(8, int(v + 4) // 8 * 8)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [conv_bn_relu(cin, hidden, k=1)] if expand != 1 else []
        layers += [
            conv_bn_relu(hidden, hidden, k=3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


# (expansion, channels, repeats, first stride), as in the paper's Table 2 with strides adapted.
_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class MobileNetV2(nn.Module):
    def __init__(
        self, num_classes: int, width_mult: float = 1.0, stem_stride: int = 1, last: int = 640, dropout: float = 0.2
    ) -> None:
        super().__init__()
        cin = _round8(32 * width_mult)
        layers: list[nn.Module] = [PixelNorm(), conv_bn_relu(1, cin, k=3, stride=stem_stride)]
        for t, c, n, s in _SETTINGS:
            cout = _round8(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(conv_bn_relu(cin, last, k=1))
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(last, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("mobilenet_v2")
def mobilenet_v2(num_classes: int, width_mult: float = 1.0, dropout: float = 0.2) -> nn.Module:
    """MobileNetV2 with a full-resolution stem; width_mult scales every layer."""
    return MobileNetV2(num_classes, width_mult=width_mult, dropout=dropout)


@register_model("mobilenet_v2_lite")
def mobilenet_v2_lite(num_classes: int, width_mult: float = 0.75, dropout: float = 0.2) -> nn.Module:
    """MobileNetV2 with a stride-2 stem (starts at 24x24): a sixth of the MACs, CPU-trainable."""
    return MobileNetV2(num_classes, width_mult=width_mult, stem_stride=2, last=512, dropout=dropout)
