"""``classmood bench --mood``: does the mood score's zero mean calm? Fitted on FER+ Training, measured on PublicTest.

The mood score (``analytics/mood.py``) weighs each face's calibrated probabilities: +1 happy, -1
angry, disgust, fear and sad, 0 surprise and ``NEUTRAL_WEIGHT`` neutral. This benchmark

1. **fits** the neutral weight: with the other weights fixed, the one value that makes the faces
   FER+'s ten annotators called neutral (majority label, Training split) score 0 on average, the
   shipped models' probabilities pooled (each model alone is reported too). Training is the split
   the models learnt from, so their probabilities there are a little sharper than on new faces;
   PublicTest below says whether the zero holds on faces they did not learn from;
2. **measures**, with the weights as shipped, the mean score of PublicTest faces per FER+ majority
   class for each shipped model, beside the old score (P(happy) - P(negative), neutral 0), against
   the targets: neutral within +-0.05 of 0, happy >= +0.6, sad, angry, fear and disgust <= -0.4;
3. reads a **calm video call** (``calm_call_clip``: a real 24-person call gallery from the real-face
   benchmark, a few seconds with camera jitter and noise, coded with H.264) through the whole
   pipeline and reports its class mood score.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from classmood.analytics.mood import MOOD_WEIGHTS, NEGATIVE, NEUTRAL_WEIGHT
from classmood.labels import EMOTIONS

NEUTRAL = EMOTIONS.index("neutral")
# The score before this one (issue 23): P(happy) minus P(any negative class), neutral and surprise 0.
OLD_WEIGHTS = np.array([-1.0 if e in NEGATIVE else 1.0 if e == "happy" else 0.0 for e in EMOTIONS], np.float32)
TARGETS = {"neutral": (-0.05, 0.05), "happy": (0.6, 1.0), **{e: (-1.0, -0.4) for e in NEGATIVE}}
CALM_GALLERY = Path(__file__).resolve().parents[2] / "bench" / "realfaces" / "18f_video_meeting_grid.jpg"


def fit_neutral_weight(probs: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> float:
    """The neutral weight that makes the pooled majority-neutral faces of every (probs, labels) pair score 0.

    With ``w`` the shipped weights but neutral's, the mean score of the neutral faces is
    ``m . w + m_neutral * x`` (``m``: their mean probabilities, the sets pooled with equal weight per
    model), so the weight is ``x = -(m . w) / m_neutral``.
    """
    pairs = zip(probs, labels, strict=True)
    means = [np.asarray(p, np.float64)[np.asarray(y) == NEUTRAL].mean(axis=0) for p, y in pairs]
    m = np.mean(means, axis=0)
    others = MOOD_WEIGHTS.astype(np.float64).copy()
    others[NEUTRAL] = 0.0
    return float(-(m @ others) / m[NEUTRAL])


def mean_by_class(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray = MOOD_WEIGHTS) -> dict[str, Any]:
    """Per FER+ majority class: faces and the mean score of (N, 7) ``probs`` under ``weights``."""
    scores = np.asarray(probs, np.float64) @ np.asarray(weights, np.float64)
    labels = np.asarray(labels)
    return {
        e: {"faces": int((labels == i).sum()), "mean": round(float(scores[labels == i].mean()), 3)}
        for i, e in enumerate(EMOTIONS)
        if (labels == i).any()
    }


def meets_targets(by_class: Mapping[str, Mapping[str, Any]]) -> dict[str, bool]:
    """Per target class: whether its mean score lies in its target range (``TARGETS``)."""
    return {e: lo <= by_class[e]["mean"] <= hi for e, (lo, hi) in TARGETS.items() if e in by_class}


def calm_call_clip(path: str | Path, seconds: float = 4.0, fps: int = 10, width: int = 1280, seed: int = 0) -> Path:
    """A short H.264 clip of ``CALM_GALLERY`` (a real video-call gallery of 24 calm faces) as a webcam-and-
    codec would deliver it: every frame moved by up to 2 px (camera and window jitter), with sensor-like
    noise (SD 3 grey levels), coded by libx264 at 1.5 Mbit/s. Returns ``path``."""
    import av
    import cv2

    image = cv2.imread(str(CALM_GALLERY))
    if image is None:
        raise FileNotFoundError(f"{CALM_GALLERY}: the real-face benchmark's call gallery is missing")
    height = round(image.shape[0] * width / image.shape[1] / 2) * 2
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 1_500_000
        for _ in range(round(seconds * fps)):
            dx, dy = rng.uniform(-2, 2, 2)
            shift = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
            frame = cv2.warpAffine(image, shift, (width, height), borderMode=cv2.BORDER_REPLICATE)
            noisy = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def clip_mood(model: str, path: str | Path | None = None, min_faces: int = 5) -> dict[str, Any]:
    """The class numbers ``classmood analyze`` gives the calm call clip with ``model`` (made when ``path`` is None)."""
    from classmood.analysis.analyze import analyze
    from classmood.pipeline import PipelineConfig

    with tempfile.TemporaryDirectory(prefix="classmood-mood-") as tmp:
        clip = Path(path) if path is not None else calm_call_clip(Path(tmp) / "calm_call.mp4")
        result = analyze(clip, config=PipelineConfig(model=model, min_faces=min_faces))
    numbers = dict(result.summary["class"])
    return {
        "model": model,
        "mood": None if numbers.get("valence") is None else round(numbers["valence"], 3),
        "margin": None if numbers.get("mood_margin") is None else round(numbers["mood_margin"], 3),
        "faces": numbers.get("faces"),
        "faces_read": numbers.get("faces_read"),
        "shares": {e: round(v, 3) for e, v in (numbers.get("shares") or {}).items()},
    }


def run_mood_bench(data: str | Path, models: Sequence[str] = ("fast", "accurate")) -> dict[str, Any]:
    """Fit (Training) and measure (PublicTest) the mood score for each shipped model; read the calm call clip."""
    from classmood.data.ferplus import NO_LABEL, majority_labels
    from classmood.data.loader import load_splits
    from classmood.errors import DataError
    from classmood.expression.model import load_model

    splits = load_splits(data, ["Training", "PublicTest"])
    if any(s.votes is None for s in splits.values()):
        raise DataError(f"{data}: FER+ votes (ferplus_votes.csv) are needed beside the dataset")
    labels = {name: majority_labels(s.votes) for name, s in splits.items()}  # type: ignore[arg-type]
    out: dict[str, Any] = {
        "weights": {e: round(float(w), 3) for e, w in zip(EMOTIONS, MOOD_WEIGHTS, strict=True)},
        "targets": {e: list(r) for e, r in TARGETS.items()},
        "labels": "FER+ majority: the single largest of the ten vote columns (ties, contempt, unknown and "
        "not-a-face majorities left out)",
        "probabilities": "each model's calibrated probabilities (its readout: temperature and classroom prior)",
        "models": {},
    }
    train_probs, train_labels = [], []
    for name in models:
        model = load_model(name)
        probs = {split: model.predict_proba(s.images) for split, s in splits.items()}
        train_probs.append(probs["Training"])
        train_labels.append(labels["Training"])
        test = probs["PublicTest"]
        known = labels["PublicTest"] != NO_LABEL
        by_class = mean_by_class(test[known], labels["PublicTest"][known])
        out["models"][name] = {
            "neutral_weight_fitted_alone": round(fit_neutral_weight([probs["Training"]], [labels["Training"]]), 3),
            "publictest": by_class,
            "publictest_old_score": mean_by_class(test[known], labels["PublicTest"][known], OLD_WEIGHTS),
            "meets_targets": meets_targets(by_class),
            "calm_call_clip": clip_mood(name),
        }
    out["neutral_weight_fitted"] = round(fit_neutral_weight(train_probs, train_labels), 3)
    out["neutral_weight_shipped"] = NEUTRAL_WEIGHT
    return out
