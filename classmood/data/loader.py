"""One entry point for every dataset form: ``load_splits(path)``.

``path`` may be a Kaggle-format CSV (plain or .gz), a folder holding ``fer2013.csv[.gz]`` or the
compact ``.npy.xz`` arrays with ``fer2013_labels.csv``, or an image-folder tree.
"""

from __future__ import annotations

from pathlib import Path

from classmood.data.compact import array_path_for, is_compact_dir, read_compact
from classmood.data.dataset import FaceSet
from classmood.data.fer_csv import read_fer_csv
from classmood.data.ferplus import read_votes, votes_path
from classmood.data.folders import read_image_folders
from classmood.errors import DataError

CSV_NAMES = ("fer2013.csv", "fer2013.csv.gz")
COMPACT_SPLITS = ["Training", "PublicTest", "PrivateTest"]


def load_splits(path: str | Path, splits: list[str] | None = None) -> dict[str, FaceSet]:
    """Load a dataset and return its splits by name; ``splits`` (case-insensitive) filters them."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    csv_file = next((path / n for n in CSV_NAMES if (path / n).is_file()), None)
    # The compact arrays load fastest, but a CSV beside them may hold splits they lack: use them
    # for every split when there is no CSV, else only when each requested split has its array.
    compact = is_compact_dir(path) and (
        all(array_path_for(path, s).is_file() for s in splits) if splits else csv_file is None
    )
    if path.is_file():
        found = read_fer_csv(path)
    elif compact:
        found = read_compact(path, [_canonical(s, COMPACT_SPLITS) for s in splits] if splits else None)
    elif csv_file is not None:
        found = read_fer_csv(csv_file)
    else:
        found = read_image_folders(path)
    if path.is_dir():
        found = _with_ferplus_votes(path, found)
    if not splits:
        return found
    out = {}
    for s in splits:
        name = _canonical(s, list(found))
        if name not in found:
            raise DataError(f"{path}: no split {s!r}; available: {', '.join(sorted(found))}")
        out[name] = found[name]
    return out


def _with_ferplus_votes(root: Path, sets: dict[str, FaceSet]) -> dict[str, FaceSet]:
    """Each split with FER+'s votes when ``root`` holds ``ferplus_votes.csv`` with as many rows for it.

    The votes file is aligned row by row with the compact arrays and the CSV of the same folder;
    a split whose row count differs (another export) is left without votes rather than misaligned.
    """
    if not votes_path(root).is_file():
        return sets
    votes = read_votes(root)
    return {
        name: faces.with_votes(votes[name]) if name in votes and len(votes[name]) == len(faces) else faces
        for name, faces in sets.items()
    }


def _canonical(split: str, names: list[str]) -> str:
    """Match a split name case-insensitively against the names present."""
    return next((n for n in names if n.lower() == split.lower()), split)


def load_split(path: str | Path, split: str) -> FaceSet:
    """Load exactly one split."""
    return next(iter(load_splits(path, [split]).values()))
