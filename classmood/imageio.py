"""Reading user images safely: any depth or channel layout to 8-bit BGR, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from classmood.errors import ClassmoodError

MAX_IMAGE_PIXELS = 50_000_000  # ~8k x 6k; larger images are refused rather than exhausting memory


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Grey, BGRA, 16-bit or float images -> 8-bit BGR."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        lo, hi = float(image.min()), float(image.max())
        image = ((image - lo) * (255.0 / max(hi - lo, 1e-9))).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to 8-bit BGR, or raise a ClassmoodError that names the file."""
    path = Path(path)
    if not path.is_file():
        raise ClassmoodError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ClassmoodError(f"{path}: empty file")
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ClassmoodError(f"{path}: not an image OpenCV can decode")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ClassmoodError(f"{path}: image too large ({image.shape[1]}x{image.shape[0]} pixels)")
    return to_bgr8(image)
