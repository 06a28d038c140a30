"""Class mood over time: per time bin, how many faces, which apparent expressions, and what stands out.

Streaming by design: ``MoodAggregator.add`` takes one analysed frame at a time and returns the
bins it closes, so the same code serves recorded video and the live app. A bin's class-level
numbers are suppressed (``None``) when fewer than ``min_faces`` faces were present, so the class
view never singles out one or two students.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from classmood.labels import EMOTIONS
from classmood.vision.detections import Detections

NEGATIVE = ("angry", "disgust", "fear", "sad")
# A valence-like score per face: P(happy) - P(any negative expression), in [-1, 1].
VALENCE_WEIGHTS = np.array([-1.0 if e in NEGATIVE else 1.0 if e == "happy" else 0.0 for e in EMOTIONS], np.float32)


@dataclass
class MoodBin:
    start_s: float
    end_s: float
    frames: int  # analysed frames in the bin
    faces: float  # mean faces per analysed frame
    tracks: int  # distinct pseudonymous ids seen
    suppressed: bool  # fewer than min_faces faces: no class-level numbers
    shares: dict[str, float] | None  # share of classified faces whose top expression is each class
    mean_probs: dict[str, float] | None
    valence: float | None
    negative_share: float | None
    flags: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, object]:
        """Flat dict for CSV/Parquet: one column per class share and mean probability."""
        row: dict[str, object] = {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "frames": self.frames,
            "faces": round(self.faces, 2),
            "tracks": self.tracks,
            "suppressed": self.suppressed,
        }
        for e in EMOTIONS:
            row[f"share_{e}"] = None if self.shares is None else round(self.shares[e], 4)
        for e in EMOTIONS:
            row[f"p_{e}"] = None if self.mean_probs is None else round(self.mean_probs[e], 4)
        row["valence"] = None if self.valence is None else round(self.valence, 4)
        row["negative_share"] = None if self.negative_share is None else round(self.negative_share, 4)
        row["flags"] = ";".join(self.flags)
        return row


class MoodAggregator:
    """Accumulates analysed frames into fixed time bins and flags notable changes.

    Flags: ``negative_jump`` when the share of negative expressions rises by at least
    ``negative_jump`` over the previous reported bin; ``faces_dropped`` when the mean face count
    falls by at least ``faces_drop`` (a fraction) from the previous bin.
    """

    def __init__(
        self, bin_s: float = 5.0, min_faces: int = 5, negative_jump: float = 0.2, faces_drop: float = 0.3
    ) -> None:
        self.bin_s, self.min_faces = bin_s, min_faces
        self.negative_jump, self.faces_drop = negative_jump, faces_drop
        self._bin_index: int | None = None
        self._counts: list[int] = []
        self._probs: list[np.ndarray] = []
        self._ids: set[int] = set()
        self._previous: MoodBin | None = None

    def add(self, time_s: float, dets: Detections) -> list[MoodBin]:
        """Add one analysed frame; returns the bins that ended before it (usually none or one)."""
        index = int(time_s // self.bin_s)
        closed = []
        if index != self._bin_index:
            if self._bin_index is not None:
                closed.append(self._close())
            self._bin_index = index
        self._counts.append(len(dets))
        classified = ~np.isnan(dets.probs).any(axis=1)
        if classified.any():
            self._probs.append(dets.probs[classified])
        self._ids.update(int(t) for t in dets.track_id if t >= 0)
        return closed

    def flush(self) -> list[MoodBin]:
        """Close the current bin (end of input)."""
        return [self._close()] if self._bin_index is not None and self._counts else []

    def _close(self) -> MoodBin:
        assert self._bin_index is not None
        start = self._bin_index * self.bin_s
        faces = float(np.mean(self._counts)) if self._counts else 0.0
        probs = np.concatenate(self._probs) if self._probs else np.zeros((0, len(EMOTIONS)), np.float32)
        suppressed = faces < self.min_faces or len(probs) == 0
        shares = mean_probs = valence = negative = None
        if not suppressed:
            top = np.bincount(probs.argmax(axis=1), minlength=len(EMOTIONS)) / len(probs)
            shares = {e: float(v) for e, v in zip(EMOTIONS, top, strict=True)}
            mean_probs = {e: float(v) for e, v in zip(EMOTIONS, probs.mean(axis=0), strict=True)}
            valence = float((probs @ VALENCE_WEIGHTS).mean())
            negative = float(sum(shares[e] for e in NEGATIVE))
        flags = []
        prev = self._previous
        prev_negative = None if prev is None else prev.negative_share
        if negative is not None and prev_negative is not None and negative - prev_negative >= self.negative_jump:
            flags.append("negative_jump")
        if prev is not None and prev.faces > 0 and (prev.faces - faces) / prev.faces >= self.faces_drop:
            flags.append("faces_dropped")
        result = MoodBin(
            start,
            start + self.bin_s,
            len(self._counts),
            faces,
            len(self._ids),
            suppressed,
            shares,
            mean_probs,
            valence,
            negative,
            flags,
        )
        self._previous = result
        self._counts, self._probs, self._ids = [], [], set()
        return result
