"""``classmood analyze``: run the pipeline over an input and write faces.csv, class_mood.csv, summary.json.

faces.csv is written and flushed as frames are analysed, so an interrupted or failing run keeps
everything analysed so far; class_mood.csv and summary.json are rewritten at the end (also after
an interruption). No face image, crop or embedding is written, unless the user asks for
``annotate``: then video inputs (file, webcam, screen) also get annotated.mp4 (every input frame,
with the latest analysed faces drawn on it) and every input gets report.html (charts, no images
of faces).

The work folder (``.classmood-run-*`` in the output folder) is stamped with the process writing it;
any later run into the same folder removes the work folders of runs that were killed
(``remove_stale_work``), so per-face rows never stay behind in a hidden folder.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from tqdm import tqdm

from classmood.analysis.faces_csv import FacesCsv
from classmood.containers import Detections, Frame
from classmood.errors import ClassmoodError, Stopped, is_failure
from classmood.expression.model import ExpressionModel
from classmood.pipeline import AnalysisResult, Analyzer, PipelineConfig, Update, summarize
from classmood.vision.annotate import AnnotatedVideoWriter, HeldBoxes
from classmood.vision.detectors import FaceDetector
from classmood.vision.frame_source import FrameSource
from classmood.vision.sources import open_source


def _write_mood(path: Path, rows: list[dict[str, object]]) -> None:
    with open(path, "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


VIDEO_KINDS = ("video", "webcam", "screen")  # inputs that get an annotated.mp4 with ``annotate``
# Every file a run may write, in the order a user is shown them (the app lists downloads in this order).
OUTPUT_FILES = ("faces.csv", "class_mood.csv", "summary.json", "report.html", "annotated.mp4")
WORK_PREFIX, PROBE_PREFIX = ".classmood-run-", ".classmood-probe-"
OWNER_FILE = ".owner"  # in a work folder: the liveness stamp (host:pid:start) of the run writing it
STALE_WORK_S = 3600.0  # a work folder whose writer cannot be looked up is stale after this long unwritten


def _newest_write(folder: Path) -> float:
    """The latest modification time of ``folder`` and the files in it (a run appends to faces.csv)."""
    times = [folder.lstat().st_mtime]
    with suppress(OSError):
        times += [p.lstat().st_mtime for p in folder.iterdir()]
    return max(times)


def remove_stale_work(out_dir: Path) -> list[Path]:
    """Remove what runs killed before they could clean up (kill -9, OOM, a power cut) left in ``out_dir``.

    A work folder holds per-face rows, so it must not stay forever. It goes when its stamp names a
    process of this host that has ended (same pid and start id: a reused pid, or the pid 1 of an
    earlier container, is not it), or - when that cannot be told (a run on another host sharing the
    folder, a folder from an older version without a stamp) - when nothing in it was written for
    ``STALE_WORK_S``; so do probe files of the same age. Only plain folders and files with our
    prefixes directly in ``out_dir`` are touched; symlinks are never followed. Returns what was removed.
    """
    from classmood.store import liveness

    removed: list[Path] = []
    try:
        entries = list(os.scandir(out_dir))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.name.startswith(WORK_PREFIX) and entry.is_dir(follow_symlinks=False):
                try:
                    stamp = liveness.parse((path / OWNER_FILE).read_text().strip())
                except OSError:
                    stamp = None
                alive = stamp.alive() if stamp is not None else None
                if alive is False or (alive is None and now - _newest_write(path) > STALE_WORK_S):
                    shutil.rmtree(path)
                    removed.append(path)
            elif (
                entry.name.startswith(PROBE_PREFIX)
                and entry.is_file(follow_symlinks=False)
                and now - entry.stat(follow_symlinks=False).st_mtime > STALE_WORK_S
            ):
                path.unlink()
                removed.append(path)
        except OSError:
            continue  # gone meanwhile, or not ours to remove: the run goes on
    return removed


def _work_folder(out_dir: Path) -> Path:
    """A new hidden work folder in ``out_dir``, stamped with this process, after removing stale ones."""
    from classmood.store import liveness

    remove_stale_work(out_dir)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=out_dir))
    (work / OWNER_FILE).write_text(str(liveness.stamp()))
    return work


def prepare_out(out: str | Path) -> Path:
    """The output folder, created if needed, or a one-line error (a file there, no permission, read-only)."""
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ClassmoodError(f"{out_dir}: exists and is not a folder; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out_dir, prefix=PROBE_PREFIX)  # noqa: SIM115
        probe.close()
    except OSError as exc:
        raise ClassmoodError(f"{out_dir}: cannot write here ({exc.strerror or exc})") from None
    for name in OUTPUT_FILES:  # refused now, not after the whole analysis when the files are moved in
        if (out_dir / name).is_dir() and not (out_dir / name).is_symlink():
            raise ClassmoodError(f"{out_dir / name}: a folder where an output file goes; move it or use another --out")
    return out_dir


def _publish(work: Path, out_dir: Path) -> None:
    """Move a finished run's files from its work folder into ``out_dir``, each with an atomic rename.

    Files of a previous run that this run did not write (an old report.html after a run without
    --annotate) are removed, so the folder always holds one run's outputs.
    """
    for name in OUTPUT_FILES:
        if not (work / name).exists():
            (out_dir / name).unlink(missing_ok=True)
    for name in OUTPUT_FILES:
        if (work / name).exists():
            os.replace(work / name, out_dir / name)


class _NoOutputs:
    """A run without an output folder: nothing written, the same calls as ``_RunOutputs``."""

    every_frame = False  # nothing needs the frames between analyses: they are skipped undecoded

    def skipped(self, frame: Frame) -> None:
        """A frame between two analyses."""

    def write(self, frame: Frame, update: Update, rows: list[dict[str, Any]]) -> None:
        """An analysed frame, its update and its face rows."""

    def end(self) -> None:
        """No more frames."""

    def close(self, keep: bool, result: AnalysisResult) -> None:
        """The run is over: ``keep`` (it completed or was stopped on purpose) publishes the outputs."""


class _RunOutputs(_NoOutputs):
    """A run's files while it runs: a hidden work folder in ``out_dir`` (stamped with this process)
    holding faces.csv, appended per analysed frame, and with ``annotate`` for a video annotated.mp4,
    every frame. ``close(keep=True)`` adds class_mood.csv, summary.json (and report.html) and moves
    them all into ``out_dir``, each with an atomic rename; in every case the work folder goes."""

    def __init__(self, out_dir: Path, src: FrameSource, annotate: bool, per_track: bool) -> None:
        self.out_dir, self.annotate, self.per_track = out_dir, annotate, per_track
        self.work = _work_folder(out_dir)
        self.faces_csv = FacesCsv(self.work / "faces.csv")
        self.video: AnnotatedVideoWriter | None = None
        if annotate and src.kind in VIDEO_KINDS:
            # each face's expression only in the per-face view (--per-track); else boxes and ids only
            self.video = AnnotatedVideoWriter(self.work / "annotated.mp4", src.fps, expressions=per_track)
        self.every_frame = self.video is not None
        self.held = HeldBoxes()  # the latest analysed faces, drawn until the next analysis unless they left

    def skipped(self, frame: Frame) -> None:
        if self.video is not None:
            self.video.write(frame.image, self.held.on(frame.image))

    def write(self, frame: Frame, update: Update, rows: list[dict[str, Any]]) -> None:
        if self.video is not None:
            self.video.write(frame.image, self.held.hold(frame.image, update.detections))
        self.faces_csv.write_rows(rows)

    def end(self) -> None:
        if self.video is not None:
            self.video.close()

    def close(self, keep: bool, result: AnalysisResult) -> None:
        try:
            self.faces_csv.close()
            if keep:
                _write_mood(self.work / "class_mood.csv", result.mood_rows())
                (self.work / "summary.json").write_text(json.dumps(dict(result.summary), indent=2))
                if self.annotate:
                    from classmood.analysis.report import write_report

                    write_report(result, self.work / "report.html", per_track=self.per_track)
                _publish(self.work, self.out_dir)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def analyze(
    source: str | Path | FrameSource,
    out: str | Path | None = None,
    config: PipelineConfig | None = None,
    progress: bool = False,
    annotate: bool = False,
    on_update: Callable[[Update, float | None], None] | None = None,
    per_track: bool = False,
    detector: FaceDetector | None = None,
    model: ExpressionModel | None = None,
    stop: threading.Event | None = None,
) -> AnalysisResult:
    """Analyse a whole input; with ``out``, write the output files there.

    The files are written in a hidden work folder inside ``out`` and moved into place when the run
    ends - completed, or stopped by the user (Ctrl-C, SIGTERM, ``on_update`` raising a stop) - so
    an interrupted run keeps everything analysed until then, and a run that fails (bad input, a
    full disk, a bug) leaves the previous outputs in ``out`` exactly as they were.

    ``annotate`` (needs ``out``) also writes annotated.mp4 for video inputs and report.html;
    ``per_track`` (off by default: per-face things single people out) adds each face's expression
    to annotated.mp4, which otherwise shows boxes and pseudonymous ids only, and the per-person
    timelines and table to the report. ``on_update(update, done)`` is called after each analysed frame with the
    share of the input read so far (None when the length is unknown); an exception it raises stops
    the analysis, and the outputs keep everything analysed until then. ``stop``, once set (the CLI's
    SIGTERM handler, a batch worker being stopped), ends the run cleanly between two frames: the
    frame being analysed is finished and saved everywhere, then the outputs are written as for Ctrl-C.
    """
    config = config or PipelineConfig()
    if annotate and not out:
        raise ClassmoodError("annotating needs an output folder")
    src = source if isinstance(source, FrameSource) else open_source(source)
    try:
        out_dir = prepare_out(out) if out else None
    except ClassmoodError:
        src.close()
        raise
    analyzer = Analyzer(config, detector, model)  # a batch worker passes the detector and model it loaded once
    result = AnalysisResult(src.name, min_faces=config.min_faces)
    outputs = _RunOutputs(out_dir, src, annotate, per_track) if out_dir else _NoOutputs()
    frames = analysed = 0
    last: Frame | None = None
    started = time.perf_counter()
    bar = tqdm(total=src.frame_count, unit="frame", disable=not progress, desc="analysing")
    keep = False  # move the outputs into place: the run completed or was stopped on purpose
    try:
        # Without a video to write, frames between analyses are skipped undecoded.
        for frame in src.frames(None if outputs.every_frame else analyzer.due):
            if stop is not None and stop.is_set():
                raise Stopped("stop requested")
            bar.update(src.frames_read - frames)
            frames = src.frames_read
            if not analyzer.due(frame.time_s):
                outputs.skipped(frame)
                continue
            if src.independent:
                analyzer.forget_faces()
            update = analyzer.process(frame)
            last = frame
            analysed += 1
            rows = update.face_rows()
            outputs.write(frame, update, rows)
            result.faces.extend(rows)
            result.raw_bins.extend(update.bins)
            if on_update is not None:
                on_update(update, src.frames_read / src.frame_count if src.frame_count else None)
        keep = True
    except BaseException as exc:
        keep = not is_failure(exc)  # a stop asked for keeps the outputs; a failure leaves the previous ones
        raise
    finally:
        bar.update(src.frames_read - frames)  # frames skipped after the last analysed one
        frames = src.frames_read
        bar.close()
        try:
            outputs.end()
            last_bins = analyzer.finish()
            result.raw_bins.extend(last_bins)
            if on_update is not None and last_bins and last is not None:
                # the closing update carries the last, partly filled bin: a recorder saves it even when
                # the run was stopped (Ctrl-C, SIGTERM, the page left), and a stop request raised again here
                # is not a new failure
                with suppress(Exception):
                    on_update(Update(last, Detections.empty(), last_bins, final=True), 1.0)
            result.summary = summarize(
                src,
                config,
                frames,
                analysed,
                result.faces,
                time.perf_counter() - started,
                result.raw_bins,
                skipped_frames=src.skipped,
            )
        finally:
            outputs.close(keep, result)
    return result
