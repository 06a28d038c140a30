"""Dense face landmarks (468 points, x/y/z) and the head pose they give (issue 24).

The network is MediaPipe's face mesh, ``face_landmark.tflite`` from the ``mediapipe`` 0.10.21 wheel
(Apache-2.0), converted once to ONNX (``tools/convert_face_landmark.py``; shipped as
``weights/face_landmark.onnx``) and run here with ONNX Runtime: no mediapipe, no PyTorch. Each face is
cropped as MediaPipe's own graph crops a detection (``face_detection_front_detection_to_roi``): a square
of 1.5 times the box's longer side around its centre, turned so that the eyes lie level, resized to
192 x 192 RGB in [0, 1]. The landmarks come back in the crop's pixels and are mapped to the image; z is
in the same pixels, smaller = nearer the camera.

``dense_pose`` turns them into apparent yaw, pitch and roll without a 3D template: the face's own
axes from symmetric landmark pairs (left-right from the cheeks and eye corners, up-down from chin to
forehead), in the network's 3D output. The conventions are ``vision/pose.py``'s: yaw positive = turned
to the image's right, pitch positive = looking up, roll positive = tilted clockwise.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

INPUT = 192
CROP_SCALE = 1.5  # MediaPipe's RectTransformationCalculator for a detection: scale 1.5, square_long
MIN_SCORE = 0.5  # the face flag (sigmoid) below which MediaPipe drops the landmarks

# landmark indices of the 468-point mesh (subject's right = image left at rest)
RIGHT_CHEEK, LEFT_CHEEK = 234, 454
RIGHT_EYE_OUT, LEFT_EYE_OUT = 33, 263
RIGHT_EYE_IN, LEFT_EYE_IN = 133, 362
RIGHT_JAW, LEFT_JAW = 172, 397
FOREHEAD, CHIN, NOSE_TIP = 10, 152, 1
# left-right pairs (image left first at rest) whose differences give the face's x axis
_PAIRS = np.array(
    [
        [RIGHT_CHEEK, LEFT_CHEEK],
        [RIGHT_EYE_OUT, LEFT_EYE_OUT],
        [RIGHT_EYE_IN, LEFT_EYE_IN],
        [RIGHT_JAW, LEFT_JAW],
        [127, 356],
        [93, 323],
        [132, 361],
    ]
)


# how ``facing`` gets a head's pose: "five" = the detectors' five landmarks (``vision/pose.py``, the
# baseline); "dense" = the face mesh's own 3D axes (``dense_pose``); "contour" = the mesh's 2D geometry
# (``contour_pose``). The dense ones fall back to "five" where the mesh says there is no face (profiles).
POSE_METHODS = ("five", "dense", "contour")
# What ``facing`` uses. Still the five points: on the report split (``bench --facing``, rules chosen on tune,
# docs/benchmarks/facing.json) balanced accuracy is five 0.680, dense 0.680, contour 0.765 (away 7, 7 and
# 10 of 16; toward 106, 106 and 104 of 115), share error 0.000, 0.000, 0.038: contour's gain is three
# away faces, within the noise of 16, its share error is worse, and the mesh costs 4-12 ms per face on a
# CPU (a 49-face frame: 0.2-0.6 s). Even a rule chosen on the report split itself reaches only 0.796 with
# the mesh: the away faces it misses are heads turned little whose eyes look down or aside.
FACING_POSE = "five"


def landmark_path() -> Path:
    return Path(str(resources.files("classmood.weights").joinpath("face_landmark.onnx")))


def crop_transforms(boxes: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """(N, 2, 3) affine maps from crop pixels (0..192) to image pixels for (N, 4) xyxy boxes and
    (N, 2, 2) eye centres (image left first); faces without eyes are not turned."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    eyes = np.asarray(eyes, np.float64).reshape(-1, 2, 2)
    out = np.zeros((len(boxes), 2, 3), np.float64)
    for i, (box, eye) in enumerate(zip(boxes, eyes, strict=True)):
        d = eye[1] - eye[0]
        angle = math.atan2(d[1], d[0]) if np.isfinite(d).all() else 0.0
        side = CROP_SCALE * max(box[2] - box[0], box[3] - box[1], 1.0)
        k = side / INPUT
        c, s = math.cos(angle) * k, math.sin(angle) * k
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        rot = np.array([[c, -s], [s, c]])
        out[i, :, :2] = rot
        out[i, :, 2] = centre - rot @ np.array([INPUT / 2, INPUT / 2])
    return out


