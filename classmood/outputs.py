"""``classmood analyze``: run the pipeline over an input and write faces.csv, class_mood.csv, summary.json.

faces.csv is written and flushed as frames are analysed, so an interrupted or failing run keeps
everything analysed so far; class_mood.csv and summary.json are rewritten at the end (also after
an interruption). No face image, crop or embedding is written.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from tqdm import tqdm

from classmood.pipeline import FACE_COLUMNS, AnalysisResult, Analyzer, PipelineConfig, summarize
from classmood.vision.sources import open_source


def _write_mood(path: Path, rows: list[dict[str, object]]) -> None:
    with open(path, "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def analyze(
    source: str | Path, out: str | Path | None = None, config: PipelineConfig | None = None, progress: bool = False
) -> AnalysisResult:
    """Analyse a whole input; with ``out``, write the three output files there as it goes."""
    config = config or PipelineConfig()
    src = open_source(source)
    analyzer = Analyzer(config)
    result = AnalysisResult(src.name)
    out_dir = Path(out) if out else None
    faces_fh = writer = None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        faces_fh = open(out_dir / "faces.csv", "w", newline="")  # noqa: SIM115 - closed in finally
        writer = csv.DictWriter(faces_fh, fieldnames=FACE_COLUMNS)
        writer.writeheader()
    frames = analysed = 0
    started = time.perf_counter()
    bar = tqdm(total=src.frame_count, unit="frame", disable=not progress, desc="analysing")
    try:
        for frame in src:
            frames += 1
            bar.update(1)
            if not analyzer.due(frame.time_s):
                continue
            update = analyzer.process(frame)
            analysed += 1
            rows = update.face_rows()
            result.faces.extend(rows)
            result.bins.extend(update.bins)
            if writer is not None and faces_fh is not None:
                writer.writerows(rows)
                faces_fh.flush()
    finally:
        bar.close()
        result.bins.extend(analyzer.finish())
        result.summary = summarize(src, config, frames, analysed, result.faces, time.perf_counter() - started)
        if faces_fh is not None:
            faces_fh.close()
        if out_dir:
            _write_mood(out_dir / "class_mood.csv", result.mood_rows())
            (out_dir / "summary.json").write_text(json.dumps(result.summary, indent=2))
    return result
