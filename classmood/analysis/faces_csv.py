"""faces.csv, the analyst's per-face output: one row per analysed face, written from ``Detections``.

``face_rows`` is also what the session store saves per frame, so the file and the database hold the
same rows. The file is flushed after every frame.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType
from typing import Any

from classmood.containers import Detections, Frame
from classmood.labels import EMOTIONS, FACE_COLUMNS


def face_rows(frame: Frame, dets: Detections) -> list[dict[str, Any]]:
    """The faces of one analysed frame as faces.csv rows (``FACE_COLUMNS``)."""
    rows = []
    for box, score, tid, probs, word in zip(
        dets.xyxy, dets.score, dets.track_id, dets.probs, dets.expressions(), strict=True
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
        rows.append(row)
    return rows


class FacesCsv:
    """A faces.csv sink: ``with FacesCsv(path) as sink: sink.write_rows(face_rows(frame, detections))``."""

    def __init__(self, path: str | Path) -> None:
        self._fh = open(path, "w", newline="")  # noqa: SIM115 - closed by close() / the with block
        self._writer = csv.DictWriter(self._fh, fieldnames=FACE_COLUMNS)
        self._writer.writeheader()

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        self._writer.writerows(rows)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> FacesCsv:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
