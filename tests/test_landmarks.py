"""Dense face landmarks (vision/landmarks.py): the shipped face mesh on real faces from bench/realfaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classmood.benchmarks.realfaces import DEFAULT_DIR, load_labels
from classmood.imageio import read_image
from classmood.vision.landmarks import (
    POSE_METHODS,
    FaceLandmarker,
    crop_transforms,
    dense_pose,
    face_poses,
    landmark_path,
    to_image,
)
from classmood.vision.pose import AWAY, TOWARD, FacingRule, facing

# from bench/realfaces/facing.csv: a frontal face labelled toward, a head turned well away
FRONTAL, TURNED = "interfaces_avatar_016.jpg", "interfaces_avatar_040.jpg"
RULE = FacingRule(max_yaw=24, max_down=24, max_up=20, margin=0)  # `bench --facing`'s tune choice for "dense"


def _labelled(image: str) -> tuple[np.ndarray, np.ndarray, str]:
    from classmood.benchmarks.facing import load_facing

    data = load_labels()
    words = load_facing()
    i = next(k for k, f in enumerate(data.faces) if f.image == image)
    return read_image(DEFAULT_DIR / image), np.array([data.faces[i].box], np.float64), words[i]


@pytest.fixture(scope="module")
def landmarker() -> FaceLandmarker:
    return FaceLandmarker(threads=1)


def test_shipped_mesh_gives_landmarks_inside_the_face_box(landmarker: FaceLandmarker) -> None:
    assert landmark_path().is_file() and landmark_path().stat().st_size < 5_000_000
    image, box, _ = _labelled(FRONTAL)
    marks, score = landmarker.landmarks(image, box, np.full((1, 2, 2), np.nan))
    assert marks.shape == (1, 468, 3) and score[0] > 0.9
    x1, y1, x2, y2 = box[0]
    pad = 0.15 * (x2 - x1)
    inside = (
        (marks[0, :, 0] > x1 - pad)
        & (marks[0, :, 0] < x2 + pad)
        & (marks[0, :, 1] > y1 - pad)
        & (marks[0, :, 1] < y2 + pad)
    )
    assert inside.mean() > 0.95
    # the eyes' outer corners on either side of the nose tip, the chin below it
    assert marks[0, 33, 0] < marks[0, 1, 0] < marks[0, 263, 0] and marks[0, 152, 1] > marks[0, 1, 1]


def test_frontal_face_reads_toward_and_a_turned_one_away(landmarker: FaceLandmarker) -> None:
    for image_name, expected in ((FRONTAL, TOWARD), (TURNED, AWAY)):
        image, box, label = _labelled(image_name)
        assert label == expected
        marks, _ = landmarker.landmarks(image, box, np.full((1, 2, 2), np.nan))
        pose = dense_pose(marks)
        assert facing(pose, RULE)[0] == expected, (image_name, pose)
    # without usable five points the five-point pose is NaN (read as unclear), never an error; the mesh
    # methods still read the face from the image
    for method in POSE_METHODS:
        out = face_poses(image, box, np.full((1, 5, 2), np.nan), method, landmarker)
        assert out.shape == (1, 3)
        assert np.isnan(out).all() if method == "five" else np.isfinite(out).all(), (method, out)


def test_crop_and_mapping_round_trip() -> None:
    box = np.array([[100.0, 50.0, 160.0, 130.0]])
    eyes = np.array([[[115.0, 80.0], [145.0, 90.0]]])  # tilted clockwise
    m = crop_transforms(box, eyes)
    corners = np.array([[[0.0, 0.0, 0.0], [192.0, 192.0, 0.0], [96.0, 96.0, 10.0]]], np.float32)
    back = to_image(corners, m)
    assert np.allclose(back[0, 2, :2], [130.0, 90.0], atol=1e-3)  # the crop's centre is the box's
    side = 1.5 * 80
    assert np.linalg.norm(back[0, 1, :2] - back[0, 0, :2]) == pytest.approx(side * np.sqrt(2), rel=1e-4)
    assert back[0, 2, 2] == pytest.approx(10 * side / 192, rel=1e-4)


def test_landmarks_run_without_pytorch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from classmood.imageio import read_image\n"
        "from classmood.benchmarks.realfaces import DEFAULT_DIR\n"
        "from classmood.vision.landmarks import FaceLandmarker, dense_pose\n"
        f"img = read_image(DEFAULT_DIR / {FRONTAL!r})\n"
        "box, eyes = np.array([[62.0, 59.0, 178.0, 221.0]]), np.full((1, 2, 2), np.nan)\n"
        "m, s = FaceLandmarker(threads=1).landmarks(img, box, eyes)\n"
        "assert np.isfinite(dense_pose(m)).all()\n"
        "assert 'torch' not in sys.modules and 'mediapipe' not in sys.modules, 'torch imported'\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={"PYTHONPATH": str(root), "PATH": ""})
