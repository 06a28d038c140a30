"""Batched face augmentation in PyTorch: the same code runs on the GPU (when training there) and CPU.

One random affine warp per image (rotation, scale, shift, horizontal flip) is applied to the whole
batch with a single ``grid_sample`` call, then random erasing blanks a rectangle. Working on
batches already on the training device keeps a GPU fed without a data-loader process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    shift: float = 0.10  # fraction of the image size
    flip: float = 0.5  # probability of a horizontal flip
    erase: float = 0.5  # probability of random erasing
    erase_area: tuple[float, float] = (0.02, 0.2)
    brightness: float = 0.25  # +/- fraction of the pixel range
    contrast: float = 0.25  # multiplicative +/- around the image mean


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment a float batch (N, 1, H, W) of pixel values in [0, 255]; returns a new tensor."""
    n, _, h, w = x.shape
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, device=dev, generator=generator)

    angle = (rand(n) * 2 - 1) * math.radians(cfg.rotate_deg)
    scale = cfg.scale[0] + rand(n) * (cfg.scale[1] - cfg.scale[0])
    flip = torch.where(rand(n) < cfg.flip, -1.0, 1.0)
    tx, ty = ((rand(2, n) * 2 - 1) * cfg.shift * 2).unbind(0)  # grid coords span 2 units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Border padding: a shifted face shows smeared edge pixels rather than black bars, like a real crop.
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    gain = 1 + (rand(n, 1, 1, 1) * 2 - 1) * cfg.contrast
    bias = (rand(n, 1, 1, 1) * 2 - 1) * cfg.brightness * 255
    out = ((out - mean) * gain + mean + bias).clamp(0, 255)

    if cfg.erase > 0:
        area = (cfg.erase_area[0] + rand(n) * (cfg.erase_area[1] - cfg.erase_area[0])) * h * w
        aspect = torch.exp((rand(n) * 2 - 1) * math.log(3))
        eh = (area * aspect).sqrt().clamp(1, h)
        ew = (area / aspect).sqrt().clamp(1, w)
        y0 = rand(n) * (h - eh)
        x0 = rand(n) * (w - ew)
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        box = (
            (ys >= y0.view(n, 1, 1))
            & (ys < (y0 + eh).view(n, 1, 1))
            & (xs >= x0.view(n, 1, 1))
            & (xs < (x0 + ew).view(n, 1, 1))
        )
        box &= (rand(n) < cfg.erase).view(n, 1, 1)
        noise = rand(n, h, w) * 255
        out = torch.where(box.unsqueeze(1), noise.unsqueeze(1), out)
    return out
