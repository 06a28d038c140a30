"""Reading an ``AnalysisResult`` back from a folder ``classmood analyze`` wrote (to rebuild its report)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from classmood.analytics.face_rows import FaceRows
from classmood.analytics.privacy import DEFAULT_MIN_FACES
from classmood.containers import MoodBin
from classmood.errors import ClassmoodError
from classmood.labels import FACE_COLUMNS, WORD_COLUMNS
from classmood.pipeline import AnalysisResult


def _number(text: str | None, kind: type = float) -> Any:
    return None if text in (None, "") else kind(text)


def _face_row(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in FACE_COLUMNS:
        v = row.get(col, "")
        out[col] = v if col in WORD_COLUMNS else _number(v, int if col in ("frame", "track_id") else float)
    return out


def load_result(out_dir: str | Path) -> AnalysisResult:
    """Read an ``AnalysisResult`` back from a folder written by ``classmood analyze``."""
    out_dir = Path(out_dir)
    faces_csv = out_dir / "faces.csv"
    if not faces_csv.is_file():
        raise ClassmoodError(f"{out_dir}: no faces.csv here (not a 'classmood analyze' output folder?)")
    summary_json = out_dir / "summary.json"
    summary: dict[str, Any] = json.loads(summary_json.read_text()) if summary_json.is_file() else {}
    with open(faces_csv, newline="", encoding="utf-8") as fh:
        faces = [_face_row(r) for r in csv.DictReader(fh)]
    bins: list[MoodBin] = []
    mood_csv = out_dir / "class_mood.csv"
    if mood_csv.is_file():
        with open(mood_csv, newline="", encoding="utf-8") as fh:
            bins = [MoodBin.from_row(r) for r in csv.DictReader(fh)]
    k = (summary.get("class") or {}).get("min_faces", DEFAULT_MIN_FACES)
    return AnalysisResult(str(summary.get("input", out_dir)), FaceRows(faces), bins, summary, min_faces=int(k))
