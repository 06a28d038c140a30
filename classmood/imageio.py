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


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the file's header alone, without decoding; None when the format is not known.

    Raises ``ClassmoodError`` for a header that claims a decompression bomb (Pillow refuses to go on).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError:
        raise ClassmoodError(f"{path}: image too large (its header claims over {MAX_IMAGE_PIXELS:,} pixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to 8-bit BGR, or raise a ClassmoodError that names the file.

    The size is read from the header first: a file that claims more than ``MAX_IMAGE_PIXELS`` is
    refused before a byte of it is decoded (a decompression bomb would otherwise take gigabytes).
    """
    path = Path(path)
    if not path.is_file():
        raise ClassmoodError(f"{path}: no such file")
    try:
        if path.stat().st_size == 0:
            raise ClassmoodError(f"{path}: empty file")
        size = image_size(path)
        if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
            raise ClassmoodError(f"{path}: image too large ({size[0]}x{size[1]} pixels; at most {MAX_IMAGE_PIXELS:,})")
        data = np.fromfile(path, np.uint8)
    except PermissionError:
        raise ClassmoodError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ClassmoodError(f"{path}: cannot read ({exc.strerror or exc})") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ClassmoodError(f"{path}: not an image OpenCV can decode")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ClassmoodError(f"{path}: image too large ({image.shape[1]}x{image.shape[0]} pixels)")
    return to_bgr8(image)
