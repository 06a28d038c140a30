"""The gallery benchmark itself: its video matches its truth, and scoring counts what it should."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from classmood.benchmarks.pipeline import COLS, ROWS, make_gallery_video, score_run
from classmood.expression.predict import sample_face_path
from classmood.pipeline import PipelineConfig


def _faces(n: int) -> tuple[np.ndarray, np.ndarray]:
    """48x48 grey FER-like crops of the bundled real face, varied in brightness, with labels 0..6."""
    face = cv2.resize(cv2.imread(str(sample_face_path()), cv2.IMREAD_GRAYSCALE), (48, 48), interpolation=cv2.INTER_AREA)
    images = np.stack([np.clip(face.astype(np.int16) + 8 * (i % 5) - 16, 0, 255).astype(np.uint8) for i in range(n)])
    return images, np.arange(n) % 7


def test_gallery_video_and_score(tmp_path: Path) -> None:
    images, labels = _faces(60)
    video = tmp_path / "gallery.mp4"
    truth = make_gallery_video(video, images, labels, seconds=2.0, fps=5.0, hold_s=1.0)
    assert truth.boxes.shape == (ROWS * COLS, 4) and truth.labels.shape == (2, ROWS * COLS)
    w = truth.boxes[:, 2] - truth.boxes[:, 0]
    assert ((w >= 60) & (w <= 71)).all()  # faces of 60-70 px, as the gallery asks
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 1920
    cap.release()

    scored = score_run(video, truth, PipelineConfig(rate_hz=2.0))
    assert scored["frames_analysed"] == 4
    assert scored["recall"] >= 0.95  # a real face at gallery size is found in (nearly) every tile
    assert scored["id_switches"] == 0  # still tiles keep their pseudonyms
    assert 0.0 <= scored["accuracy_found"] <= 1.0 and scored["analysed_fps"] > 0

    truth.boxes[:, [1, 3]] += 75  # truth moved half a tile down: no detection matches it any more
    assert score_run(video, truth, PipelineConfig(rate_hz=2.0))["recall"] == 0.0
