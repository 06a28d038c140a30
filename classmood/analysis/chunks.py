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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classmood.analytics.face_rows import FaceRows
from classmood.analytics.mood import MoodAggregator
from classmood.analytics.privacy import apply_k
from classmood.containers import Detections, Frame, MoodBin
from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS
from classmood.pipeline import Analyzer, PipelineConfig, summarize
from classmood.vision.frame_source import VideoFile, stopped_early


@dataclass
class ChunkResult:
    start_s: float  # the part this chunk owns: [start_s, end_s)
    end_s: float
    faces: FaceRows = field(default_factory=FaceRows)  # from start_s - overlap to end_s, absolute frames and times
    analysed: list[tuple[int, float]] = field(default_factory=list)  # (frame, time) of every analysed frame
    frames: int = 0  # input frames this chunk owns
    skipped: int = 0
    truncated: bool = False  # the file ended (a cut copy) before this chunk's end


def video_length(path: str | Path) -> tuple[float, int, float]:
    """(seconds, frames, fps) as the container declares them (``VideoFile.length_s``), or a one-line error."""
    video = VideoFile(path)
    video.close()
    return video.length_s, video.declared_frames or 0, video.fps


def frame_times(path: str | Path, until_s: float | None = None) -> np.ndarray:
    """The presentation times of a video's frames, sorted, from its packets (demuxed, not decoded).

    A chunk starts with a seek, after which no decoder knows how many frames came before; with a
    variable frame rate, time x nominal fps is not it either. The frame at time t is frame
    ``searchsorted(times, t - 1 ms)``, as in an unsplit run of an undamaged file. Reading stops a
    few seconds past ``until_s`` (packets come in decoding order, a little out of presentation
    order) or where the file cannot be read on.
    """
    import av

    times: list[float] = []
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            base, start = stream.time_base, stream.start_time or 0
            for packet in container.demux(stream):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if not packet.size or packet.is_discard or stamp is None or base is None:
                    continue
                times.append(float((stamp - start) * base))
                if until_s is not None and times[-1] > until_s + 5.0:
                    break
    except (av.FFmpegError, OSError, ValueError, IndexError):
        pass  # what was read until the damage or the end
    return np.sort(np.array(times, np.float64))


