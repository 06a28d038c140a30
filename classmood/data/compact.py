"""Reader for the compact copy: ``fer2013_<split>.npy.xz`` arrays plus ``fer2013_labels.csv``.

The arrays hold the same rows as the CSV in the same order; the labels CSV (``emotion,Usage``)
lists all splits one after another, aligned with the arrays.
"""

from __future__ import annotations

import csv
import lzma
from pathlib import Path

import numpy as np

from classmood.data.dataset import FACE_SIZE, FaceSet
from classmood.errors import DataError
from classmood.labels import NUM_CLASSES

LABELS_FILE = "fer2013_labels.csv"


def is_compact_dir(path: Path) -> bool:
    return path.is_dir() and (path / LABELS_FILE).is_file() and any(path.glob("fer2013_*.npy.xz"))


def array_path_for(root: Path, split: str) -> Path:
    """Where the compact array of ``split`` lives (file names are lower-case split names)."""
    return root / f"fer2013_{split.lower()}.npy.xz"


def read_compact(root: str | Path, splits: list[str] | None = None) -> dict[str, FaceSet]:
    """Load the requested splits (default: every split that has an array file)."""
    root = Path(root)
    labels_path = root / LABELS_FILE
    per_split: dict[str, list[int]] = {}
    try:
        with open(labels_path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or {"emotion", "Usage"} - set(reader.fieldnames):
                raise DataError(f"{labels_path}: expected header emotion,Usage")
            for row in reader:
                label = (row.get("emotion") or "").strip()
                if not label.isdigit() or int(label) >= NUM_CLASSES:
                    raise DataError(f"{labels_path}, row {reader.line_num}: emotion label {label!r} is not one of 0..6")
                per_split.setdefault((row.get("Usage") or "").strip(), []).append(int(label))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{labels_path}: cannot be read ({exc})") from None
    wanted = splits or list(per_split)
    out: dict[str, FaceSet] = {}
    for split in wanted:
        array_path = array_path_for(root, split)
        if split not in per_split or not array_path.is_file():
            continue
        try:
            with lzma.open(array_path) as fh:
                images = np.load(fh)
        except (lzma.LZMAError, ValueError, EOFError, OSError) as exc:
            raise DataError(f"{array_path}: cannot be read as an xz-compressed .npy array ({exc})") from None
        if images.dtype != np.uint8 or images.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise DataError(f"{array_path}: expected a (N, 48, 48) uint8 array, found {images.shape} {images.dtype}")
        if len(images) != len(per_split[split]):
            raise DataError(f"{array_path}: {len(images)} images but {len(per_split[split])} {split} labels")
        out[split] = FaceSet(images, np.array(per_split[split], dtype=np.int64), split, str(array_path))
    return out
