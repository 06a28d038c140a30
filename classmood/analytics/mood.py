"""Class mood over time: per time bin, how many faces, which apparent expressions, and what stands out.

Streaming by design: ``MoodAggregator.add`` takes one analysed frame at a time and returns the
bins it closes, so the same code serves recorded video and the live app. A bin's class-level
numbers are suppressed (``None``) when fewer than ``min_faces`` faces were present, so the class
view never singles out one or two students. Faces the model could not read (``uncertain``: too
small, blurred or unconfident) count as present but not towards any expression: the shares, mean
probabilities and valence are over read faces, and ``uncertain_share`` says how many were not read.

Resting faces differ: one person's calm face reads a little sad, another's a little happy. So each
bin also carries ``valence_change``, the class's valence as a change from each face's own start:
every track's mean valence over its first ``baseline_s`` seconds is its baseline (kept in memory
for the session only, never written), and a bin's value is the mean of (valence now - baseline)
over faces whose baseline is complete. It answers "did the class brighten or darken since they
arrived?" rather than "how do these faces look?".
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
    uncertain_share: float | None = None  # share of classified faces not read (None when suppressed)
    valence_change: float | None = None  # mean valence minus each face's own baseline (None: none yet)

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
        row["uncertain_share"] = None if self.uncertain_share is None else round(self.uncertain_share, 4)
        row["valence_change"] = None if self.valence_change is None else round(self.valence_change, 4)
        row["flags"] = ";".join(self.flags)
        return row


class MoodAggregator:
    """Accumulates analysed frames into fixed time bins and flags notable changes.

    Flags: ``negative_jump`` when the share of negative expressions rises by at least
    ``negative_jump`` over the previous reported bin; ``faces_dropped`` when the mean face count
    falls by at least ``faces_drop`` (a fraction) from the previous bin.
    """

    def __init__(
        self,
        bin_s: float = 5.0,
        min_faces: int = 5,
        negative_jump: float = 0.2,
        faces_drop: float = 0.3,
        baseline_s: float = 120.0,
    ) -> None:
        self.bin_s, self.min_faces = bin_s, min_faces
        self.negative_jump, self.faces_drop = negative_jump, faces_drop
        self.baseline_s = baseline_s
        # per track: (first seen, sum of valences, count) while its baseline is being formed, then
        # (first seen, baseline valence, -1); in memory only, dropped with the aggregator
        self._baseline: dict[int, tuple[float, float, int]] = {}
        self._changes: list[float] = []
        self._bin_index: int | None = None
        self._counts: list[int] = []
        self._probs: list[np.ndarray] = []
        self._classified = 0
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
        read = dets.read
        self._classified += int(dets.classified.sum())
        if read.any():
            self._probs.append(dets.probs[read])
            valences = dets.probs[read] @ VALENCE_WEIGHTS
            for tid, v in zip(dets.track_id[read], valences, strict=True):
                if tid >= 0:
                    self._add_to_baseline(int(tid), time_s, float(v))
        self._ids.update(int(t) for t in dets.track_id if t >= 0)
        return closed

    def _add_to_baseline(self, tid: int, time_s: float, valence: float) -> None:
        first, value, count = self._baseline.get(tid, (time_s, 0.0, 0))
        if count < 0:  # baseline complete: this face's change from its own start
            self._changes.append(valence - value)
        elif time_s - first >= self.baseline_s and count > 0:
            self._baseline[tid] = (first, value / count, -1)
            self._changes.append(valence - value / count)
        else:
            self._baseline[tid] = (first, value + valence, count + 1)

    def flush(self) -> list[MoodBin]:
        """Close the current bin (end of input)."""
        return [self._close()] if self._bin_index is not None and self._counts else []

    def _close(self) -> MoodBin:
        assert self._bin_index is not None
        start = self._bin_index * self.bin_s
        faces = float(np.mean(self._counts)) if self._counts else 0.0
        probs = np.concatenate(self._probs) if self._probs else np.zeros((0, len(EMOTIONS)), np.float32)
        suppressed = faces < self.min_faces or self._classified == 0
        shares = mean_probs = valence = negative = uncertain = None
        if not suppressed:
            uncertain = 1.0 - len(probs) / self._classified
        if not suppressed and len(probs):
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
            uncertain,
            float(np.mean(self._changes)) if self._changes and not suppressed else None,
        )
        self._previous = result
        self._counts, self._probs, self._ids, self._classified = [], [], set(), 0
        self._changes = []
        return result
