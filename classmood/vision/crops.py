"""Face boxes -> 48x48 grey crops that look like FER2013's, the distribution the models learnt.

FER2013 crops are squares that run from about the eyebrows' top to the chin. We measured where
libfacedetection puts its box on FER2013 faces (600 PublicTest faces upscaled 2x in a blurred
reflected margin; 546 found): the FER square is centred on the box centre (median offset
+1.5 % of the width, -0.9 % of the height) and its side is 1.01x the box height (interquartile
range 0.92-1.12). So a FER-like crop is the square of side ``scale`` x box height around the box
centre. Crops that leave the frame are padded by replicating edge pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from classmood.data.dataset import FACE_SIZE

FER_SIDE_PER_BOX_HEIGHT = 1.01


def square_boxes(xyxy: np.ndarray, scale: float = FER_SIDE_PER_BOX_HEIGHT) -> np.ndarray:
    """Square crop boxes (x1, y1, x2, y2) centred on each face box, side = ``scale`` x box height."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    cx = (xyxy[:, 0] + xyxy[:, 2]) / 2
    cy = (xyxy[:, 1] + xyxy[:, 3]) / 2
    half = (xyxy[:, 3] - xyxy[:, 1]) * scale / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def face_crops(frame: np.ndarray, xyxy: np.ndarray, scale: float = FER_SIDE_PER_BOX_HEIGHT) -> np.ndarray:
    """(N, 48, 48) uint8 grey crops of ``frame`` (BGR or grey) for the face boxes ``xyxy``."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    boxes = np.round(square_boxes(xyxy, scale)).astype(np.int64)
    out = np.empty((len(boxes), FACE_SIZE, FACE_SIZE), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        region = grey[max(0, y1) : max(0, min(h, y2)), max(0, x1) : max(0, min(w, x2))]
        if region.size == 0:  # box entirely outside the frame
            out[i] = 0
            continue
        top, left = max(0, -y1), max(0, -x1)
        bottom, right = (y2 - y1) - top - region.shape[0], (x2 - x1) - left - region.shape[1]
        if top or left or bottom or right:
            region = cv2.copyMakeBorder(region, top, bottom, left, right, cv2.BORDER_REPLICATE)
        interp = cv2.INTER_AREA if region.shape[0] > FACE_SIZE else cv2.INTER_LINEAR
        out[i] = cv2.resize(region, (FACE_SIZE, FACE_SIZE), interpolation=interp)
    return out
