"""Uploaded recordings: check them, analyse them with ``classmood.analysis.analyze.analyze``, keep the outputs.

``check_upload`` turns the usual mistakes (an empty file, a file over the size limit, something
that is not a video) into one line for the page. ``analyze_upload`` runs the same analysis as
``classmood analyze`` in the page's own thread (so leaving the page stops it: Streamlit raises in
the progress callback), saves each analysed frame's faces and every closed class-mood bin to the
session store as they are computed, and returns the output files as bytes, so the temporary folder can be deleted
straight away. The uploaded file itself lives in a temporary file that the page deletes after
the analysis.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from classmood.analysis.analyze import OUTPUT_FILES, analyze
from classmood.analysis.report import write_report
from classmood.errors import ClassmoodError
from classmood.pipeline import AnalysisResult, PipelineConfig, Update
from classmood.store.recorder import recorder_for

if TYPE_CHECKING:
    from classmood.store import SessionStore
from classmood.vision.sources import VIDEO_SUFFIXES, open_source

MAX_UPLOAD_ENV = "CLASSMOOD_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 500
MIME = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".html": "text/html",
    ".mp4": "video/mp4",
    ".parquet": "application/vnd.apache.parquet",
}

# How video containers begin: (offset, bytes). Enough to tell a video from a document or an image.
_SIGNATURES: list[tuple[int, bytes]] = [
    (4, b"ftyp"),  # MP4, MOV, M4V, 3GP
    (4, b"moov"),  # old QuickTime
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (0, b"RIFF"),  # AVI (RIFF....AVI )
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"\x00\x00\x01\xb3"),  # MPEG video
    (0, b"\x47"),  # MPEG transport stream (sync byte)
    (0, b"YUV4MPEG2"),
    (0, b"FLV"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # ASF, WMV
]


def max_upload_mb(env: dict[str, str] | None = None) -> int:
    """The upload size limit in MB: ``CLASSMOOD_MAX_UPLOAD_MB`` (set by ``classmood app``), else 500."""
    value = (os.environ if env is None else env).get(MAX_UPLOAD_ENV, "")
    try:
        return max(1, int(value)) if value else DEFAULT_MAX_UPLOAD_MB
    except ValueError:
        return DEFAULT_MAX_UPLOAD_MB


def looks_like_video(head: bytes) -> bool:
    return any(head[off : off + len(sig)] == sig for off, sig in _SIGNATURES)


def check_upload(name: str, size: int, head: bytes, limit_mb: int) -> str | None:
    """A one-line reason to refuse this upload, or None if it may be a video worth opening."""
    suffix = Path(name).suffix.lower()
    if size <= 0:
        return f"{name}: empty file (0 bytes)"
    if size > limit_mb * 1024 * 1024:
        return f"{name}: {size / 2**20:.0f} MB is over the {limit_mb} MB upload limit"
    if suffix not in VIDEO_SUFFIXES:
        return f"{name}: not a video file (use {', '.join(sorted(s.lstrip('.') for s in VIDEO_SUFFIXES))})"
    if not looks_like_video(head):
        return f"{name}: not a video (the content does not start like any video container)"
    return None


def save_upload(data: IO[bytes], name: str, directory: str | Path | None = None) -> Path:
    """Copy an uploaded stream to a new temporary file with the upload's suffix; the caller deletes it."""
    fd, path = tempfile.mkstemp(suffix=Path(name).suffix.lower() or ".bin", prefix="classmood-upload-", dir=directory)
    with os.fdopen(fd, "wb") as out:
        data.seek(0)
        shutil.copyfileobj(data, out, 1 << 20)
    return Path(path)


@dataclass
class UploadResult:
    result: AnalysisResult
    files: dict[str, bytes] = field(default_factory=dict)  # output name -> content, in OUTPUT_FILES order
    session_id: Any = None
    store_error: str | None = None


def analyze_upload(
    path: str | Path,
    name: str,
    config: PipelineConfig | None = None,
    store: SessionStore | None = None,
    on_progress: Callable[[float, str], None] | None = None,
    annotate: bool = False,
    poll_s: float = 0.25,
    per_face: bool = False,
) -> UploadResult:
    """Analyse a saved upload like ``classmood analyze --out``; outputs come back in memory.

    Raises ``ClassmoodError`` (one line) for input the pipeline cannot read. ``store`` receives a
    session of kind "upload" once the first face is found (a recording without faces saves nothing):
    faces while they are computed, bins and summary at the end. ``per_face`` (the app's per-face
    view) is ``analyze``'s ``per_track``: each face's expression in annotated.mp4 and the per-person
    timelines in the report; without it the video shows boxes and pseudonymous ids only.
    """
    config = config or PipelineConfig()
    source = open_source(path)  # fails now, with a one-line message, for non-videos and broken files
    source.name = name  # the report and the summary name the uploaded file, not the server's temporary copy
    if on_progress:
        on_progress(0.0, "starting")
    started = last_report = time.monotonic()
    with (
        recorder_for(store, "upload", name, asdict(config), lazy=True) as recorder,
        tempfile.TemporaryDirectory(prefix="classmood-out-") as tmp,
    ):

        def on_update(update: Update, done: float | None) -> None:
            nonlocal last_report
            recorder.add(update)
            now = time.monotonic()
            if on_progress and now - last_report >= poll_s:
                last_report = now
                on_progress(
                    min(0.99, done or 0.0), f"{now - started:.0f} s"
                )  # Streamlit raises here if the page is left

        out_dir = Path(tmp)
        try:
            result = analyze(source, out_dir, config, annotate=annotate, on_update=on_update, per_track=per_face)
        except ClassmoodError:
            raise
        except Exception as error:  # the recorder marks the session failed; the page gets one line
            raise ClassmoodError(f"{name}: analysis failed ({type(error).__name__}: {error})") from error
        recorder.finish(result.summary)
        if not (out_dir / "report.html").is_file():
            write_report(result, out_dir / "report.html", per_track=per_face)
        files = {f: (out_dir / f).read_bytes() for f in OUTPUT_FILES if (out_dir / f).is_file()}
    if on_progress:
        on_progress(1.0, "done")
    return UploadResult(result, files, recorder.session_id, recorder.error)
