"""Reader for image folders: ``<root>/<split>/<class>/*`` or ``<root>/<class>/*`` (split ``all``).

Any image OpenCV decodes (grey, colour, alpha, 16-bit; any size) is treated as a face crop and
turned into a 48x48 grey face. Class folders are matched by name, case-insensitively, with
common synonyms; folders of other classes (e.g. contempt) are skipped with a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

from classmood.data.dataset import FACE_SIZE, FaceSet
from classmood.errors import DataError
from classmood.imageio import to_bgr8
from classmood.labels import class_index

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"}


def to_grey_face(image: np.ndarray) -> np.ndarray:
    """Any decoded image (grey/BGR/BGRA, 8- or 16-bit) -> 48x48 uint8 grey."""
    grey = cv2.cvtColor(to_bgr8(image), cv2.COLOR_BGR2GRAY)
    interp = cv2.INTER_AREA if min(grey.shape[:2]) > FACE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(grey, (FACE_SIZE, FACE_SIZE), interpolation=interp)


def _class_dirs(folder: Path) -> list[tuple[Path, int | None]]:
    return [(d, class_index(d.name)) for d in sorted(folder.iterdir()) if d.is_dir()]


def _read_split(folder: Path, split: str) -> FaceSet | None:
    images: list[np.ndarray] = []
    labels: list[int] = []
    unreadable = 0
    for class_dir, label in _class_dirs(folder):
        files = [f for f in sorted(class_dir.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
        if label is None:
            if files:
                warnings.warn(
                    f"skipping {len(files)} images in {class_dir}: '{class_dir.name}' is not one of the 7 classes",
                    stacklevel=2,
                )
            continue
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            if img is None or img.size == 0:
                unreadable += 1
                continue
            images.append(to_grey_face(img))
            labels.append(label)
    if unreadable:
        warnings.warn(f"skipping {unreadable} unreadable image files under {folder}", stacklevel=2)
    if not images:
        return None
    return FaceSet(np.stack(images), np.array(labels, dtype=np.int64), split, str(folder))


def read_image_folders(root: str | Path) -> dict[str, FaceSet]:
    """Read ``root`` as class folders (split ``all``) or as split folders holding class folders."""
    root = Path(root)
    subdirs = _class_dirs(root)
    if not subdirs:
        raise DataError(f"{root}: no class or split folders inside (expected <root>/<class>/*.jpg)")
    out: dict[str, FaceSet] = {}
    if any(label is not None for _, label in subdirs):
        faces = _read_split(root, "all")
        if faces is not None:
            out["all"] = faces
    else:
        for split_dir, _ in subdirs:
            faces = _read_split(split_dir, split_dir.name)
            if faces is not None:
                out[split_dir.name] = faces
    if not out:
        raise DataError(f"{root}: no readable images in folders named after the 7 classes")
    return out
