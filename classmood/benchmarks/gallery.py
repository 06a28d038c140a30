"""Small video-call galleries of FER2013 faces with known boxes, for benchmarks that go through the detector."""

from __future__ import annotations

import cv2
import numpy as np

from classmood.benchmarks.pipeline import _face_tile


def render_gallery_frames(
    images: np.ndarray,
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 368),
    grid: tuple[int, int] = (4, 4),
    face_px: tuple[int, int] = (34, 50),
) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """All ``images`` laid out ``grid`` (rows, cols) per BGR frame of ``size`` (w, h), one face per tile.

    Returns the frames and, per frame, (indices into ``images``, face boxes x1, y1, x2, y2). Tiles
    are dark grey with a 1 px gap, as in Zoom's gallery; each face is ``face_px`` wide (uniform).
    """
    w, h = size
    rows, cols = grid
    tw, th = w // cols, h // rows
    per = rows * cols
    frames, truth = [], []
    for start in range(0, len(images), per):
        idx = np.arange(start, min(start + per, len(images)))
        frame = np.full((h, w, 3), 20, np.uint8)
        boxes = np.zeros((len(idx), 4), np.float32)
        for t, i in enumerate(idx):
            r, c = divmod(t, cols)
            x0, y0 = c * tw, r * th
            shade = int(rng.integers(35, 70))
            cv2.rectangle(frame, (x0 + 1, y0 + 1), (x0 + tw - 2, y0 + th - 2), (shade, shade, shade), -1)
            px = int(rng.integers(face_px[0], face_px[1] + 1))
            tile = _face_tile(images[i], px)
            s = min(tile.shape[0], th - 4)
            tile = tile[
                (tile.shape[0] - s) // 2 : (tile.shape[0] - s) // 2 + s,
                (tile.shape[1] - s) // 2 : (tile.shape[1] - s) // 2 + s,
            ]
            fx, fy = x0 + (tw - s) // 2 + int(rng.integers(-10, 11)), y0 + (th - s) // 2
            frame[fy : fy + s, fx : fx + s] = tile[..., None]
            m = (s - px) / 2
            boxes[t] = (fx + m, fy + m, fx + m + px, fy + m + px)
        frames.append(frame)
        truth.append((idx, boxes))
    return frames, truth
