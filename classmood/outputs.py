"""``classmood analyze``: run the pipeline over an input and write faces.csv, class_mood.csv, summary.json.

faces.csv is written and flushed as frames are analysed, so an interrupted or failing run keeps
everything analysed so far; class_mood.csv and summary.json are rewritten at the end (also after
an interruption). No face image, crop or embedding is written, unless the user asks for
``annotate``: then video inputs (file, webcam, screen) also get annotated.mp4 (every input frame,
with the latest analysed faces drawn on it) and every input gets report.html (charts, no images
of faces).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from classmood.errors import ClassmoodError
from classmood.labels import FACE_COLUMNS
from classmood.pipeline import AnalysisResult, Analyzer, PipelineConfig, Update, summarize
from classmood.vision.annotate import AnnotatedVideoWriter
from classmood.vision.detections import Detections
from classmood.vision.sources import FrameSource, open_source


def _write_mood(path: Path, rows: list[dict[str, object]]) -> None:
    with open(path, "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


VIDEO_KINDS = ("video", "webcam", "screen")  # inputs that get an annotated.mp4 with ``annotate``


def analyze(
    source: str | Path | FrameSource,
    out: str | Path | None = None,
    config: PipelineConfig | None = None,
    progress: bool = False,
    annotate: bool = False,
    on_update: Callable[[Update, float | None], None] | None = None,
) -> AnalysisResult:
    """Analyse a whole input; with ``out``, write the three output files there as it goes.

    ``annotate`` (needs ``out``) also writes annotated.mp4 for video inputs and report.html.
    ``on_update(update, done)`` is called after each analysed frame with the share of the input
    read so far (None when the length is unknown); an exception it raises stops the analysis,
    and the outputs keep everything analysed until then (the web app saves sessions this way).
    """
    config = config or PipelineConfig()
    if annotate and not out:
        raise ClassmoodError("annotating needs an output folder")
    src = source if isinstance(source, FrameSource) else open_source(source)
    analyzer = Analyzer(config)
    result = AnalysisResult(src.name)
    out_dir = Path(out) if out else None
    faces_fh = writer = None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        faces_fh = open(out_dir / "faces.csv", "w", newline="")  # noqa: SIM115 - closed in finally
        writer = csv.DictWriter(faces_fh, fieldnames=FACE_COLUMNS)
        writer.writeheader()
    video = None
    if annotate and out_dir and src.kind in VIDEO_KINDS:
        video = AnnotatedVideoWriter(out_dir / "annotated.mp4", src.fps)
    shown = Detections.empty()  # the latest analysed faces, drawn on the frames until the next analysis
    frames = analysed = 0
    started = time.perf_counter()
    bar = tqdm(total=src.frame_count, unit="frame", disable=not progress, desc="analysing")
    try:
        # Without a video to write, frames between analyses are skipped undecoded.
        for frame in src.frames(None if video is not None else analyzer.due):
            bar.update(src.frames_read - frames)
            frames = src.frames_read
            if not analyzer.due(frame.time_s):
                if video is not None:
                    video.write(frame.image, shown)
                continue
            update = analyzer.process(frame)
            shown = update.detections
            if video is not None:
                video.write(frame.image, shown)
            analysed += 1
            rows = update.face_rows()
            result.faces.extend(rows)
            result.bins.extend(update.bins)
            if writer is not None and faces_fh is not None:
                writer.writerows(rows)
                faces_fh.flush()
            if on_update is not None:
                on_update(update, src.frames_read / src.frame_count if src.frame_count else None)
    finally:
        bar.update(src.frames_read - frames)  # frames skipped after the last analysed one
        frames = src.frames_read
        bar.close()
        if video is not None:
            video.close()
        result.bins.extend(analyzer.finish())
        result.summary = summarize(src, config, frames, analysed, result.faces, time.perf_counter() - started)
        if faces_fh is not None:
            faces_fh.close()
        if out_dir:
            _write_mood(out_dir / "class_mood.csv", result.mood_rows())
            (out_dir / "summary.json").write_text(json.dumps(result.summary, indent=2))
            if annotate:
                from classmood.report_html import write_report

                write_report(result, out_dir / "report.html")
    return result
