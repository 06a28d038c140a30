"""Batched video-call degradations for training (PyTorch; the same code on the GPU and the CPU).

Real class video shows faces that are small, soft, noisy, dim, flat and block-coded, with hands,
masks and microphones in front of them. Trained only on FER2013's sharp, high-contrast crops, a
model reads missing detail as a negative expression (blurring PublicTest's neutral faces by 1 px
turns about half of them negative). ``degrade_batch`` shows the network the same face through a
random call: photometric changes, an occluder, sensor noise, lens or motion blur, the face's small
size in the frame with JPEG-style 8x8 DCT coding at that size, and the enlargement back to 48 px
that the pipeline's crops make. The robustness benchmark judges the result with the real codecs
(OpenCV JPEG, libx264), not with this code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# JPEG's luminance quantisation table (ITU T.81, Annex K), scaled by quality as libjpeg does.
_JPEG_LUMA = torch.tensor(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=torch.float32,
)


@dataclass(frozen=True)
class DegradeConfig:
    p: float = 0.0  # probability that a face goes through a simulated call at all (0 = off)
    sizes: tuple[int, ...] = (16, 24, 32, 40, 48)  # face width in the frame, px (multiples of 8)
    blur_sigma: tuple[float, float] = (0.0, 1.6)
    motion_p: float = 0.15  # share of blurred faces whose blur is a motion streak instead
    jpeg_p: float = 0.6
    jpeg_quality: tuple[int, int] = (20, 80)
    noise_sigma: tuple[float, float] = (0.0, 8.0)
    contrast: tuple[float, float] = (0.35, 1.0)
    gamma: tuple[float, float] = (0.7, 1.5)
    occlude_p: float = 0.15  # a flat occluder: a mask over the lower face or a hand/microphone blob


def _rand(n: int, lo: float, hi: float, gen: torch.Generator | None, dev: torch.device) -> torch.Tensor:
    return lo + torch.rand(n, device=dev, generator=gen) * (hi - lo)


def _dct_matrix(dev: torch.device) -> torch.Tensor:
    k = torch.arange(8, device=dev, dtype=torch.float32)
    m = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m


def jpeg_like(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """8x8 block-DCT coding of (N, 1, S, S) pixels with S a multiple of 8, one quality (1-100) per image."""
    n, _, s, _ = x.shape
    dev = x.device
    d = _dct_matrix(dev)
    q = quality.clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q) / 100
    table = (_JPEG_LUMA.to(dev)[None] * scale.view(n, 1, 1)).clamp(min=1).floor()  # (N, 8, 8)
    blocks = (x - 128).view(n, s // 8, 8, s // 8, 8).permute(0, 1, 3, 2, 4)  # (N, by, bx, 8, 8)
    coef = d @ blocks @ d.T
    t = table.view(n, 1, 1, 8, 8)
    coef = torch.round(coef / t) * t
    out = (d.T @ coef @ d).permute(0, 1, 3, 2, 4).reshape(n, 1, s, s) + 128
    return out.clamp(0, 255)


def _blur_kernels(
    n: int, cfg: DegradeConfig, gen: torch.Generator | None, dev: torch.device, k: int = 7
) -> torch.Tensor:
    """(N, 1, k, k) per-image kernels: Gaussian of a random sigma, or a short motion streak."""
    sigma = _rand(n, *cfg.blur_sigma, gen, dev).clamp(min=1e-3)
    r = torch.arange(k, device=dev, dtype=torch.float32) - k // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    gauss = torch.exp(-(xx**2 + yy**2)[None] / (2 * sigma.view(n, 1, 1) ** 2))
    angle = _rand(n, 0, math.pi, gen, dev).view(n, 1, 1)
    length = _rand(n, 2, k, gen, dev).view(n, 1, 1) / 2
    along = xx[None] * torch.cos(angle) + yy[None] * torch.sin(angle)
    across = -xx[None] * torch.sin(angle) + yy[None] * torch.cos(angle)
    streak = ((along.abs() <= length) & (across.abs() <= 0.5)).float()
    motion = (torch.rand(n, device=dev, generator=gen) < cfg.motion_p).view(n, 1, 1)
    kern = torch.where(motion, streak, gauss)
    return (kern / kern.sum(dim=(1, 2), keepdim=True)).unsqueeze(1)


def _occlude(x: torch.Tensor, cfg: DegradeConfig, gen: torch.Generator | None) -> torch.Tensor:
    n, _, h, w = x.shape
    dev = x.device
    ys = torch.arange(h, device=dev, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w)
    # a mask: everything below a line across the nose, within the face's width
    top = _rand(n, 0.5, 0.65, gen, dev).view(n, 1, 1) * h
    side = _rand(n, 0.08, 0.18, gen, dev).view(n, 1, 1) * w
    mask = (ys >= top) & (xs >= side) & (xs < w - side)
    # a hand or microphone: an ellipse over the mouth, chin or a cheek
    cy, cx = _rand(n, 0.6, 0.95, gen, dev).view(n, 1, 1) * h, _rand(n, 0.2, 0.8, gen, dev).view(n, 1, 1) * w
    ay, ax = _rand(n, 0.1, 0.25, gen, dev).view(n, 1, 1) * h, _rand(n, 0.12, 0.3, gen, dev).view(n, 1, 1) * w
    blob = ((ys - cy) / ay) ** 2 + ((xs - cx) / ax) ** 2 <= 1
    kind = torch.rand(n, device=dev, generator=gen).view(n, 1, 1) < 0.5
    region = torch.where(kind, mask, blob)
    region &= (torch.rand(n, device=dev, generator=gen) < cfg.occlude_p).view(n, 1, 1)
    shade = _rand(n, 20, 240, gen, dev).view(n, 1, 1, 1) + (ys.unsqueeze(0) - h / 2) * _rand(
        n, -1.5, 1.5, gen, dev
    ).view(n, 1, 1, 1)
    return torch.where(region.unsqueeze(1), shade.clamp(0, 255), x)


def degrade_batch(x: torch.Tensor, cfg: DegradeConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Send each face of a float batch (N, 1, 48, 48) in [0, 255] through a random call with probability ``cfg.p``."""
    n, _, h, w = x.shape
    if cfg.p <= 0 or n == 0:
        return x
    dev, gen = x.device, generator
    hit = torch.rand(n, device=dev, generator=gen) < cfg.p
    idx = hit.nonzero().flatten()
    if len(idx) == 0:
        return x
    y = x[idx]
    m = len(idx)
    # photometric: gamma, then contrast around the face's mean
    gamma = torch.exp(_rand(m, math.log(cfg.gamma[0]), math.log(cfg.gamma[1]), gen, dev)).view(m, 1, 1, 1)
    y = 255 * (y / 255).clamp(min=0) ** gamma
    mean = y.mean(dim=(2, 3), keepdim=True)
    y = (y - mean) * _rand(m, *cfg.contrast, gen, dev).view(m, 1, 1, 1) + mean
    y = _occlude(y, cfg, gen)
    y = y + torch.randn(y.shape, device=dev, generator=gen) * _rand(m, *cfg.noise_sigma, gen, dev).view(m, 1, 1, 1)
    kern = _blur_kernels(m, cfg, gen, dev)
    k = kern.shape[-1]
    y = F.conv2d(F.pad(y, (k // 2,) * 4, mode="replicate").view(1, m, h + k - 1, w + k - 1), kern, groups=m).view(
        m, 1, h, w
    )
    # the face's size in the frame, coded there, enlarged back as vision/crops.py does
    sizes = torch.tensor(cfg.sizes, device=dev)
    pick = sizes[torch.randint(len(cfg.sizes), (m,), device=dev, generator=gen)]
    coded = torch.rand(m, device=dev, generator=gen) < cfg.jpeg_p
    quality = _rand(m, *cfg.jpeg_quality, gen, dev)
    out = y.clone()
    for s in cfg.sizes:
        sel = (pick == s).nonzero().flatten()
        if len(sel) == 0:
            continue
        z = y[sel].clamp(0, 255)
        if s != h:
            z = F.interpolate(z, size=(s, s), mode="area")
        c = coded[sel]
        if c.any():
            z[c] = jpeg_like(z[c], quality[sel][c])
        if s != h:
            z = F.interpolate(z, size=(h, w), mode="bilinear", align_corners=False)
        out[sel] = z
    x = x.clone()
    x[idx] = out.clamp(0, 255)
    return x