class FaceLandmarker:
    """The face mesh network: ``landmarks(bgr, boxes, eyes)`` gives (N, 468, 3) image-pixel landmarks
    (NaN rows where the network says there is no face) and (N,) face scores."""

    def __init__(self, path: str | Path | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        ort.disable_telemetry_events()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(path or landmark_path()), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        names = [o.name for o in self._session.get_outputs()]
        shapes = [o.shape for o in self._session.get_outputs()]
        # the landmark output is the wide one (1404 = 468 x 3), the face flag the single number
        self._marks = names[int(np.argmax([int(np.prod([d for d in s if isinstance(d, int)])) for s in shapes]))]
        self._flag = next(n for n in names if n != self._marks)

    def crops(self, bgr: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        """(N, 192, 192, 3) float32 RGB crops in [0, 1]."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        out = np.empty((len(transforms), INPUT, INPUT, 3), np.float32)
        for i, m in enumerate(transforms):
            crop = cv2.warpAffine(
                rgb, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT
            )
            out[i] = crop.astype(np.float32) / 255.0
        return out

    def run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 468, 3) landmarks in crop pixels and (N,) face scores for (N, 192, 192, 3) crops."""
        marks, flags = self._session.run(
            [self._marks, self._flag], {self._input: np.ascontiguousarray(crops, np.float32)}
        )
        marks = marks.reshape(len(crops), 468, 3)
        flags = 1 / (1 + np.exp(-flags.reshape(-1)))
        return marks, flags

    def landmarks(self, bgr: np.ndarray, boxes: np.ndarray, eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        transforms = crop_transforms(boxes, eyes)
        if not len(transforms):
            return np.zeros((0, 468, 3), np.float32), np.zeros(0, np.float32)
        marks, flags = self.run(self.crops(bgr, transforms))
        out = to_image(marks, transforms)
        out[flags < MIN_SCORE] = np.nan
        return out, flags


def to_image(marks: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Crop-pixel landmarks (N, 468, 3) to image pixels with ``crop_transforms``' maps; z scaled alike."""
    xy = np.einsum("nij,nkj->nki", transforms[:, :, :2], marks[:, :, :2]) + transforms[:, None, :, 2]
    scale = np.hypot(transforms[:, 0, 0], transforms[:, 1, 0])
    return np.concatenate([xy, marks[:, :, 2:] * scale[:, None, None]], axis=2).astype(np.float32)


def dense_pose(marks: np.ndarray) -> np.ndarray:
    """(N, 3) apparent yaw, pitch, roll in degrees from (N, 468, 3) image-pixel landmarks (NaN rows stay NaN).

    The face's x axis is the mean of the left-right pair differences, its y axis (down) chin minus
    forehead made orthogonal to x, its forward axis their cross product pointing at the camera."""
    marks = np.asarray(marks, np.float64).reshape(-1, 468, 3)
    out = np.full((len(marks), 3), np.nan, np.float32)
    for i, p in enumerate(marks):
        if not np.isfinite(p).all():
            continue
        x = (p[_PAIRS[:, 1]] - p[_PAIRS[:, 0]]).sum(axis=0)
        x /= np.linalg.norm(x)
        y = p[CHIN] - p[FOREHEAD]
        y -= x * (y @ x)
        y /= np.linalg.norm(y)
        forward = np.cross(y, x)  # camera coordinates: x right, y down, z away; at rest (0, 0, -1)
        yaw = math.degrees(math.atan2(forward[0], -forward[2]))
        pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
        roll = math.degrees(math.atan2(x[1], x[0]))
        out[i] = yaw, pitch, roll
    return out


def contour_pose(marks: np.ndarray) -> np.ndarray:
    """(N, 3) a 2D-only estimate: yaw from where the nose tip sits between the cheeks, pitch from where it
    sits between the eyes and the chin (both as asin of a centred ratio, in degrees), roll from the eyes."""
    marks = np.asarray(marks, np.float64).reshape(-1, 468, 3)
    out = np.full((len(marks), 3), np.nan, np.float32)
    for i, p in enumerate(marks):
        if not np.isfinite(p).all():
            continue
        eye = p[LEFT_EYE_OUT, :2] - p[RIGHT_EYE_OUT, :2]
        roll = math.atan2(eye[1], eye[0])
        c, s = math.cos(-roll), math.sin(-roll)
        q = p[:, :2] @ np.array([[c, s], [-s, c]])  # rotated so that the eyes lie level
        left, right, nose = q[LEFT_CHEEK, 0], q[RIGHT_CHEEK, 0], q[NOSE_TIP, 0]
        rx = (2 * nose - left - right) / max(left - right, 1e-6)
        eyes_y = (q[LEFT_EYE_OUT, 1] + q[RIGHT_EYE_OUT, 1]) / 2
        ry = (q[NOSE_TIP, 1] - eyes_y) / max(q[CHIN, 1] - eyes_y, 1e-6)
        yaw = math.degrees(math.asin(float(np.clip(rx, -1, 1))))
        # the nose sits ~0.45 of the way from the eyes to the chin at rest (absorbed by the rule's limits)
        pitch = math.degrees(math.asin(float(np.clip((0.45 - ry) * 2.5, -1, 1))))
        out[i] = yaw, pitch, math.degrees(roll)
    return out


def face_poses(
    bgr: np.ndarray,
    boxes: np.ndarray,
    five: np.ndarray,
    method: str = FACING_POSE,
    landmarker: FaceLandmarker | None = None,
) -> np.ndarray:
    """(N, 3) apparent yaw, pitch, roll of each detected face (``POSE_METHODS``): (N, 4) boxes and the
    detectors' (N, 5, 2) landmarks; a dense method runs ``landmarker`` and falls back to the five points."""
    from classmood.vision.pose import head_pose

    if method not in POSE_METHODS:
        raise ValueError(f"pose method must be one of {', '.join(POSE_METHODS)}, not {method!r}")
    base = head_pose(five, boxes)
    if method == "five" or not len(base):
        return base
    marks, _ = (landmarker or FaceLandmarker()).landmarks(bgr, boxes, np.asarray(five)[:, :2])
    return mesh_pose(marks, method, base)


def mesh_pose(marks: np.ndarray, method: str, fallback: np.ndarray) -> np.ndarray:
    """(N, 3) pose from the face mesh by ``method`` ("dense" or "contour"), ``fallback`` (the five-point
    pose) where the mesh said there is no face."""
    pose = dense_pose(marks) if method == "dense" else contour_pose(marks)
    missing = ~np.isfinite(pose[:, 0])
    pose[missing] = fallback[missing]
    return pose
