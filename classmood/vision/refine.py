"""Second looks at small faces that a fast whole-frame pass misses in a video-call gallery.

A 1080p gallery of 49 tiles holds 40-100 px faces. The whole-frame pass runs libfacedetection on
the frame halved to 960 px (the library's cost grows steeply above that), where those faces are
20-50 px and about a third of FER2013-like faces are missed (measured on the synthetic gallery of
``classmood bench --pipeline``: 64 % found at 960 px, 85 % on full-resolution tiles, 94 % on
tiles enlarged 2x, 97 % at 2x with threshold 0.3). Enlarging everything every frame costs about a
second per frame on 2 cores, so the refiner spends that effort where it pays:

* **revisit**: a face that a live track expects but the fast pass did not find is looked for again
  in a window 1.6x the track's last box, enlarged so the face is about ``target_px`` (200) tall,
  with a lower threshold (0.2; the track is prior evidence that a face is there);
* **scan**: the frame is covered by overlapping windows that are searched enlarged ``scan_zoom``
  (1.5) times, all of them on the first frame and then one changed window every ``scan_every`` (4)
  analysed frames in turn, so faces the fast pass never sees are discovered.

Measured on that gallery (20 s, 2 analysed frames/s, 2 cores; analysed frames/s vary by about
15 % between runs on this machine): without the refiner 65.5 % of faces found at 8.8 frames/s;
revisits alone 89 % at 7.9/s; revisits + a 2x scan every 4th frame 96 % at 5.2-5.7/s (every
frame: 96.8 % at 4.0/s); the same with a 1.5x scan 95.6 % at 5.5-6.4/s (the default); 240 px
revisit targets gain about a point of recall for 15-20 % of the speed.

Both only run when the fast pass had to shrink the frame; on a webcam frame it sees everything.
Both also remember what they saw: a region whose pixels have not changed since it was last
searched (compared on an 8x smaller grey copy of the frame) keeps its previous answer, so a still
gallery costs little after the first frames and the effort goes to tiles that changed. A face
found by a revisit whose window changed only a little (noise, a head moving slightly) is kept for
up to ``MAX_REUSE_MOVING`` frames before it is searched again: with sensor noise and a 2-px jitter
on every frame of the benchmark gallery this took the analysed frames/s from a third of the still
video's to 85 % of it (4.9 against 5.8 in one run), and recall from 94.2 % to 94.7 %.
"""

from __future__ import annotations

import cv2
import numpy as np

from classmood.containers import Detections
from classmood.vision.boxes import iou_matrix, overlap_of_smaller
from classmood.vision.detectors import LibFaceDetector

