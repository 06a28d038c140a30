"""Reader for the Kaggle ``fer2013.csv`` format: header ``emotion,pixels,Usage``, plain or gzipped."""

from __future__ import annotations

import csv
import gzip
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from classmood.data.dataset import FACE_SIZE, FaceSet
from classmood.errors import DataError
from classmood.labels import NUM_CLASSES

REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")
_PIXELS = FACE_SIZE * FACE_SIZE


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) pairs, turning decoding and CSV-structure problems into DataError."""
    try:
        with _open_text(path) as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DataError(
                    f"{path}: not a FER2013 CSV: missing column(s) {', '.join(missing)} "
                    f"(expected header emotion,pixels,Usage, found {','.join(header)[:80] or 'nothing'})"
                )
            for row in reader:
                yield reader.line_num, row
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error, OSError) as exc:
        raise DataError(f"{path}: cannot be read as a FER2013 CSV ({type(exc).__name__}: {exc})") from None


def parse_pixels(text: str, path: Path, line: int) -> np.ndarray:
    """2304 space-separated integers 0..255 -> (48, 48) uint8, or a DataError naming file and row."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # older NumPy warns (newer raises) when parsing stops early
            arr = np.fromstring(text, dtype=np.int32, sep=" ")  # type: ignore[call-overload]  # fast text parse
    except ValueError:
        arr = np.zeros(0, np.int32)
    tokens = None if arr.size == _PIXELS else text.split()
    if tokens is not None:
        bad = next((t for t in tokens if not t.isdigit()), None)
        if bad is not None:
            raise DataError(f"{path}, row {line}: pixel value {bad!r} is not an integer 0..255")
        raise DataError(f"{path}, row {line}: expected {_PIXELS} pixel values (48x48), found {len(tokens)}")
    if arr.min() < 0 or arr.max() > 255:
        raise DataError(f"{path}, row {line}: pixel values must be 0..255, found {arr.min()}..{arr.max()}")
    return arr.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE)


def read_fer_csv(path: str | Path) -> dict[str, FaceSet]:
    """Read every row of a FER2013 CSV and group it by ``Usage`` (Training, PublicTest, PrivateTest)."""
    path = Path(path)
    images: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[int]] = {}
    for line, row in _rows(path):
        if None in row or any(row.get(c) is None for c in REQUIRED_COLUMNS):
            raise DataError(f"{path}, row {line}: expected 3 columns (emotion,pixels,Usage)")
        emotion = row["emotion"].strip()
        if not emotion.isdigit() or int(emotion) >= NUM_CLASSES:
            raise DataError(f"{path}, row {line}: emotion label {emotion!r} is not one of 0..6")
        usage = row["Usage"].strip()
        if not usage:
            raise DataError(f"{path}, row {line}: empty Usage (expected Training, PublicTest or PrivateTest)")
        images.setdefault(usage, []).append(parse_pixels(row["pixels"], path, line))
        labels.setdefault(usage, []).append(int(emotion))
    if not images:
        raise DataError(f"{path}: no data rows")
    return {
        split: FaceSet(np.stack(images[split]), np.array(labels[split], dtype=np.int64), split, str(path))
        for split in images
    }
