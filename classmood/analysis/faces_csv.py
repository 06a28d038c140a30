"""faces.csv, the analyst's per-face output: one row per analysed face (``analytics.face_rows.face_rows``).

Those rows are also what the session store saves per frame, so the file and the database hold the
same rows. The file is flushed after every frame.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType
from typing import Any

from classmood.labels import FACE_COLUMNS


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
