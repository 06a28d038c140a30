"""Class mood per time bin: shares, valence, suppression below k faces, and flagged moments."""

from __future__ import annotations

import numpy as np

from classmood.analytics.mood import MoodAggregator
from classmood.analytics.privacy import apply_k
from classmood.containers import Detections
from classmood.labels import EMOTIONS


def frame(expressions: list[str], start_id: int = 1) -> Detections:
    n = len(expressions)
    probs = np.full((n, 7), 0.02, np.float32)
    for i, e in enumerate(expressions):
        probs[i, EMOTIONS.index(e)] = 0.88
    boxes = np.tile(np.array([0, 0, 10, 10], np.float32), (n, 1))
    return Detections(boxes, np.ones(n), np.arange(start_id, start_id + n), probs)


def test_bins_shares_and_valence() -> None:
    agg = MoodAggregator(bin_s=5)
    closed = []
    for t in (0.0, 2.5):
        closed += agg.add(t, frame(["happy"] * 3 + ["neutral"]))
    closed += agg.add(5.0, frame(["sad"] * 4))
    closed += agg.flush()
    first, second = apply_k(closed, 3)
    assert (first.start_s, first.end_s, first.frames, first.faces, first.tracks) == (0, 5, 2, 4.0, 4)
    assert first.shares is not None and first.shares["happy"] == 0.75 and first.shares["neutral"] == 0.25
    assert first.valence is not None and first.valence > 0.5
    assert second.negative_share == 1.0 and second.valence is not None and second.valence < -0.5
    assert "negative_jump" in second.flags and first.flags == []


def test_aggregates_suppressed_below_min_faces() -> None:
    agg = MoodAggregator(bin_s=5)
    agg.add(0.0, frame(["happy"] * 4))
    (raw,) = agg.flush()
    assert raw.shares is not None and not raw.suppressed  # raw bins know nothing of k ...
    (b,) = apply_k([raw], 5)  # ... the k rule blanks them
    assert b.suppressed and b.shares is None and b.valence is None
    row = b.as_row()
    assert row["faces"] == 4 and row["share_happy"] is None


def test_faces_dropping_is_flagged() -> None:
    agg = MoodAggregator(bin_s=1)
    agg.add(0.0, frame(["neutral"] * 10))
    raw = agg.add(1.0, frame(["neutral"] * 5)) + agg.flush()
    b0, b1 = apply_k(raw, 1)
    assert b0.flags == [] and b1.flags == ["faces_dropped"]


def test_frames_without_faces_count_as_zero_faces() -> None:
    agg = MoodAggregator(bin_s=5)
    agg.add(0.0, Detections.empty())
    (b,) = apply_k(agg.flush(), 1)
    assert b.faces == 0 and b.suppressed and b.frames == 1


def test_valence_change_is_relative_to_each_faces_own_start() -> None:
    """Two resting faces that look different (one sad-ish, one happy-ish) and do not change: the change
    view says 0 although their mean valence is not 0; when both brighten, it says how much."""
    agg = MoodAggregator(bin_s=10, baseline_s=20)
    bins = []
    for t in range(0, 40, 2):
        bins += agg.add(float(t), frame(["sad", "happy"]))
    for t in range(40, 60, 2):
        bins += agg.add(float(t), frame(["happy", "happy"]))
    bins += agg.flush()
    assert [b.valence_change is None for b in bins[:2]] == [True, True]  # baselines still forming
    assert bins[2].valence_change is not None and abs(bins[2].valence_change) < 1e-6
    last = bins[-1]
    assert last.valence_change is not None and last.valence_change > 0.8  # the sad-looking face now smiles
    assert last.as_row()["valence_change"] == round(last.valence_change, 4)


def test_uncertain_faces_are_counted_apart() -> None:
    agg = MoodAggregator(bin_s=5)
    dets = frame(["sad", "happy", "happy", "neutral"])
    dets.uncertain = np.array([True, False, False, False])
    agg.add(0.0, dets)
    (b,) = agg.flush()
    assert b.uncertain_share == 0.25 and not b.suppressed
    assert b.shares is not None and b.shares["sad"] == 0.0 and b.shares["happy"] == 2 / 3
    assert b.negative_share == 0.0
