"""The per-face rows of an analysis, kept compactly in memory (columns of NumPy arrays, not dicts).

An hour of a 25-face class analysed at 2 Hz is 180,000 rows. As Python dicts they took about
1.3 KB each (over 200 MB, growing with every frame); as columns they take 8 bytes a value (~23 MB).
``face_rows`` makes one analysed frame's rows from its ``Detections``. ``FaceRows`` behaves like the list
of faces.csv-shaped dicts it replaces: ``len``, iteration and
indexing give the same dicts, ``to_pandas`` gives the DataFrame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from classmood.containers import Detections, Frame
from classmood.labels import EMOTIONS, FACE_COLUMNS, WORD_COLUMNS
from classmood.vision.pose import FACING_WORDS, UNCLEAR, facing

_INT = ("frame", "track_id")
_WORDS: tuple[str, ...] = (*EMOTIONS, "uncertain")
_FLOAT = tuple(c for c in FACE_COLUMNS if c not in (*_INT, *WORD_COLUMNS))


def face_rows(frame: Frame, dets: Detections) -> list[dict[str, Any]]:
    """The faces of one analysed frame as faces.csv rows (``FACE_COLUMNS``)."""
    rows = []
    turned = facing(dets.pose)
    for box, score, tid, probs, word, pose, facing_word in zip(
        dets.xyxy, dets.score, dets.track_id, dets.probs, dets.expressions(), dets.pose, turned, strict=True
    ):
        x1, y1, x2, y2 = (float(v) for v in box)
        row: dict[str, Any] = {
            "frame": frame.index,
            "time_s": round(frame.time_s, 3),
            "track_id": int(tid),
            "x": round(x1, 1),
            "y": round(y1, 1),
            "w": round(x2 - x1, 1),
            "h": round(y2 - y1, 1),
            "det_score": round(float(score), 4),
            "emotion": word,
        }
        row.update({f"p_{e}": round(float(p), 4) for e, p in zip(EMOTIONS, probs, strict=True)})
        # no pose (no landmarks): empty cells, as for any number not measured
        row.update(
            {
                a: round(float(v), 1) if np.isfinite(v) else None
                for a, v in zip(("yaw", "pitch", "roll"), pose, strict=True)
            }
        )
        row["facing"] = str(facing_word)
        rows.append(row)
    return rows


class FaceRows:
    """Append-only faces.csv rows: ints, floats and the expression and facing words stored column-wise."""

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self._n = 0
        self._ints = np.zeros((0, len(_INT)), np.int64)
        self._floats = np.zeros((0, len(_FLOAT)), np.float64)
        self._words = np.zeros(0, np.int8)
        self._facing = np.zeros(0, np.int8)
        self.extend(rows)

    def _grow(self, need: int) -> None:
        cap = len(self._words)
        if need <= cap:
            return
        new = max(need, 2 * cap, 1024)
        self._ints = np.resize(self._ints, (new, len(_INT)))
        self._floats = np.resize(self._floats, (new, len(_FLOAT)))
        self._words = np.resize(self._words, new)
        self._facing = np.resize(self._facing, new)

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        self._grow(self._n + len(rows))
        for i, row in enumerate(rows, start=self._n):
            self._ints[i] = [row[c] for c in _INT]
            self._floats[i] = [np.nan if row.get(c) is None else row[c] for c in _FLOAT]  # absent = NaN
            self._words[i] = _WORDS.index(row["emotion"])
            self._facing[i] = FACING_WORDS.index(row.get("facing") or UNCLEAR)  # rows from before: unclear
        self._n += len(rows)

    def append(self, row: Mapping[str, Any]) -> None:
        self.extend([row])

    def __len__(self) -> int:
        return self._n

    def _row(self, i: int) -> dict[str, Any]:
        out: dict[str, Any] = dict(zip(_INT, (int(v) for v in self._ints[i]), strict=True))
        out.update(zip(_FLOAT, (float(v) for v in self._floats[i]), strict=True))
        out["emotion"] = _WORDS[self._words[i]]
        out["facing"] = FACING_WORDS[self._facing[i]]
        return {c: out[c] for c in FACE_COLUMNS}

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -self._n <= i < self._n:
            raise IndexError("face row index out of range")
        return self._row(i % self._n)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._row(i) for i in range(self._n))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FaceRows | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def column(self, name: str) -> np.ndarray:
        """One column as an array (the expression and the facing as words)."""
        if name in _INT:
            return self._ints[: self._n, _INT.index(name)].copy()
        if name == "emotion":
            return np.array(_WORDS, dtype=object)[self._words[: self._n]]
        if name == "facing":
            return np.array(FACING_WORDS, dtype=object)[self._facing[: self._n]]
        return self._floats[: self._n, _FLOAT.index(name)].copy()

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame({c: self.column(c) for c in FACE_COLUMNS}, columns=FACE_COLUMNS)

    @property
    def nbytes(self) -> int:
        return self._ints.nbytes + self._floats.nbytes + self._words.nbytes + self._facing.nbytes
