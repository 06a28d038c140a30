"""Session-local pseudonymous face ids: box overlap and coarse appearance, matched with the
Hungarian algorithm (SciPy).

In a video-call gallery faces sit still in their tiles, so box overlap between analysed frames
(a few per second) is the strong cue. Real calls also re-flow, zoom, page, share screens and cut,
and then overlap misleads; with ``reassociate`` the tracker also keeps a coarse appearance of each
face (``vision/appearance.py``: in memory, never written, no face recognition) and

* refuses an overlap match whose appearance is clearly another face's (``veto``);
* gives a face that appears somewhere new the id of a recently lost face that looks like it
  (``accept``), so a re-layout does not start new ids;
* treats a frame that changed as a whole (a cut, a re-layout: the frame's signature correlates
  below ``cut_correlation`` with the previous one) by appearance alone, with no overlap matching,
  so no id moves to a different face across a cut.

Ids are small integers counted from 1 in each session and mean nothing outside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from classmood.containers import Detections
from classmood.vision.appearance import describe, frame_signature, similarity
from classmood.vision.boxes import iou_matrix, overlap_of_smaller


@dataclass
class _Track:
    track_id: int
    xyxy: np.ndarray
    last_seen: float
    hits: int = 1
    thumb: np.ndarray | None = None  # appearance (reassociate only), a running average
    hist: np.ndarray | None = None

    def remember(self, thumb: np.ndarray, hist: np.ndarray, rate: float = 0.3) -> None:
        if self.thumb is None or self.hist is None:
            self.thumb, self.hist = thumb.copy(), hist.copy()
            return
        t = (1 - rate) * self.thumb + rate * thumb
        self.thumb = (t - t.mean()) / max(float(np.linalg.norm(t - t.mean())), 1e-6)
        h = (1 - rate) * self.hist + rate * hist
        self.hist = h / max(float(np.linalg.norm(h)), 1e-6)


POSITION_TIE_BREAK = 0.05  # appearance similarities closer than this are settled by box overlap


class IoUTracker:
    """Assigns ``track_id`` to detections frame by frame.

    ``min_iou``: least overlap with a track's last box to continue it. ``max_age_s``: a track
    unseen for longer is no longer matched by overlap. Without ``reassociate`` it then ends (its
    id is never reused), so a student who leaves and returns later gets a new pseudonym; with it,
    its appearance is remembered for ``remember_s`` (in memory, for this session only), so a face
    that comes back from a speaker view or a screen share within that time gets its id back.

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

    def __init__(
        self,
        min_iou: float = 0.1,
        max_age_s: float = 10.0,
        reassociate: bool = False,
        veto: float = 0.7,
        accept: float = 0.8,
        cut_correlation: float = 0.9,
        remember_s: float = 300.0,
        coast_s: float = 3.0,
        coast_hits: int = 3,
        coast_sim: float = 0.6,
    ) -> None:
        self.min_iou, self.max_age_s = min_iou, max_age_s
        self.reassociate, self.veto, self.accept, self.cut_correlation = reassociate, veto, accept, cut_correlation
        self.remember_s = remember_s
        self.coast_s, self.coast_hits, self.coast_sim = coast_s, coast_hits, coast_sim
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._signature: np.ndarray | None = None

    def coast(self, image: np.ndarray, dets: Detections, time_s: float) -> Detections:
        """Faces the detector missed for a moment (a hand or a mask over them) but that are still there.

        A track seen at least ``coast_hits`` times and last detected at most ``coast_s`` ago keeps its
        last box when the pixels there still look like it (appearance similarity >= ``coast_sim``) and
        no face of this frame lies on it. Its ``last_seen`` is not renewed: a face that stays hidden, or
        a poster-like still, is not carried on beyond ``coast_s``. Coasted faces come back marked
        ``uncertain`` (present, counted, never read: what shows of them is mostly the cover).
        """
        if not self.reassociate or self.coast_s <= 0:
            return dets
        candidates = [
            t
            for t in self._tracks
            if 0 < time_s - t.last_seen <= self.coast_s and t.hits >= self.coast_hits and t.thumb is not None
        ]
        if not candidates:
            return dets
        boxes = np.stack([t.xyxy for t in candidates])
        if len(dets):
            free = iou_matrix(boxes, dets.xyxy).max(axis=1) < 0.3
            candidates, boxes = [t for t, f in zip(candidates, free, strict=True) if f], boxes[free]
        if not candidates:
            return dets
        thumbs, hists = describe(image, boxes)
        sim = similarity(
            np.stack([t.thumb for t in candidates if t.thumb is not None]),
            np.stack([t.hist for t in candidates if t.hist is not None]),
            thumbs,
            hists,
        ).diagonal()
        keep = np.flatnonzero(sim >= self.coast_sim)
        if not len(keep):
            return dets
        n = len(keep)
        coasted = Detections(
            boxes[keep],
            np.zeros(n, np.float32),
            np.array([candidates[k].track_id for k in keep], np.int64),
            uncertain=np.ones(n, bool),
        )
        return Detections.merge([dets, coasted])

    def forget(self) -> None:
        """Start afresh for an unrelated image (a folder of separate photos): new ids, nothing remembered."""
        self._tracks = []
        self._signature = None

    @property
    def active_ids(self) -> list[int]:
        return [t.track_id for t in self._tracks]

    def expected_boxes(self, time_s: float) -> np.ndarray:
        """Last boxes of the tracks still alive at ``time_s``: where faces are expected in the next frame."""
        live = [t.xyxy for t in self._tracks if time_s - t.last_seen <= self.max_age_s]
        return np.stack(live) if live else np.zeros((0, 4), np.float32)

    def _is_cut(self, image: np.ndarray) -> bool:
        """Whether the frame changed as a whole since the last one (a cut, a re-layout, a zoom)."""
        signature = frame_signature(image)
        cut = self._signature is not None and float(signature @ self._signature) < self.cut_correlation
        self._signature = signature
        return cut

    def update(self, dets: Detections, time_s: float, image: np.ndarray | None = None) -> Detections:
        """Ids for ``dets``; ``image`` (the frame) enables the appearance cues when ``reassociate`` is on."""
        looks = self.reassociate and image is not None
        horizon = self.remember_s if self.reassociate else self.max_age_s
        self._tracks = tracks = [t for t in self._tracks if time_s - t.last_seen <= horizon]
        live = np.array([time_s - t.last_seen <= self.max_age_s for t in tracks], bool)
        ids = np.full(len(dets), -1, np.int64)
        matched: set[int] = set()
        thumbs = hists = sim = None
        cut = looks and self._is_cut(image)  # type: ignore[arg-type]
        if looks:
            thumbs, hists = describe(image, dets.xyxy)  # type: ignore[arg-type]
            if tracks and len(dets):
                blank_t, blank_h = np.zeros_like(thumbs[0]), np.zeros_like(hists[0])
                sim = similarity(
                    np.stack([t.thumb if t.thumb is not None else blank_t for t in tracks]),
                    np.stack([t.hist if t.hist is not None else blank_h for t in tracks]),
                    thumbs,
                    hists,
                )
        absorbed: set[int] = set()
        if tracks and len(dets) and not cut and live.any():
            iou = iou_matrix(np.stack([t.xyxy for t in tracks]), dets.xyxy)
            iou[~live] = 0.0  # lost longer than max_age_s: only appearance may bring it back
            if sim is not None:
                iou = np.where(sim < self.veto, 0.0, iou)  # overlapping, but clearly another face
            seniority = np.array([0.03 * min(t.hits, 10) for t in tracks], np.float32)  # at most +0.3
            rows, cols = linear_sum_assignment(-(iou + seniority[:, None] * (iou >= self.min_iou)))
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.min_iou:
                    track = tracks[r]
                    track.xyxy, track.last_seen, track.hits = dets.xyxy[c].copy(), time_s, track.hits + 1
                    ids[c] = track.track_id
                    matched.add(int(r))
            absorbed = self._duplicates(matched, live, dets.xyxy[ids >= 0])
        if sim is not None:
            self._match_by_appearance(dets, time_s, ids, matched | absorbed, sim)
        self._tracks = [t for i, t in enumerate(tracks) if i not in absorbed]
        for c in np.flatnonzero(ids < 0):
            self._tracks.append(_Track(self._next_id, dets.xyxy[c].copy(), time_s))
            ids[c] = self._next_id
            self._next_id += 1
        if looks and thumbs is not None and hists is not None:
            by_id = {t.track_id: t for t in self._tracks}
            for c, tid in enumerate(ids):
                by_id[int(tid)].remember(thumbs[c], hists[c])
        return replace(dets, track_id=ids)

    def _match_by_appearance(
        self, dets: Detections, time_s: float, ids: np.ndarray, taken: set[int], sim: np.ndarray
    ) -> None:
        """Unmatched faces take the id of a free remembered track that looks like them (sim >= accept).

        Where faces look alike (the same photo in several tiles, twins, coarse cues on tiny faces), the
        face whose box overlaps the track's last box wins the tie: the assignment adds a small bonus for
        overlap (at most ``POSITION_TIE_BREAK``), the acceptance threshold looks at appearance alone.
        """
        free_tracks = [r for r in range(len(self._tracks)) if r not in taken and self._tracks[r].thumb is not None]
        free_dets = np.flatnonzero(ids < 0)
        if not free_tracks or len(free_dets) == 0:
            return
        s = sim[np.ix_(np.array(free_tracks, np.int64), free_dets)]
        overlap = iou_matrix(np.stack([self._tracks[r].xyxy for r in free_tracks]), dets.xyxy[free_dets])
        rows, cols = linear_sum_assignment(-(s + POSITION_TIE_BREAK * overlap))
        for r, c in zip(rows, cols, strict=True):
            if s[r, c] >= self.accept:
                track = self._tracks[free_tracks[r]]
                det = int(free_dets[c])
                track.xyxy, track.last_seen, track.hits = dets.xyxy[det].copy(), time_s, track.hits + 1
                ids[det] = track.track_id

    def _duplicates(self, matched: set[int], live: np.ndarray, matched_boxes: np.ndarray) -> set[int]:
        """Live unmatched tracks that lie on a face another track has just taken (to be ended)."""
        unmatched = [i for i in range(len(self._tracks)) if i not in matched and live[i]]
        if not unmatched or len(matched_boxes) == 0:
            return set()
        boxes = np.stack([self._tracks[i].xyxy for i in unmatched])
        on_face = (iou_matrix(boxes, matched_boxes) >= 0.3) | (overlap_of_smaller(boxes, matched_boxes) >= 0.6)
        return {unmatched[k] for k in np.flatnonzero(on_face.any(axis=1))}
