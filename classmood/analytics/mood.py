"""Class mood over time: per time bin, how many faces, which apparent expressions, and what stands out.

Streaming by design: ``MoodAggregator.add`` takes one analysed frame at a time and returns the
bins it closes, so the same code serves recorded video and the live app. The bins it returns are
*raw*: they carry numbers even for one face. Nothing shows or writes them as they are: the k rule
(``analytics/privacy.py``, ``apply_k``) blanks every bin with fewer than k faces and computes the
flags over what stays, so the class view never singles out one or two students. Faces the model
could not read (``uncertain``: too small, blurred or unconfident) count as present but not towards
any expression: the shares, mean probabilities and the mood score are over read faces,
``faces_read`` is how many were read per analysed frame (what the k rule counts) and
``uncertain_share`` says how many were not read.

**The mood score** (``valence`` in files and the database, for compatibility) is defined here and
nowhere else: per face, ``MOOD_WEIGHTS`` . probabilities: +1 for happy, -1 for angry, disgust, fear
and sad, 0 for surprise, and ``NEUTRAL_WEIGHT`` for neutral. A model reads a resting face as a
little sad (on FER+ Training, faces ten annotators called neutral carry ~15 % sad probability), so
with neutral at 0 a calm class scored about -0.2; the neutral weight is the one number that makes
the faces people call neutral score 0 on average, fitted on FER+ Training with both shipped models
(``classmood bench --mood`` refits and measures it on PublicTest; docs/benchmarks/mood.json). Being
linear in the probabilities, a bin's score is also ``MOOD_WEIGHTS`` . its mean probabilities.
``mood_sd`` is the spread of the per-face scores in a bin, from which ``mood_margin`` gives the
uncertainty of a class mean.

Resting faces differ: one person's calm face reads a little sad, another's a little happy. So each
bin also carries ``valence_change``, the class's mood score as a change from each face's own start:
every track's mean score over its first ``baseline_s`` seconds is its baseline (kept in memory
for the session only, never written), and a bin's value is the mean of (score now - baseline)
over faces whose baseline is complete. It answers "did the class brighten or darken since they
arrived?" rather than "how do these faces look?".

**Facing the screen** (``vision/pose.py``) is counted beside the expressions, over the faces whose
head orientation is clear (``toward`` or ``away``): per bin ``facing_share`` (turned toward the screen)
and ``looking_down_share`` (turned away by looking down), pooled over the bin's analysed frames, and
``faces_oriented``, their mean number per frame, which is what the k rule counts for these shares. A
face need not be read to count: a head turned away is often unreadable, and leaving it out would
make a class look more turned to the screen than it is.
"""

from __future__ import annotations

import math

import numpy as np

from classmood.containers import Detections, MoodBin
from classmood.labels import EMOTIONS
from classmood.vision.pose import AWAY, TOWARD, facing, looking_down

NEGATIVE = ("angry", "disgust", "fear", "sad")
# Fitted by ``classmood bench --mood`` (benchmarks/mood.py: ``fit_neutral_weight``) on the FER+
# majority-neutral faces of Training, both shipped models pooled: 0.273 (fast alone 0.243, accurate
# 0.305). Measured on PublicTest's FER+ majority labels (docs/benchmarks/mood.json), mean score:
# neutral +0.02 fast / -0.03 accurate, happy +0.84 / +0.79, sad -0.47 / -0.56, angry -0.64 / -0.69,
# fear -0.55 / -0.61, disgust -0.63 / -0.69.
NEUTRAL_WEIGHT = 0.27
MOOD_WEIGHTS = np.array(
    [-1.0 if e in NEGATIVE else 1.0 if e == "happy" else NEUTRAL_WEIGHT if e == "neutral" else 0.0 for e in EMOTIONS],
    np.float32,
)
Z95 = 1.96


def mood_scores(probs: np.ndarray) -> np.ndarray:
    """(N,) the mood score of each face from its (N, 7) probabilities, in [-1, 1]."""
    return np.asarray(probs, np.float32).reshape(-1, len(EMOTIONS)) @ MOOD_WEIGHTS


def mean_mood(dets: Detections) -> float | None:
    """Mean mood score of the faces read in one frame (None when none is read)."""
    probs = dets.probs[dets.read] if len(dets) else dets.probs
    return float(mood_scores(probs).mean()) if len(probs) else None


def mood_margin(sd: float | None, faces: float | None) -> float | None:
    """Half-width of a 95 % interval of a class's mean mood score: 1.96 x the spread of the faces' scores
    over the square root of the number of faces (people, not frames: the frames of one face are not
    independent). None when either is unknown or there is no face."""
    if sd is None or faces is None or not faces > 0 or not math.isfinite(sd):
        return None
    return Z95 * sd / math.sqrt(faces)


