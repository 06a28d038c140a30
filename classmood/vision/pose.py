"""Apparent head orientation from the five landmarks the face detectors already give (issue 24).

Each face's eyes, nose tip and mouth corners are fitted to a generic 3D face (``FACE_3D``) with
OpenCV's ``solvePnP`` (SQPnP: a global solution for few points) under a narrow-angle camera centred
on the face's box, which is close to how a webcam sees one face. What comes out is *apparent*:
yaw (positive = turned to the image's right), pitch (positive = looking up, negative = down) and
roll (positive = head tilted clockwise in the image), in degrees, of a mean face, not of this
person's skull. ``facing`` turns it into the three words a class-level share needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# A generic face in the detectors' landmark order (the subject's right eye first, which is on the
# image's left), x to the image's right, y up, z towards the camera, nose tip at the origin; the
# eye centres, nose tip and mouth corners of the widely used 68-point mean face (arbitrary units).
FACE_3D = np.array(
    [
        [-150.0, 170.0, -135.0],
        [150.0, 170.0, -135.0],
        [0.0, 0.0, 0.0],
        [-130.0, -150.0, -125.0],
        [130.0, -150.0, -125.0],
    ],
    np.float64,
)
# The camera's focal length in face-box widths: a narrow view, so perspective barely matters and the
# estimate does not depend on where the face sits in the frame.
FOCAL_BOXES = 8.0

TOWARD, AWAY, UNCLEAR = "toward", "away", "unclear"
FACING_WORDS = (TOWARD, AWAY, UNCLEAR)


@dataclass(frozen=True)
class FacingRule:
    """When a head counts as turned to the screen: within ``max_yaw`` degrees left or right, not
    looking down more than ``max_down`` degrees, and not up more than ``max_up``. Within ``margin``
    degrees of a limit, or without landmarks, the answer is ``unclear``.

    The defaults are what the pipeline ships: the limits ``bench --facing`` chose for the five-point
    estimate on the tune split of the real faces labelled by eye (docs/benchmarks/facing.json), where
    no margin scored best; on the report split they reach balanced accuracy 0.68 (toward 0.92, away
    0.44 of 16), and the class share facing 0.878 labelled vs 0.878 estimated."""

    max_yaw: float = 32.0
    max_down: float = 18.0
    max_up: float = 20.0
    margin: float = 0.0


def head_pose(landmarks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 3) apparent yaw, pitch, roll in degrees for (N, 5, 2) landmarks and (N, 4) xyxy boxes;
    NaN rows where a face has no landmarks."""
    marks = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.full((len(marks), 3), np.nan, np.float32)
    for i, (pts, box) in enumerate(zip(marks, boxes, strict=True)):
        if not np.isfinite(pts).all():
            continue
        width = max(1.0, box[2] - box[0])
        f = FOCAL_BOXES * width
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        camera = np.array([[f, 0, centre[0]], [0, f, centre[1]], [0, 0, 1]], np.float64)
        # the model's y is up and OpenCV's image y is down: flip the model instead of the image
        model = FACE_3D * np.array([1.0, -1.0, -1.0])
        ok, rvec, _ = cv2.solvePnP(model, pts, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        if ok:
            out[i] = _angles(cv2.Rodrigues(rvec)[0])
    return out


def _angles(r: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees of the rotation ``r`` that takes the (flipped) model to the camera."""
    # the face's forward axis (towards the camera at rest) and up axis, in camera coordinates (y down)
    forward = r @ np.array([0.0, 0.0, -1.0])
    up = r @ np.array([0.0, -1.0, 0.0])
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    roll = math.degrees(math.atan2(up[0], -up[1]))
    return yaw, pitch, roll


def facing(pose: np.ndarray, rule: FacingRule = FacingRule()) -> np.ndarray:
    """(N,) words ``toward`` / ``away`` / ``unclear`` for (N, 3) yaw, pitch, roll (``head_pose``)."""
    pose = np.asarray(pose, np.float64).reshape(-1, 3)
    yaw, pitch = np.abs(pose[:, 0]), pose[:, 1]
    # how far inside the "toward" region each head is, in degrees (negative = outside)
    inside = np.minimum.reduce([rule.max_yaw - yaw, rule.max_down + pitch, rule.max_up - pitch])
    words = np.where(inside > rule.margin, TOWARD, np.where(inside < -rule.margin, AWAY, UNCLEAR))
    return np.where(np.isfinite(inside), words, UNCLEAR).astype(object)


def looking_down(pose: np.ndarray, rule: FacingRule = FacingRule()) -> np.ndarray:
    """(N,) bool: the head is turned away because it looks down (at a desk, notes or a phone): pitch
    below ``-max_down`` by more than the margin. NaN poses are False (unclear, not down)."""
    pitch = np.asarray(pose, np.float64).reshape(-1, 3)[:, 1]
    with np.errstate(invalid="ignore"):
        return pitch < -(rule.max_down + rule.margin)
