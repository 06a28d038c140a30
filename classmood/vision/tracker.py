"""Session-local pseudonymous face ids: IoU matching with the Hungarian algorithm (SciPy).

No face recognition and no appearance features: a face keeps its id while its box keeps
overlapping its last position. In a video-call gallery faces sit still in their tiles, so box
overlap between analysed frames (a few per second) is a strong cue. Ids are small integers
counted from 1 in each session and mean nothing outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from classmood.vision.detections import Detections


def _intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise intersection areas (N, M) of xyxy boxes, and each side's areas."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    return inter, (a[:, 2:] - a[:, :2]).prod(axis=1), (b[:, 2:] - b[:, :2]).prod(axis=1)


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over the smaller box's area, (N, M): 1 when one box lies inside the other."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    inter, area_a, area_b = _intersections(a, b)
    return inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (N, 4) and b (M, 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    inter, area_a, area_b = _intersections(a, b)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class _Track:
    track_id: int
    xyxy: np.ndarray
    last_seen: float
    hits: int = 1


class IoUTracker:
    """Assigns ``track_id`` to detections frame by frame.

    ``min_iou``: least overlap with a track's last box to continue it. ``max_age_s``: a track
    unseen for longer ends (its id is never reused), so a student who leaves and returns later
    gets a new pseudonym.

    Defaults measured on the synthetic gallery of ``classmood bench --pipeline`` (49 faces whose
    image changes every 4 s): the detector's box moves and changes shape when the face changes
    (IoU with the old box is often 0.1-0.3), and a hard face can go unfound for a whole 4 s
    stretch. With min_iou 0.3 / max_age 3 s that gave 13 identity switches in 20 s; 0.1 / 10 s
    gave 0-2. Faces in different tiles never overlap, and the Hungarian assignment keeps two
    nearby faces from sharing one track.

    Duplicates: when two detectors' differently shaped boxes of one face once made two tracks,
    both lived on and took the face in turns (9 switches in a 60 s gallery). So an established
    track (more hits) is preferred among tracks that overlap a detection, and a track left
    unmatched while lying on a matched face's box is absorbed (ended) at once.
    """

    def __init__(self, min_iou: float = 0.1, max_age_s: float = 10.0) -> None:
        self.min_iou, self.max_age_s = min_iou, max_age_s
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def active_ids(self) -> list[int]:
        return [t.track_id for t in self._tracks]

    def expected_boxes(self, time_s: float) -> np.ndarray:
        """Last boxes of the tracks still alive at ``time_s``: where faces are expected in the next frame."""
        live = [t.xyxy for t in self._tracks if time_s - t.last_seen <= self.max_age_s]
        return np.stack(live) if live else np.zeros((0, 4), np.float32)

    def update(self, dets: Detections, time_s: float) -> Detections:
        self._tracks = [t for t in self._tracks if time_s - t.last_seen <= self.max_age_s]
        ids = np.full(len(dets), -1, np.int64)
        matched: set[int] = set()
        if self._tracks and len(dets):
            iou = iou_matrix(np.stack([t.xyxy for t in self._tracks]), dets.xyxy)
            seniority = np.array([0.03 * min(t.hits, 10) for t in self._tracks], np.float32)  # at most +0.3
            rows, cols = linear_sum_assignment(-(iou + seniority[:, None] * (iou >= self.min_iou)))
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.min_iou:
                    track = self._tracks[r]
                    track.xyxy, track.last_seen, track.hits = dets.xyxy[c].copy(), time_s, track.hits + 1
                    ids[c] = track.track_id
                    matched.add(int(r))
            self._absorb_duplicates(matched, dets.xyxy[ids >= 0])
        for c in np.flatnonzero(ids < 0):
            self._tracks.append(_Track(self._next_id, dets.xyxy[c].copy(), time_s))
            ids[c] = self._next_id
            self._next_id += 1
        return Detections(dets.xyxy, dets.score, ids, dets.probs, dets.uncertain, dets.landmarks)

    def _absorb_duplicates(self, matched: set[int], matched_boxes: np.ndarray) -> None:
        """End unmatched tracks that lie on a face another track has just taken."""
        unmatched = [i for i in range(len(self._tracks)) if i not in matched]
        if not unmatched or len(matched_boxes) == 0:
            return
        boxes = np.stack([self._tracks[i].xyxy for i in unmatched])
        on_face = (iou_matrix(boxes, matched_boxes) >= 0.3) | (overlap_of_smaller(boxes, matched_boxes) >= 0.6)
        gone = {unmatched[k] for k in np.flatnonzero(on_face.any(axis=1))}
        self._tracks = [t for i, t in enumerate(self._tracks) if i not in gone]
