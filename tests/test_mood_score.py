"""The mood score's zero means calm: faces people call neutral score 0, smiles well above, negative faces well below.

What a teacher relies on: a calm class reads about 0 (not -0.4 as the old P(happy) - P(negative) did),
with either shipped model. Measured on FER+'s majority labels of PublicTest (needs ../shared, skipped
without it) and on a calm real video call from the real-face benchmark (in the repository), read
through the whole pipeline as ``classmood analyze`` reads a recording.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classmood.analytics.mood import MOOD_WEIGHTS, NEUTRAL_WEIGHT, MoodAggregator, mood_margin, mood_scores
from classmood.benchmarks.mood import TARGETS, calm_call_clip, clip_mood, fit_neutral_weight, mean_by_class
from classmood.containers import Detections
from classmood.labels import EMOTIONS
from tests.conftest import SHARED_FER

MODELS = ("fast", "accurate")


def one_hot(word: str) -> np.ndarray:
    p = np.zeros(len(EMOTIONS), np.float32)
    p[EMOTIONS.index(word)] = 1.0
    return p


def test_the_score_runs_from_negative_through_calm_to_happy() -> None:
    scores = dict(zip(EMOTIONS, mood_scores(np.stack([one_hot(e) for e in EMOTIONS])), strict=True))
    assert scores["happy"] == 1.0 and all(scores[e] == -1.0 for e in ("angry", "disgust", "fear", "sad"))
    assert scores["surprise"] == 0.0 and scores["neutral"] == pytest.approx(NEUTRAL_WEIGHT)
    # a resting face as the models read it (~70 % neutral, ~15 % sad, the rest spread) scores about 0
    resting = 0.7 * one_hot("neutral") + 0.15 * one_hot("sad") + 0.05 * (one_hot("angry") + one_hot("happy"))
    resting += 0.05 * one_hot("surprise")
    assert abs(float(mood_scores(resting)[0])) < 0.05


def test_a_bins_score_is_the_mean_of_its_faces_and_its_margin_shrinks_with_more_faces() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7), size=12).astype(np.float32)
    agg = MoodAggregator(bin_s=5)
    agg.add(0.0, Detections(np.tile([0, 0, 10, 10], (6, 1)), np.ones(6), np.arange(6), probs[:6]))
    agg.add(1.0, Detections(np.tile([0, 0, 10, 10], (6, 1)), np.ones(6), np.arange(6), probs[6:]))
    (b,) = agg.flush()
    assert b.valence == pytest.approx(float((probs @ MOOD_WEIGHTS).mean()), abs=1e-6)
    assert b.valence == pytest.approx(float(probs.mean(axis=0) @ MOOD_WEIGHTS), abs=1e-6)  # linear: from mean probs
    assert b.mood_sd == pytest.approx(float((probs @ MOOD_WEIGHTS).std()), abs=1e-6) and b.faces_read == 6
    few, many = mood_margin(0.3, 4), mood_margin(0.3, 25)
    assert few is not None and many is not None and few == pytest.approx(1.96 * 0.3 / 2) and many < few
    assert mood_margin(None, 4) is None and mood_margin(0.3, 0) is None


def test_the_neutral_weight_fit_zeroes_the_neutral_faces() -> None:
    """The fit the benchmark runs: whatever the probabilities of neutral faces, the fitted weight brings their
    mean score to exactly 0 (pooled over models)."""
    rng = np.random.default_rng(1)
    sets = []
    for _ in range(2):
        probs = rng.dirichlet([1, 1, 1, 1, 3, 1, 12], size=200).astype(np.float32)  # neutral faces, a little sad
        sets.append((probs, np.full(200, EMOTIONS.index("neutral"))))
    weight = fit_neutral_weight([p for p, _ in sets], [y for _, y in sets])
    weights = MOOD_WEIGHTS.astype(np.float64).copy()
    weights[EMOTIONS.index("neutral")] = weight
    pooled = np.concatenate([p for p, _ in sets])
    assert 0 < weight < 1 and abs(float((pooled @ weights).mean())) < 1e-9


@pytest.mark.skipif(
    not (SHARED_FER / "ferplus_votes.csv").is_file() or not (SHARED_FER / "fer2013_publictest.npy.xz").is_file(),
    reason=f"FER+ votes and PublicTest not found at {SHARED_FER} (the dataset is not part of the repo)",
)
@pytest.mark.parametrize("name", MODELS)
def test_on_ferplus_publictest_neutral_faces_score_zero_smiles_high_negatives_low(name: str) -> None:
    from classmood.data.ferplus import NO_LABEL, majority_labels
    from classmood.data.loader import load_splits
    from classmood.expression.model import load_model

    test = load_splits(SHARED_FER, ["PublicTest"])["PublicTest"]
    assert test.votes is not None
    labels = majority_labels(test.votes)
    known = labels != NO_LABEL
    probs = load_model(name).predict_proba(test.images)  # calibrated, as the pipeline reads faces
    by_class = mean_by_class(probs[known], labels[known])
    for word, (lo, hi) in TARGETS.items():
        assert lo <= by_class[word]["mean"] <= hi, (name, word, by_class[word])
    assert by_class["neutral"]["faces"] > 1000  # the measurement rests on many faces


@pytest.fixture(scope="module")
def calm_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return calm_call_clip(tmp_path_factory.mktemp("calm") / "calm_call.mp4")


@pytest.mark.parametrize("name", MODELS)
def test_a_calm_real_video_call_reads_calm(calm_clip: Path, name: str) -> None:
    """24 real people in a video-call gallery (bench/realfaces, labelled neutral by eye), a few seconds with
    camera jitter and noise through H.264: the class mood score is within 0.1 of 0."""
    numbers = clip_mood(name, calm_clip)
    assert numbers["faces"] is not None and numbers["faces"] >= 15  # the class, not a few faces
    assert numbers["mood"] is not None and abs(numbers["mood"]) <= 0.1, numbers
    assert numbers["margin"] is not None and numbers["margin"] < 0.15
    assert numbers["shares"]["neutral"] >= 0.8