def facing_counts(dets: Detections) -> tuple[int, int, int]:
    """How many faces of one frame are turned toward the screen, away, and away looking down (a part of away);
    faces whose orientation is unclear count in none."""
    words = facing(dets.pose)
    toward, away = words == TOWARD, words == AWAY
    return int(toward.sum()), int(away.sum()), int((away & looking_down(dets.pose)).sum())


NEGATIVE_JUMP = 0.2  # flag a bin whose negative share rose by at least this over the previous shown bin
FACES_DROP = 0.3  # flag a bin whose mean face count fell by at least this fraction from the previous bin


def flag_bins(bins: list[MoodBin]) -> list[MoodBin]:
    """Set each bin's flags from the bins before it (in place; returns ``bins``).

    ``negative_jump`` when the share of negative expressions rose by at least ``NEGATIVE_JUMP`` over
    the previous bin that shows one; ``faces_dropped`` when the mean face count fell by at least
    ``FACES_DROP`` (a fraction) from the previous bin. Run after the k rule, so a hidden bin never
    carries a negative jump nor serves as its reference; face counts are not expressions and are
    compared across every bin.
    """
    prev: MoodBin | None = None
    prev_negative: float | None = None  # of the last bin that showed one
    for b in bins:
        flags = []
        if (
            b.negative_share is not None
            and prev_negative is not None
            and b.negative_share - prev_negative >= NEGATIVE_JUMP
        ):
            flags.append("negative_jump")
        if prev is not None and prev.faces > 0 and (prev.faces - b.faces) / prev.faces >= FACES_DROP:
            flags.append("faces_dropped")  # a count, not an expression: flagged under k too
        b.flags = flags
        prev = b
        prev_negative = b.negative_share if b.negative_share is not None else prev_negative
    return bins


class MoodAggregator:
    """Accumulates analysed frames into fixed time bins of raw numbers (the k rule and the flags come after)."""

    def __init__(self, bin_s: float = 5.0, baseline_s: float = 120.0) -> None:
        if not (bin_s > 0 and math.isfinite(bin_s)):
            raise ValueError(f"bin length must be a positive number of seconds, not {bin_s}")
        self.bin_s = bin_s
        self.baseline_s = baseline_s
        # per track: (first seen, sum of valences, count) while its baseline is being formed, then
        # (first seen, baseline valence, -1); in memory only, dropped with the aggregator
        self._baseline: dict[int, tuple[float, float, int]] = {}
        self._changes: list[float] = []
        self._bin_index: int | None = None
        self._counts: list[int] = []
        self._read_counts: list[int] = []
        self._probs: list[np.ndarray] = []
        self._classified = 0
        self._ids: set[int] = set()
        self._oriented: list[int] = []  # per analysed frame: faces turned clearly toward or away
        self._toward = self._down = 0

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
        self._read_counts.append(int(read.sum()))
        self._classified += int(dets.classified.sum())
        if read.any():
            self._probs.append(dets.probs[read])
            valences = mood_scores(dets.probs[read])
            for tid, v in zip(dets.track_id[read], valences, strict=True):
                if tid >= 0:
                    self._add_to_baseline(int(tid), time_s, float(v))
        self._ids.update(int(t) for t in dets.track_id if t >= 0)
        self._add_facing(dets)
        return closed

    def _add_facing(self, dets: Detections) -> None:
        toward, away, down = facing_counts(dets)
        self._oriented.append(toward + away)
        self._toward += toward
        self._down += down

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
        shares = mean_probs = valence = negative = uncertain = spread = None
        if self._classified:
            uncertain = 1.0 - len(probs) / self._classified
        if len(probs):
            top = np.bincount(probs.argmax(axis=1), minlength=len(EMOTIONS)) / len(probs)
            shares = {e: float(v) for e, v in zip(EMOTIONS, top, strict=True)}
            mean_probs = {e: float(v) for e, v in zip(EMOTIONS, probs.mean(axis=0), strict=True)}
            scores = mood_scores(probs)
            valence, spread = float(scores.mean()), float(scores.std())
            negative = float(sum(shares[e] for e in NEGATIVE))
        result = MoodBin(
            start,
            start + self.bin_s,
            len(self._counts),
            faces,
            len(self._ids),
            False,
            shares,
            mean_probs,
            valence,
            negative,
            [],
            uncertain,
            float(np.mean(self._changes)) if self._changes else None,
            float(np.mean(self._read_counts)) if self._read_counts else 0.0,
            spread,
        )
        oriented = sum(self._oriented)
        if oriented:
            result.faces_oriented = float(np.mean(self._oriented))
            result.facing_share, result.looking_down_share = self._toward / oriented, self._down / oriented
        self._counts, self._read_counts, self._probs, self._ids, self._classified = [], [], [], set(), 0
        self._changes, self._oriented, self._toward, self._down = [], [], 0, 0
        return result