Rect = tuple[int, int, int, int]
THUMB_STEP = 8  # the change test looks at the frame shrunk this many times
CHANGED = 3.0  # mean absolute grey difference (0-255) on the shrunk copy that counts as a change
SMALL_MOTION = 12.0  # below this, a face found last time is assumed still there ...
MAX_REUSE_MOVING = 2  # ... for at most this many frames before it is searched again


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    size = (max(1, w // THUMB_STEP), max(1, h // THUMB_STEP))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.int16)


def _region(thumb: np.ndarray, rect: Rect) -> np.ndarray:
    """The shrunk copy of ``rect`` (frame pixels), at least one thumbnail pixel."""
    x1, y1, x2, y2 = (max(0, v) // THUMB_STEP for v in rect)
    return thumb[y1 : y2 + 1, x1 : x2 + 1].copy()


def _change(before: np.ndarray | None, now: np.ndarray) -> float:
    """Mean absolute grey difference of two shrunk regions (inf when there is nothing to compare)."""
    if before is None or before.shape != now.shape:
        return float("inf")
    return float(np.abs(before - now).mean())


def _unchanged(before: np.ndarray | None, now: np.ndarray) -> bool:
    return _change(before, now) < CHANGED


def add_new(base: Detections, extra: Detections, max_iou: float = 0.3, max_inside: float = 0.6) -> Detections:
    """``base`` plus those ``extra`` boxes that overlap no base box (nor an earlier kept extra box).

    Overlap is IoU or, for a small box inside a big one (two detectors framing one face
    differently), the share of the smaller box covered.
    """
    kept: list[int] = []
    order = np.argsort(-extra.score)
    boxes = base.xyxy
    for i in order:
        box = extra.xyxy[i : i + 1]
        if len(boxes) == 0 or (
            iou_matrix(box, boxes).max() < max_iou and overlap_of_smaller(box, boxes).max() < max_inside
        ):
            kept.append(int(i))
            boxes = np.concatenate([boxes, box])
    return Detections.merge([base, extra[np.array(kept, np.int64)]])


def scan_windows(width: int, height: int, window: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Overlapping square-ish windows (x1, y1, x2, y2) covering a frame; overlap >= the largest face."""
    win_w, win_h = min(window, width), min(round(window * 0.75), height)

    def starts(size: int, win: int) -> list[int]:
        if win >= size:
            return [0]
        step = max(1, win - overlap)
        out = list(range(0, size - win, step))
        return [*out, size - win]

    return [(x, y, x + win_w, y + win_h) for y in starts(height, win_h) for x in starts(width, win_w)]


class FaceRefiner:
    """Adds faces found by enlarged second looks to a fast pass's detections (see module docstring)."""

    def __init__(
        self,
        detector: LibFaceDetector | None = None,
        target_px: float = 200.0,
        context: float = 1.6,
        revisit_threshold: float = 0.2,
        scan_zoom: float = 1.5,
        scan_every: int = 4,
        scan_threshold: float = 0.5,
    ) -> None:
        self.detector = detector or LibFaceDetector()
        self.target_px, self.context, self.revisit_threshold = target_px, context, revisit_threshold
        self.scan_zoom, self.scan_every, self.scan_threshold = scan_zoom, scan_every, scan_threshold
        self._frames_since_scan = 0
        self._windows: list[Rect] = []
        self._window_seen: list[np.ndarray | None] = []  # each window's thumbnail when last scanned
        self._frame_size = (0, 0)
        self._next_window = 0
        # window -> (its thumbnail when searched, the answer, frames the answer has been reused while moving)
        self._revisits: dict[Rect, tuple[np.ndarray, Detections, int]] = {}
        self._thumb = np.zeros((0, 0), np.int16)

    def needed(self, frame: np.ndarray) -> bool:
        """Only frames the fast pass shrinks lose small faces."""
        return max(frame.shape[:2]) > self.detector.max_side

    def refine(self, frame: np.ndarray, dets: Detections, expected: np.ndarray) -> Detections:
        """``dets`` plus faces found around the ``expected`` boxes of live tracks and in this frame's scan windows."""
        if not self.needed(frame):
            return dets
        self._thumb = _thumbnail(frame)
        dets = add_new(dets, self.revisit(frame, dets, expected))
        return add_new(dets, self.scan(frame))

    def revisit(self, frame: np.ndarray, dets: Detections, expected: np.ndarray) -> Detections:
        """Look again, enlarged, around each expected box that no detection overlaps; at most one face each."""
        if len(expected) == 0:
            return Detections.empty()
        missing = expected if len(dets) == 0 else expected[iou_matrix(expected, dets.xyxy).max(axis=1) < 0.3]
        found, cache = [], {}
        for box in missing:
            w, h = box[2] - box[0], box[3] - box[1]
            side = max(w, h)
            if side <= 0:
                continue
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            half = side * self.context / 2
            rect = (int(cx - half), int(cy - half), int(np.ceil(cx + half)), int(np.ceil(cy + half)))
            previous = self._previous_look(rect)
            if previous is not None:
                old_rect, searched, answer, reused = previous
                change = _change(searched, _region(self._thumb, old_rect))
                if change < CHANGED or (len(answer) and change < SMALL_MOTION and reused < MAX_REUSE_MOVING):
                    cache[old_rect] = (searched, answer, reused + int(change >= CHANGED))
                    found.append(answer)
                    continue
            answer = self._look_again(frame, rect, float(side), (float(cx), float(cy)))
            cache[rect] = (_region(self._thumb, rect), answer, 0)
            found.append(answer)
        self._revisits = cache
        return Detections.merge(found)

    def _previous_look(self, rect: Rect) -> tuple[Rect, np.ndarray, Detections, int] | None:
        """The last frame's look at (nearly) this window: boxes jitter by a few pixels between frames."""
        if not self._revisits:
            return None
        keys = list(self._revisits)
        overlap = iou_matrix(np.array([rect], np.float32), np.array(keys, np.float32))[0]
        best = int(np.argmax(overlap))
        if overlap[best] < 0.7:
            return None
        return (keys[best], *self._revisits[keys[best]])

    def _look_again(self, frame: np.ndarray, rect: Rect, side: float, centre: tuple[float, float]) -> Detections:
        zoom = float(np.clip(self.target_px / side, 1.0, 4.0))
        hits = self.detector.detect_region(frame, rect, zoom, self.revisit_threshold)
        if len(hits) == 0:
            return hits
        off = np.abs((hits.xyxy[:, :2] + hits.xyxy[:, 2:]) / 2 - centre).max(axis=1)
        size = (hits.xyxy[:, 2:] - hits.xyxy[:, :2]).max(axis=1) / side
        off[(size < 0.35) | (size > 3.0)] = np.inf  # a face part (an eye, a mouth), or a blob, not this face
        best = int(np.argmin(off))
        if off[best] > side / 2:  # a neighbour at the window's edge, not the face expected here
            return Detections.empty()
        return hits[np.array([best])]

    def scan(self, frame: np.ndarray) -> Detections:
        """Search the next changed window(s) in turn; every window on the first frame of a new frame size."""
        h, w = frame.shape[:2]
        if (w, h) != self._frame_size:
            window = round(self.detector.max_side / self.scan_zoom)
            self._windows = scan_windows(w, h, window, overlap=max(64, window // 4))
            self._window_seen = [None] * len(self._windows)
            self._frame_size, self._next_window = (w, h), 0
            todo = list(range(len(self._windows)))
        else:
            todo = self._changed_windows()
        found = []
        for i in todo:
            if self._thumb.size:
                self._window_seen[i] = _region(self._thumb, self._windows[i])
            hits = self.detector.detect_region(frame, self._windows[i], self.scan_zoom, self.scan_threshold)
            found.append(hits[~_cut_by_inner_edge(hits.xyxy, self._windows[i], w, h)])
        return Detections.merge(found)

    def _changed_windows(self) -> list[int]:
        """Every ``scan_every`` analysed frames, the next window in turn that changed since it was scanned."""
        self._frames_since_scan += 1
        if self.scan_every <= 0 or self._frames_since_scan < self.scan_every:
            return []
        n, todo = len(self._windows), []
        for k in range(n):
            i = (self._next_window + k) % n
            if not self._thumb.size or not _unchanged(self._window_seen[i], _region(self._thumb, self._windows[i])):
                todo.append(i)
                break
        if todo:
            self._next_window, self._frames_since_scan = (todo[-1] + 1) % n, 0
        return todo


def _cut_by_inner_edge(xyxy: np.ndarray, rect: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """Boxes touching a window edge inside the frame: a face cut in half there is whole in a neighbour window."""
    x1, y1, x2, y2 = rect
    margin = 2.0
    return (
        ((xyxy[:, 0] <= x1 + margin) & (x1 > 0))
        | ((xyxy[:, 1] <= y1 + margin) & (y1 > 0))
        | ((xyxy[:, 2] >= x2 - margin) & (x2 < width))
        | ((xyxy[:, 3] >= y2 - margin) & (y2 < height))
    )
