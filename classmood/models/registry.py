"""One registry for every architecture, in the spirit of timm's ``register_model``/``create_model``.

Each entry is a factory ``(num_classes, **kwargs) -> nn.Module`` for 48x48 grey faces. Every
model takes raw pixel values in [0, 255] (shape N x 1 x 48 x 48) and normalises them itself, so
the exported ONNX graph needs no preprocessing beyond cropping and resizing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from classmood.errors import ClassmoodError
from classmood.labels import NUM_CLASSES

ModelFactory = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelFactory] = {}

# FER2013 Training pixel statistics (mean 130.96 per the data README; std measured on Training).
PIXEL_MEAN = 131.0
PIXEL_STD = 65.0
# The median FER2013 Training crop: its mean and standard deviation (measured over the 28,709 crops;
# 90 % have a std of 73-92, because the dataset's crops were contrast-equalised). Real webcam crops
# are far flatter, so ``match_contrast`` maps every crop to these before the network sees it.
CROP_MEAN = 128.7
CROP_STD = 74.7
MIN_CROP_STD = 10.0  # a nearly flat crop is not stretched beyond this (it would amplify only noise)


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: make ``factory`` available as ``create_model(name)``."""

    def wrap(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return wrap


def list_models() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def model_factory(name: str) -> ModelFactory:
    """The factory registered as ``name``; an unknown name is a ``ClassmoodError`` (one line, like an
    unknown detector or shipped model), so a recipe's typo is refused before any data is read."""
    if name not in _REGISTRY:
        raise ClassmoodError(f"unknown architecture {name!r}; known: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int = NUM_CLASSES, **kwargs: Any) -> nn.Module:
    """Build a fresh, randomly initialised model by registered name."""
    return model_factory(name)(num_classes=num_classes, **kwargs)


class PixelNorm(nn.Module):
    """Maps raw [0, 255] pixels to roughly zero mean, unit variance inside the network.

    With ``match_contrast`` each crop's own mean and standard deviation are first matched to the
    median FER2013 Training crop's, so a dim, washed-out webcam face reaches the network with the
    contrast the training faces had (part of the graph, so every runtime does the same).
    """

    def __init__(self, match_contrast: bool = False) -> None:
        super().__init__()
        self.match_contrast = match_contrast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.match_contrast:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = (x - mean).pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp(min=MIN_CROP_STD)
            x = (x - mean) / std * CROP_STD + CROP_MEAN
        return (x - PIXEL_MEAN) / PIXEL_STD


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """The conv -> batch-norm -> ReLU unit most of these networks are built from."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def classifier_head(cin: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Global average pool, dropout, linear: the head every architecture here shares."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes))