def plan_chunks(duration_s: float, chunk_s: float, bin_s: float, rate_hz: float) -> list[tuple[float, float]]:
    """Chunk boundaries on time-bin edges (and on the analysis grid), each about ``chunk_s`` long.

    The grid is the least common multiple of the bin and the analysis step, in whole milliseconds;
    a bin under 1 ms cannot be a boundary and is refused. An analysis step under 1 ms (a rate over
    1000 Hz: every frame) adds nothing to the grid. A grid as long as the recording, or a chunk
    length that is not a positive number, gives one chunk.
    """
    if not (math.isfinite(duration_s) and duration_s > 0):
        return [(0.0, max(duration_s, 0.0) if math.isfinite(duration_s) else 0.0)]
    if not (math.isfinite(bin_s) and bin_s >= 0.001):
        raise ClassmoodError(f"bin must be at least 0.001 s to split a recording into chunks, not {bin_s}")
    if not (math.isfinite(chunk_s) and chunk_s > 0) or bin_s >= duration_s:
        return [(0.0, float(duration_s))]
    grid_ms = round(bin_s * 1000)
    if rate_hz > 0 and math.isfinite(rate_hz) and 1 / rate_hz < duration_s:
        step_ms = round(1000 / rate_hz)
        if step_ms >= 1:
            grid_ms = math.lcm(grid_ms, step_ms)
    grid = grid_ms / 1000
    if grid >= duration_s:
        return [(0.0, float(duration_s))]
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
    """Analyse ``[start_s - overlap_s, end_s)`` of a video with absolute frame indices and times.

    Decoded as in an unsplit run (``VideoFile``: the frames' own timestamps, the same pixels),
    from a seek to the key frame before the chunk's first frame; indices are the frames' places
    among the container's packets (``frame_times``). The chunk that ends at the recording's
    declared end reads on to the end of the stream, wherever the last frame really is. Packets the
    decoder refuses and frames the container holds but never came are counted in ``skipped``; a
    file that stops before the chunk's end sets ``truncated``.
    """
    analyzer = Analyzer(config, detector, model)
    video = VideoFile(path)
    length = video.length_s
    last_chunk = end_s >= length - 1e-6
    step = 1.0 / config.rate_hz if config.rate_hz > 0 else 0.0
    begin = max(0.0, start_s - overlap_s)
    if step:
        begin = max(0.0, math.floor(begin / step + 1e-9) * step)  # on the analysis grid
    times = frame_times(path, None if last_chunk else end_s)
    result = ChunkResult(start_s, end_s)
    previous: float | None = None
    widest, stopped = 0.0, True  # stopped: the stream ended before end_s
    analyzer.start_at(begin)
    try:
        for time_s, frame in video.frames(begin):
            if previous is not None:
                widest = max(widest, time_s - previous)
            previous = time_s
            if time_s < begin - 1e-9:
                continue  # from the key frame before the chunk's first frame
            if not last_chunk and time_s >= end_s - 1e-9:
                stopped = False
                break
            index = int(np.searchsorted(times, time_s - 1e-3)) if len(times) else round(time_s * video.fps)
            result.frames += int(time_s >= start_s - 1e-9)
            if analyzer.due(time_s):
                update = analyzer.process(Frame(index, time_s, video.image(frame)))
                result.faces.extend(update.face_rows())
                result.analysed.append((index, round(time_s, 3)))
    finally:
        video.close()
    reached = previous if previous is not None else begin
    if stopped and stopped_early(reached, widest, video.fps, length if last_chunk else end_s):
        result.truncated = True  # the file ended before this chunk's end: what is missing is not damage
    else:
        own = (times >= start_s - 1e-9) & ((times < end_s - 1e-9) | last_chunk)
        refused = sum(1 for t in video.errors if t >= start_s - 1e-9 and (t < end_s - 1e-9 or last_chunk))
        result.skipped = max(refused, int(own.sum()) - result.frames)
    return result


def _boxes(rows: FaceRows, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = rows.column("x")[mask], rows.column("y")[mask]
    w, h = rows.column("w")[mask], rows.column("h")[mask]
    return rows.column("frame")[mask], rows.column("track_id")[mask], np.stack([x, y, x + w, y + h], axis=1)


def _match_tracks(earlier: ChunkResult, later: ChunkResult, min_iou: float) -> dict[int, int]:
    """later's track id -> earlier's, for tracks whose boxes agree over the frames both analysed."""
    from scipy.optimize import linear_sum_assignment

    from classmood.vision.boxes import iou_matrix

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
    pose = np.stack([faces.column(c) for c in ("yaw", "pitch", "roll")], axis=1).astype(np.float32)
    scores, ids = faces.column("det_score"), faces.column("track_id")  # once: each call copies the column
    bins: list[MoodBin] = []
    for (_frame, time_s), a, b in zip(analysed, starts, ends, strict=True):
        idx = order[a:b]
        dets = Detections(
            np.stack([x[idx], y[idx], x[idx] + w[idx], y[idx] + h[idx]], axis=1),
            scores[idx],
            ids[idx],
            probs[idx],
            words[idx] == "uncertain",
            pose=pose[idx],
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
    summary["truncated"] = any(c.truncated for c in chunks)
    summary["chunks"] = len(chunks)
    summary["tracks_continued_across_chunks"] = continued
    out = prepare_out(out)
    with FacesCsv(out / "faces.csv") as sink:
        sink.write_rows(list(faces))
    _write_mood(out / "class_mood.csv", [b.as_row() for b in apply_k(raw, config.min_faces)])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary, faces, raw
