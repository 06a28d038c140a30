"""Apparent head orientation from five landmarks (vision/pose.py)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from classmood.vision.pose import (
    AWAY,
    FACE_3D,
    FOCAL_BOXES,
    TOWARD,
    UNCLEAR,
    FacingRule,
    facing,
    head_pose,
    looking_down,
)

FRONTAL = np.array([[35, 40], [65, 40], [50, 58], [38, 75], [62, 75]], np.float64)
BOX = np.array([[0, 0, 100, 100]], np.float64)


def _projected(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    """The generic face's landmarks seen by the pose's own camera after turning it about ``axis``."""
    model = FACE_3D * np.array([1.0, -1.0, -1.0])
    rvec = np.array(axis, np.float64) * math.radians(degrees)
    f = FOCAL_BOXES * 100
    camera = np.array([[f, 0, 50], [0, f, 50], [0, 0, 1]], np.float64)
    pts, _ = cv2.projectPoints(model, rvec, np.array([0.0, 0.0, 4 * f]), camera, None)
    return pts.reshape(1, 5, 2)


@pytest.mark.parametrize("degrees", [-50, -25, 0, 15, 40])
def test_a_turned_model_face_is_read_back_at_its_angle(degrees: float) -> None:
    yaw = head_pose(_projected((0, 1, 0), degrees), BOX)[0]
    pitch = head_pose(_projected((1, 0, 0), degrees), BOX)[0]
    roll = head_pose(_projected((0, 0, 1), degrees), BOX)[0]
    assert abs(abs(yaw[0]) - abs(degrees)) < 1 and abs(yaw[1]) < 1 and abs(yaw[2]) < 1
    assert abs(abs(pitch[1]) - abs(degrees)) < 1 and abs(pitch[0]) < 1
    assert abs(roll[2] - degrees) < 1 and abs(roll[0]) < 1 and abs(roll[1]) < 1


def test_signs_follow_the_image() -> None:
    """Nose towards the image's right: yaw > 0; nose down towards the mouth: looking down (pitch < 0)."""
    right, down = FRONTAL.copy(), FRONTAL.copy()
    right[2, 0] += 12
    down[2, 1] += 10
    assert np.allclose(head_pose(FRONTAL[None], BOX)[0], 0, atol=2)
    assert head_pose(right[None], BOX)[0, 0] > 25
    assert head_pose(down[None], BOX)[0, 1] < -15


def test_facing_words_and_faces_without_landmarks() -> None:
    pose = np.array([[0, 0, 0], [45, 0, 0], [-45, 0, 0], [0, -40, 0], [31, 0, 0], [np.nan] * 3], np.float32)
    with_margin = FacingRule(max_yaw=30, max_down=20, max_up=30, margin=5)
    assert list(facing(pose, with_margin)) == [TOWARD, AWAY, AWAY, AWAY, UNCLEAR, UNCLEAR]
    assert list(facing(pose))[-2:] == [TOWARD, UNCLEAR]  # the shipped rule: 32 degrees, no margin
    assert list(looking_down(pose)) == [False, False, False, True, False, False]
    assert list(facing(pose, FacingRule(max_yaw=60)))[:3] == [TOWARD, TOWARD, TOWARD]
    missing = np.full((2, 5, 2), np.nan)
    missing[0] = FRONTAL
    assert np.isnan(head_pose(missing, np.repeat(BOX, 2, 0))[1]).all()


def test_facing_score_counts_found_faces_and_the_share_the_dashboard_would_show() -> None:
    from classmood.benchmarks.facing import load_facing, score

    labels = np.array([TOWARD, TOWARD, TOWARD, AWAY, AWAY, UNCLEAR], dtype=object)
    said = np.array([TOWARD, TOWARD, AWAY, AWAY, UNCLEAR, TOWARD], dtype=object)
    found = np.array([True, True, True, True, True, False])
    s = score(said, labels, found)
    assert s["faces"] == 5 and s["recall"] == {TOWARD: pytest.approx(2 / 3), AWAY: 0.5}
    assert s["balanced_accuracy"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert s["share_labelled"] == pytest.approx(0.6) and s["share_estimated"] == pytest.approx(0.5)
    lost = score(said, labels, np.array([False, True, True, True, True, True]))
    assert lost["not_found"] == {TOWARD: 1, AWAY: 0} and lost["faces"] == 4
    words = load_facing()  # the shipped labels: one per labelled face, all known words
    assert len(words) == 248 and set(words) == {TOWARD, AWAY, UNCLEAR}


def test_the_per_image_share_is_one_class_at_one_moment_with_at_least_k_faces() -> None:
    from classmood.benchmarks.facing import image_shares

    labels = np.array([TOWARD] * 5 + [AWAY] + [TOWARD] * 2, dtype=object)
    said = np.array([TOWARD] * 4 + [AWAY] * 2 + [TOWARD] * 2, dtype=object)
    images = np.array(["class.jpg"] * 6 + ["pair.jpg"] * 2, dtype=object)
    (one,) = image_shares(said, labels, np.ones(8, bool), images, k=5)  # the pair is under k: not a class
    assert one["image"] == "class.jpg" and one["faces"] == 6
    assert one["share_labelled"] == pytest.approx(5 / 6) and one["share_estimated"] == pytest.approx(4 / 6)
    assert one["share_error"] == pytest.approx(1 / 6)
