"""Long recordings split across workers: analyse time chunks in parallel, stitch the tracks back together.

A recording is cut at time-bin edges into chunks. Each chunk is analysed from ``overlap_s`` seconds
before its start (so the tracker and each face's smoothing are warm when the chunk's own part
begins) to its end, on the same analysis-time grid as an unsplit run. Stitching then matches the
tracks of consecutive chunks by their boxes in the overlap (mean IoU on the frames both analysed,
Hungarian assignment, at least ``min_iou``): a matched track keeps the earlier chunk's id, an
unmatched one gets a new id. Each chunk contributes the rows of its own part only, and the class
mood is rebuilt from the merged rows by the same ``MoodAggregator`` an unsplit run uses, so the
outputs have the shape of ``classmood analyze``'s. What can differ from an unsplit run: an id at a
boundary where the overlap was too short for a face (``bench --batch`` counts these), and the
per-face baseline of ``valence_change``, which restarts with the stitched track.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from classmood.analytics.face_rows import FaceRows
from classmood.analytics.mood import MoodAggregator
from classmood.analytics.privacy import apply_k
from classmood.containers import Detections, Frame, MoodBin
from classmood.errors import ClassmoodError
from classmood.imageio import to_bgr8
from classmood.labels import EMOTIONS
from classmood.pipeline import Analyzer, PipelineConfig, summarize


@dataclass
class ChunkResult:
    start_s: float  # the part this chunk owns: [start_s, end_s)
    end_s: float
    faces: FaceRows = field(default_factory=FaceRows)  # from start_s - overlap to end_s, absolute frames and times
    analysed: list[tuple[int, float]] = field(default_factory=list)  # (frame, time) of every analysed frame
    frames: int = 0  # input frames this chunk owns
    skipped: int = 0


def video_length(path: str | Path) -> tuple[float, int, float]:
    """(seconds, frames, fps) from the container, or a one-line error."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ClassmoodError(f"{path}: not a video OpenCV can decode")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if 0 < fps < 1000 else 25.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    return count / fps, count, fps


def plan_chunks(duration_s: float, chunk_s: float, bin_s: float, rate_hz: float) -> list[tuple[float, float]]:
    """Chunk boundaries on time-bin edges (and on the analysis grid), each about ``chunk_s`` long."""
    grid = bin_s if rate_hz <= 0 else math.lcm(round(bin_s * 1000), round(1000 / rate_hz)) / 1000
    step = max(grid, round(chunk_s / grid) * grid)
    starts = np.arange(0.0, duration_s, step)
    return [(float(s), float(min(s + step, duration_s))) for s in starts]


def analyze_chunk(
    path: str | Path,
    start_s: float,
    end_s: float,
    overlap_s: float,
    config: PipelineConfig,
    detector: Any = None,
    model: Any = None,
) -> ChunkResult:
    """Analyse ``[start_s - overlap_s, end_s)`` of a video with absolute frame indices and times."""
    analyzer = Analyzer(config, detector, model)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ClassmoodError(f"{path}: not a video OpenCV can decode")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if 0 < fps < 1000 else 25.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    step = 1.0 / config.rate_hz if config.rate_hz > 0 else 1.0 / fps
    begin = max(0.0, math.floor((start_s - overlap_s) / step + 1e-9) * step)  # on the analysis grid
    index = round(begin * fps)
    result = ChunkResult(start_s, end_s)
    try:
        if index:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        analyzer.start_at(index / fps)
        failures = 0
        while count is None or index < count:
            time_s = index / fps
            if time_s >= end_s - 1e-9:
                break
            wanted = analyzer.due(time_s)
            ok, image = cap.read() if wanted else (cap.grab(), None)
            if not ok:
                failures += 1
                if failures > 250 or count is None:
                    break
                result.skipped += int(time_s >= start_s)
                index += 1
                continue
            failures = 0
            result.frames += int(time_s >= start_s - 1e-9)
            if wanted and image is not None:
                update = analyzer.process(Frame(index, time_s, to_bgr8(image)))
                result.faces.extend(update.face_rows())
                result.analysed.append((index, round(time_s, 3)))
            index += 1
    finally:
        cap.release()
    return result


