"""``Detections``: the one typed container that flows detector -> classifier -> tracker.

Modelled on supervision's ``Detections``: parallel NumPy arrays, one row per face, boxes in
input-frame pixels (x1, y1, x2, y2). Fields a stage has not filled yet hold neutral values
(``track_id`` -1, ``probs`` NaN, ``uncertain`` False), so every stage can accept the output of any
earlier one. ``uncertain`` marks classified faces the model's readout declined to read (too small,
too blurred or too unconfident): they are counted, never given an expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from classmood.labels import EMOTIONS, NUM_CLASSES

UNCERTAIN_WORD = "uncertain"


def _empty_ids(n: int) -> np.ndarray:
    return np.full(n, -1, np.int64)


def _empty_probs(n: int) -> np.ndarray:
    return np.full((n, NUM_CLASSES), np.nan, np.float32)


@dataclass
class Detections:
    xyxy: np.ndarray  # (N, 4) float32, pixels
    score: np.ndarray  # (N,) float32, detector confidence 0..1
    track_id: np.ndarray = field(default_factory=lambda: _empty_ids(0))  # (N,) int64, -1 = not tracked
    probs: np.ndarray = field(default_factory=lambda: _empty_probs(0))  # (N, 7) float32, NaN = not classified
    uncertain: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (N,) bool, True = not readable
    # (N, 5, 2) float32 pixels: eyes (subject's right, left), nose tip, mouth corners; NaN = not given
    landmarks: np.ndarray = field(default_factory=lambda: np.full((0, 5, 2), np.nan, np.float32))

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(n, 4)
        self.score = np.asarray(self.score, np.float32).reshape(n)
        if len(self.track_id) != n:
            self.track_id = _empty_ids(n)
        if len(self.probs) != n:
            self.probs = _empty_probs(n)
        if len(self.uncertain) != n:
            self.uncertain = np.zeros(n, bool)
        if len(self.landmarks) != n:
            self.landmarks = np.full((n, 5, 2), np.nan, np.float32)
        self.landmarks = np.asarray(self.landmarks, np.float32).reshape(n, 5, 2)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(
            self.xyxy[index],
            self.score[index],
            self.track_id[index],
            self.probs[index],
            self.uncertain[index],
            self.landmarks[index],
        )

    @property
    def wh(self) -> np.ndarray:
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    @property
    def classified(self) -> np.ndarray:
        """(N,) bool: the classifier has run on the face."""
        return ~np.isnan(self.probs).any(axis=1)

    @property
    def read(self) -> np.ndarray:
        """(N,) bool: classified and readable, so the face has an apparent expression."""
        return self.classified & ~self.uncertain

    def expressions(self) -> list[str | None]:
        """Per face: its top apparent expression, ``uncertain``, or None when not classified."""
        out: list[str | None] = []
        for probs, unsure in zip(self.probs, self.uncertain, strict=True):
            if np.isnan(probs).any():
                out.append(None)
            else:
                out.append(UNCERTAIN_WORD if unsure else EMOTIONS[int(np.argmax(probs))])
        return out
