"""Class mood per time bin: shares, valence, suppression below k faces, and flagged moments."""

from __future__ import annotations

import numpy as np

from classmood.analytics.mood import MoodAggregator
from classmood.labels import EMOTIONS
from classmood.vision.detections import Detections


def frame(expressions: list[str], start_id: int = 1) -> Detections:
    n = len(expressions)
    probs = np.full((n, 7), 0.02, np.float32)
    for i, e in enumerate(expressions):
        probs[i, EMOTIONS.index(e)] = 0.88
    boxes = np.tile(np.array([0, 0, 10, 10], np.float32), (n, 1))
    return Detections(boxes, np.ones(n), np.arange(start_id, start_id + n), probs)


def test_bins_shares_and_valence() -> None:
    agg = MoodAggregator(bin_s=5, min_faces=3)
    closed = []
    for t in (0.0, 2.5):
        closed += agg.add(t, frame(["happy"] * 3 + ["neutral"]))
    closed += agg.add(5.0, frame(["sad"] * 4))
    closed += agg.flush()
    first, second = closed
    assert (first.start_s, first.end_s, first.frames, first.faces, first.tracks) == (0, 5, 2, 4.0, 4)
    assert first.shares is not None and first.shares["happy"] == 0.75 and first.shares["neutral"] == 0.25
    assert first.valence is not None and first.valence > 0.5
    assert second.negative_share == 1.0 and second.valence is not None and second.valence < -0.5
    assert "negative_jump" in second.flags and first.flags == []


def test_aggregates_suppressed_below_min_faces() -> None:
    agg = MoodAggregator(bin_s=5, min_faces=5)
    agg.add(0.0, frame(["happy"] * 4))
    (b,) = agg.flush()
    assert b.suppressed and b.shares is None and b.valence is None
    row = b.as_row()
    assert row["faces"] == 4 and row["share_happy"] is None


def test_faces_dropping_is_flagged() -> None:
    agg = MoodAggregator(bin_s=1, min_faces=1)
    agg.add(0.0, frame(["neutral"] * 10))
    (b0,) = agg.add(1.0, frame(["neutral"] * 5))
    (b1,) = agg.flush()
    assert b0.flags == [] and b1.flags == ["faces_dropped"]


def test_frames_without_faces_count_as_zero_faces() -> None:
    agg = MoodAggregator(bin_s=5, min_faces=1)
    agg.add(0.0, Detections.empty())
    (b,) = agg.flush()
    assert b.faces == 0 and b.suppressed and b.frames == 1