def _boxes(rows: FaceRows, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = rows.column("x")[mask], rows.column("y")[mask]
    w, h = rows.column("w")[mask], rows.column("h")[mask]
    return rows.column("frame")[mask], rows.column("track_id")[mask], np.stack([x, y, x + w, y + h], axis=1)


def _match_tracks(earlier: ChunkResult, later: ChunkResult, min_iou: float) -> dict[int, int]:
    """later's track id -> earlier's, for tracks whose boxes agree over the frames both analysed."""
    from scipy.optimize import linear_sum_assignment

    from classmood.vision.tracker import iou_matrix

    t_a, t_b = earlier.faces.column("time_s"), later.faces.column("time_s")
    window_b = t_b < later.start_s - 1e-9
    if not window_b.any():
        return {}
    lo = float(t_b[window_b].min())
    window_a = (t_a >= lo - 1e-9) & (t_a < later.start_s - 1e-9)
    fa, ia, ba = _boxes(earlier.faces, window_a)
    fb, ib, bb = _boxes(later.faces, window_b)
    ids_a, ids_b = np.unique(ia), np.unique(ib)
    if not len(ids_a) or not len(ids_b):
        return {}
    overlap = np.zeros((len(ids_a), len(ids_b)))
    seen_a = {int(t): int((ia == t).sum()) for t in ids_a}
    seen_b = {int(t): int((ib == t).sum()) for t in ids_b}
    ra = {int(t): k for k, t in enumerate(ids_a)}
    rb = {int(t): k for k, t in enumerate(ids_b)}
    for frame in np.intersect1d(fa, fb):
        sa, sb = fa == frame, fb == frame
        iou = iou_matrix(ba[sa], bb[sb])
        for i, ta in enumerate(ia[sa]):
            for j, tb in enumerate(ib[sb]):
                overlap[ra[int(ta)], rb[int(tb)]] += iou[i, j]
    score = overlap / np.maximum.outer(np.array([seen_a[int(t)] for t in ids_a]), [seen_b[int(t)] for t in ids_b])
    rows, cols = linear_sum_assignment(-score)
    return {int(ids_b[c]): int(ids_a[r]) for r, c in zip(rows, cols, strict=True) if score[r, c] >= min_iou}


def stitch(chunks: list[ChunkResult], min_iou: float = 0.5) -> tuple[FaceRows, list[tuple[int, float]], int]:
    """The merged rows (each chunk's own part, ids made consistent), analysed frames, and tracks continued
    across a boundary."""
    merged = FaceRows()
    analysed: list[tuple[int, float]] = []
    previous_map: dict[int, int] = {}
    next_id = 1
    continued = 0
    for k, chunk in enumerate(chunks):
        own_rows = chunk.faces.column("time_s") >= chunk.start_s - 1e-9
        ids = chunk.faces.column("track_id")
        if k == 0:
            mapping = {int(t): int(t) for t in np.unique(ids) if t >= 0}
        else:
            matched = _match_tracks(chunks[k - 1], chunk, min_iou)
            mapping = {b: previous_map[a] for b, a in matched.items() if a in previous_map}
            continued += len(mapping)
        next_id = max([next_id, *[v + 1 for v in mapping.values()]])
        for t in np.unique(ids[own_rows]):
            if int(t) >= 0 and int(t) not in mapping:
                mapping[int(t)] = next_id
                next_id += 1
        for i in np.flatnonzero(own_rows):
            row = chunk.faces[int(i)]
            row["track_id"] = mapping.get(int(row["track_id"]), -1)
            merged.append(row)
        analysed += [(f, t) for f, t in chunk.analysed if t >= chunk.start_s - 1e-9]
        previous_map = mapping
    return merged, analysed, continued


def replay_bins(faces: FaceRows, analysed: list[tuple[int, float]], bin_s: float) -> list[MoodBin]:
    """Class mood rebuilt from face rows, frame by frame, by the aggregator an unsplit run uses."""
    agg = MoodAggregator(bin_s)
    frames = faces.column("frame")
    order = np.argsort(frames, kind="stable")
    starts = np.searchsorted(frames[order], [f for f, _ in analysed], side="left")
    ends = np.searchsorted(frames[order], [f for f, _ in analysed], side="right")
    x, y, w, h = (faces.column(c) for c in ("x", "y", "w", "h"))
    probs = np.stack([faces.column(f"p_{e}") for e in EMOTIONS], axis=1).astype(np.float32)
    words = faces.column("emotion")
    bins: list[MoodBin] = []
    for (_frame, time_s), a, b in zip(analysed, starts, ends, strict=True):
        idx = order[a:b]
        dets = Detections(
            np.stack([x[idx], y[idx], x[idx] + w[idx], y[idx] + h[idx]], axis=1),
            faces.column("det_score")[idx],
            faces.column("track_id")[idx],
            probs[idx],
            words[idx] == "uncertain",
        )
        bins += agg.add(time_s, dets)
    return bins + agg.flush()


def write_chunked_outputs(
    recording: Path, out: Path, chunks: list[ChunkResult], config: PipelineConfig, wall_s: float
) -> tuple[dict[str, Any], FaceRows, list[MoodBin]]:
    """faces.csv, class_mood.csv and summary.json of a chunked recording; returns the summary, the merged
    face rows and the raw bins (what a session of it saves)."""
    from classmood.analysis.analyze import _write_mood, prepare_out
    from classmood.analysis.faces_csv import FacesCsv

    faces, analysed, continued = stitch(chunks)
    raw = replay_bins(faces, analysed, config.bin_s)
    summary = summarize(
        (str(recording), "video"),
        config,
        sum(c.frames for c in chunks),
        len(analysed),
        faces,
        wall_s,
        raw,
        skipped_frames=sum(c.skipped for c in chunks),
    ).to_dict()
    summary["chunks"] = len(chunks)
    summary["tracks_continued_across_chunks"] = continued
    out = prepare_out(out)
    with FacesCsv(out / "faces.csv") as sink:
        sink.write_rows(list(faces))
    _write_mood(out / "class_mood.csv", [b.as_row() for b in apply_k(raw, config.min_faces)])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary, faces, raw


def analyze_chunked(
    recording: str | Path, out: str | Path, config: PipelineConfig, chunk_s: float, overlap_s: float = 10.0
) -> dict[str, Any]:
    """One recording in chunks, one after another (``classmood batch`` runs them on several workers)."""
    started = time.perf_counter()
    duration, _, _ = video_length(recording)
    chunks = [
        analyze_chunk(recording, a, b, overlap_s, config)
        for a, b in plan_chunks(duration, chunk_s, config.bin_s, config.rate_hz)
    ]
    summary, _, _ = write_chunked_outputs(Path(recording), Path(out), chunks, config, time.perf_counter() - started)
    return summary
