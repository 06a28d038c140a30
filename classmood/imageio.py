"""Reading user images safely: upright (EXIF orientation), any depth or channel layout to 8-bit BGR,
with one-line errors."""

from __future__ import annotations

import stat
from pathlib import Path

import cv2
import numpy as np

from classmood.errors import ClassmoodError

MAX_IMAGE_PIXELS = 50_000_000  # ~8k x 6k; larger images are refused rather than exhausting memory


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Grey, grey + alpha, BGRA, 16-bit, other integer or float images -> 8-bit BGR (see ``to_uint8``)."""
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 2:  # grey + alpha
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] > 4:  # extra samples (a multi-band TIFF): the first three
        image = np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Any depth to 8 bits, by the range the values really use, so that no face is lost in the dark.

    - unsigned integers (16-bit, 32-bit): by the bit depth the data fills - a 16-bit file holding
      12-bit data (a camera's, max 4095) is scaled by 4095, not 65535, which would leave it black;
      8-bit data in a 16-bit file stays as it is;
    - floats in 0..1 (the usual convention) times 255; floats in any other range (HDR, -1..1,
      0..65535) stretched from their smallest to their largest finite value;
    - signed integers: as they are when they lie in 0..255, else stretched like floats.

    NaN becomes the darkest and +/-inf the brightest/darkest finite value, so one bad pixel cannot
    turn the whole image into NaN (and 0 faces).
    """
    if image.dtype == np.uint8:
        return image
    if image.dtype in (np.uint16, np.uint32, np.uint64):
        top = int(image.max()) if image.size else 0
        alpha = 255.0 / (2 ** max(8, top.bit_length()) - 1)
        # OpenCV scales 16-bit data itself, without a float copy of a 50-Mpx image
        return cv2.convertScaleAbs(image if image.dtype == np.uint16 else image.astype(np.float64), alpha=alpha)
    data = image.astype(np.float32)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(image.shape, np.uint8)
    lo, hi = float(data[finite].min()), float(data[finite].max())
    if not finite.all():
        data = np.nan_to_num(data, nan=lo, posinf=hi, neginf=lo)
    if np.issubdtype(image.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
        return cv2.convertScaleAbs(data, alpha=255.0)
    if np.issubdtype(image.dtype, np.integer) and lo >= 0 and hi <= 255:
        return data.astype(np.uint8)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return cv2.convertScaleAbs(data, alpha=scale, beta=-lo * scale)  # lo -> 0, hi -> 255, nothing negative


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) as displayed (after EXIF orientation) from the file's header alone, without
    decoding; None when the format is not known.

    Raises ``ClassmoodError`` for a header that claims a decompression bomb (Pillow refuses to go on).
    """
    header = _header(path)
    return None if header is None else header[0]


def _header(path: str | Path) -> tuple[tuple[int, int], int] | None:
    """((width, height) as displayed, EXIF orientation 1-8) from the header, or None for an unknown format."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = int(im.size[0]), int(im.size[1])
            orientation = 1
            if im.format != "TIFF":  # libtiff (OpenCV's and Pillow's) turns a TIFF itself, size included
                try:
                    orientation = int(im.getexif().get(EXIF_ORIENTATION, 1))
                except Exception:  # a damaged EXIF block: Pillow raises whatever its parser met
                    orientation = 1
    except Image.DecompressionBombError:
        raise ClassmoodError(f"{path}: image too large (its header claims over {MAX_IMAGE_PIXELS:,} pixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    orientation = orientation if 1 <= orientation <= 8 else 1
    return ((height, width) if orientation >= 5 else (width, height)), orientation


EXIF_ORIENTATION = 0x0112  # the EXIF tag saying how the stored pixels are turned relative to the scene


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels turned upright per EXIF orientation (1 = as stored, 6 = rotate 90 degrees clockwise, ...).

    Phones store a portrait photo sideways and set orientation 6 or 8; a face detector shown the
    stored pixels sees faces lying on their side and finds none. OpenCV applies the tag only when
    it also reduces the image to 8-bit BGR, so classmood reads unchanged and turns here.
    """
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:  # transpose
        return np.swapaxes(image, 0, 1)
    if orientation == 6:  # rotate 90 clockwise
        return np.swapaxes(image, 0, 1)[:, ::-1]
    if orientation == 7:  # transverse
        return np.swapaxes(image, 0, 1)[::-1, ::-1]
    if orientation == 8:  # rotate 90 counter-clockwise
        return np.swapaxes(image, 0, 1)[::-1]
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to upright 8-bit BGR, or raise a ClassmoodError that names the file.

    The size is read from the header first: a file that claims more than ``MAX_IMAGE_PIXELS`` is
    refused before a byte of it is decoded (a decompression bomb would otherwise take gigabytes).
    Only regular files are read (a FIFO would block forever); EXIF orientation is applied.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError:
        raise ClassmoodError(f"{path}: no such file") from None
    if not stat.S_ISREG(info.st_mode):
        raise ClassmoodError(f"{path}: not a regular file")
    try:
        if info.st_size == 0:
            raise ClassmoodError(f"{path}: empty file")
        header = _header(path)
        if header is not None and header[0][0] * header[0][1] > MAX_IMAGE_PIXELS:
            width, height = header[0]
            raise ClassmoodError(f"{path}: image too large ({width}x{height} pixels; at most {MAX_IMAGE_PIXELS:,})")
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
    image = apply_orientation(image, header[1] if header is not None else 1)
    return to_bgr8(np.ascontiguousarray(image))
