"""In-memory appearance cues that let a face keep its id when the call's layout changes.

When a gallery re-flows (someone joins or leaves), zooms into speaker view, pages or shares a
screen, every face jumps to a new place and size, so box overlap, the only cue an IoU tracker
has, says nothing; and after a scene cut in a recording, overlap can hand one person's id to
another who happens to sit in the same place. Two cheap cues survive a change of place and size:

* the face itself, as a blurred 12x12 grey thumbnail of the box's inner 80 %, compared by
  normalised correlation at the best of nine one-pixel shifts (boxes frame a face a little
  differently at another size; without the shifts a face zoomed into speaker view correlated
  with itself as little as with a stranger);
* the colours around it (hair, shirt, room), as a hue-saturation histogram of the head-and-
  shoulders region (compared by the Bhattacharyya coefficient, which ignores scale).

These are not face recognition: they are coarse (256 grey values and 48 colour bins), live only
inside one session's tracker, are never written anywhere and are dropped with the session.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 12  # stored size; compared as 10x10 windows at shifts 0-2 px
WINDOW = THUMB - 2
HUE_BINS, SAT_BINS = 12, 4


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)


def describe(image: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 144) face thumbnails (12x12, zero mean, unit norm) and (N, 48) square-rooted colour histograms."""
    n = len(xyxy)
    thumbs = np.zeros((n, THUMB * THUMB), np.float32)
    hists = np.zeros((n, HUE_BINS * SAT_BINS), np.float32)
    if n == 0:
        return thumbs, hists
    h, w = image.shape[:2]
    bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    for i, (x1, y1, x2, y2) in enumerate(xyxy):
        bw, bh = x2 - x1, y2 - y1
        inner = ((x1 + 0.1 * bw, w), (y1 + 0.1 * bh, h), (x2 - 0.1 * bw, w), (y2 - 0.1 * bh, h))
        fx1, fy1, fx2, fy2 = (int(np.clip(v, 0, lim)) for v, lim in inner)
        if fx2 - fx1 >= 2 and fy2 - fy1 >= 2:
            t = cv2.resize(grey[fy1:fy2, fx1:fx2], (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
            thumbs[i] = _unit(cv2.GaussianBlur(t, (0, 0), 0.7).ravel())
        cx1, cy1 = int(np.clip(x1 - 0.5 * bw, 0, w)), int(np.clip(y1 - 0.3 * bh, 0, h))
        cx2, cy2 = int(np.clip(x2 + 0.5 * bw, 0, w)), int(np.clip(y2 + 1.0 * bh, 0, h))
        if cx2 - cx1 >= 2 and cy2 - cy1 >= 2:
            hsv = cv2.cvtColor(bgr[cy1:cy2, cx1:cx2], cv2.COLOR_BGR2HSV)
            hist = cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SAT_BINS], [0, 180, 0, 256]).ravel()
            hists[i] = np.sqrt(hist / max(float(hist.sum()), 1e-6))
    return thumbs, hists


FACE_WEIGHT = 0.5


def face_correlation(thumbs_a: np.ndarray, thumbs_b: np.ndarray) -> np.ndarray:
    """(N, M): the best normalised correlation of a's centre window with b's windows shifted 0-2 px."""
    a = _unit(thumbs_a.reshape(-1, THUMB, THUMB)[:, 1 : 1 + WINDOW, 1 : 1 + WINDOW].reshape(len(thumbs_a), -1))
    b = thumbs_b.reshape(-1, THUMB, THUMB)
    best = np.full((len(thumbs_a), len(thumbs_b)), -1.0, np.float32)
    for dy in range(3):
        for dx in range(3):
            window = _unit(b[:, dy : dy + WINDOW, dx : dx + WINDOW].reshape(len(thumbs_b), -1))
            best = np.maximum(best, a @ window.T)
    return best


def similarity(thumbs_a: np.ndarray, hists_a: np.ndarray, thumbs_b: np.ndarray, hists_b: np.ndarray) -> np.ndarray:
    """(N, M) in about [-0.5, 1]: face correlation and colour (Bhattacharyya) agreement, averaged.

    On the ``bench --events`` recording (tuning seed) the same person across a re-layout, a zoom
    or a screen share scored 0.89-1.0, two different people at most 0.72."""
    if len(thumbs_a) == 0 or len(thumbs_b) == 0:
        return np.zeros((len(thumbs_a), len(thumbs_b)), np.float32)
    return FACE_WEIGHT * face_correlation(thumbs_a, thumbs_b) + (1 - FACE_WEIGHT) * (hists_a @ hists_b.T)


def frame_signature(image: np.ndarray) -> np.ndarray:
    """A 64x36 grey, zero-mean, unit-norm copy of the frame, to tell a cut or re-layout from motion."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    return small / max(float(np.linalg.norm(small)), 1e-6)
