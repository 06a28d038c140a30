"""FER+ (Barsoum et al. 2016): ten crowd annotators' votes for every FER2013 image, as targets and labels.

FER2013's own labels agree with the FER+ majority on only ~63 % of images, and half the faces
people call neutral carry another FER2013 label. The votes give two things the labels cannot:

- a **label distribution** per face (``soft_targets``): what share of people saw each expression;
- **unreadable** faces (``unreadable_share``): votes for ``unknown`` (annotators could not tell)
  and ``NF`` (not a face).

``ferplus_votes.csv`` (in the dataset folder, aligned row by row with ``fer2013_labels.csv``, the
compact arrays and ``fer2013.csv.gz``) holds ``Usage,row,ferplus_image`` and ten vote columns;
rows FER+ could not be matched to have empty vote columns and come back as NaN.

**Contempt** has no FER2013 class. Its votes are dropped (the other votes renormalised) by default,
not folded into one class: FER2013 labelled the 178 contempt-majority images angry 37 %, disgust
20 %, sad 15 %, fear 14 %, neutral 11 % (measured on Training + PublicTest), so no single class is
its home. ``contempt="disgust"`` (or any class word) folds the votes into that class instead.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from classmood.errors import DataError
from classmood.labels import EMOTIONS, NUM_CLASSES

VOTES_FILE = "ferplus_votes.csv"
# The vote columns in the file's order.
VOTE_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
# Our class order (EMOTIONS) -> the FER+ column that holds its votes.
_FERPLUS_NAME = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
CLASS_COLUMNS = [VOTE_COLUMNS.index(_FERPLUS_NAME[e]) for e in EMOTIONS]
CONTEMPT, UNKNOWN, NOT_FACE = (VOTE_COLUMNS.index(c) for c in ("contempt", "unknown", "NF"))
NO_LABEL = -1  # majority_labels for faces without a single 7-class majority


def votes_path(root: str | Path) -> Path:
    return Path(root) / VOTES_FILE


def read_votes(root: str | Path) -> dict[str, np.ndarray]:
    """Votes per split: {split: (N, 10) float32 in file order}, NaN rows where FER+ has none."""
    path = votes_path(root)
    per_split: dict[str, list[list[float]]] = {}
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"Usage", *VOTE_COLUMNS} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"{path}: missing columns {', '.join(sorted(missing))}")
            for row in reader:
                cells = [(row.get(c) or "").strip() for c in VOTE_COLUMNS]
                try:
                    votes = [float(c) if c else float("nan") for c in cells]
                except ValueError:
                    raise DataError(f"{path}, row {reader.line_num}: votes must be numbers") from None
                per_split.setdefault((row.get("Usage") or "").strip(), []).append(votes)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    return {split: np.asarray(rows, np.float32).reshape(-1, len(VOTE_COLUMNS)) for split, rows in per_split.items()}


def has_votes(votes: np.ndarray) -> np.ndarray:
    """(N,) bool: the face has FER+ votes (a matched row)."""
    return ~np.isnan(votes).any(axis=1) & (np.nan_to_num(votes).sum(axis=1) > 0)


def not_a_face(votes: np.ndarray) -> np.ndarray:
    """(N,) bool: most annotators said this is not a face (``NF`` is the single largest vote)."""
    v = np.nan_to_num(votes, nan=-1.0)
    return has_votes(votes) & (v.argmax(axis=1) == NOT_FACE) & ((v == v.max(axis=1, keepdims=True)).sum(axis=1) == 1)


def unreadable_share(votes: np.ndarray) -> np.ndarray:
    """(N,) share of votes for ``unknown`` or ``NF``: how often people could not read the face (NaN without votes)."""
    v = np.asarray(votes, np.float64)
    total = v.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (v[:, UNKNOWN] + v[:, NOT_FACE]) / total
    share[~has_votes(votes)] = np.nan
    return share.astype(np.float32)


def soft_targets(votes: np.ndarray, contempt: str = "drop") -> np.ndarray:
    """(N, 7) vote distributions over our classes, EMOTIONS order; rows of zeros where no 7-class vote exists.

    ``unknown`` and ``NF`` votes are left out (they say nothing about which expression); ``contempt``
    is dropped or folded into the named class (see the module docstring).
    """
    v = np.nan_to_num(np.asarray(votes, np.float64))
    t = v[:, CLASS_COLUMNS]
    if contempt != "drop":
        if contempt not in EMOTIONS:
            raise ValueError(f"contempt must be 'drop' or a class word ({', '.join(EMOTIONS)}), not {contempt!r}")
        t[:, EMOTIONS.index(contempt)] += v[:, CONTEMPT]
    total = t.sum(axis=1, keepdims=True)
    return np.divide(t, total, out=np.zeros_like(t), where=total > 0).astype(np.float32)


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """(N,) the FER+ majority label in EMOTIONS order, or ``NO_LABEL``.

    The evaluation convention of this project (and of the issue that measured 3,162 PublicTest
    faces): the single largest of all ten vote columns; a tie, or a majority for contempt,
    unknown or not-a-face, gives no label.
    """
    v = np.nan_to_num(np.asarray(votes, np.float64), nan=-1.0)
    top = v.argmax(axis=1)
    unique = (v == v.max(axis=1, keepdims=True)).sum(axis=1) == 1
    to_class = np.full(len(VOTE_COLUMNS), NO_LABEL, np.int64)
    for label, column in enumerate(CLASS_COLUMNS):
        to_class[column] = label
    out = to_class[top]
    out[~unique | ~has_votes(votes)] = NO_LABEL
    return out


__all__ = [
    "NUM_CLASSES",
    "VOTES_FILE",
    "VOTE_COLUMNS",
    "has_votes",
    "majority_labels",
    "not_a_face",
    "read_votes",
    "soft_targets",
    "unreadable_share",
]
