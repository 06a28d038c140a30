"""``classmood bench --batch``: recordings per minute, a sequential loop vs Ray with 1 and 2 workers.

Writes ``recordings`` short 640x368 call recordings (a 3x3 gallery of a real portrait - matplotlib's
Grace Hopper sample - moving slightly, with fresh sensor noise per frame, H.264-like mp4v at 10 fps)
and analyses all of them three ways in the same run: ``classmood.analyze`` in a plain loop (the
baseline), and ``classmood batch`` on a local Ray with 1 and with 2 worker actors. Ray's start-up
and each actor's model loading are counted in its wall time, as a user would see them. Then one
long recording (10 minutes) on 2 workers, whole vs in 4 stitched chunks, with the ids the chunked
run changed at its boundaries.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from classmood.pipeline import PipelineConfig


def write_recordings(folder: Path, recordings: int, seconds: float, fps: float = 10.0) -> list[Path]:
    from classmood.benchmarks.live import real_gallery

    base = real_gallery(rows=3, cols=3, width=640, height=368, head_px=90)
    rng = np.random.default_rng(0)
    paths = []
    for n in range(recordings):
        path = folder / f"lesson{n + 1:02d}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (640, 368))
        for i in range(int(seconds * fps)):
            frame = np.roll(base, (i + n) % 4, axis=1)
            noise = rng.integers(0, 6, frame.shape, dtype=np.uint8)
            writer.write(cv2.add(frame, noise))
        writer.release()
        paths.append(path)
    return paths


def run_batch_bench(recordings: int = 6, seconds: float = 120.0, long_s: float = 600.0) -> dict[str, Any]:
    from classmood.analysis.analyze import analyze
    from classmood.analysis.batch import ray_available, run_batch

    config = PipelineConfig(threads=1)
    with tempfile.TemporaryDirectory(prefix="classmood-batch-bench-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        paths = write_recordings(root / "in", recordings, seconds)
        result: dict[str, Any] = {
            "input": f"{recordings} recordings, 640x368 3x3 gallery of a real portrait, {seconds:g} s each at 10 fps",
            "rate_hz": config.rate_hz,
        }
        started = time.perf_counter()
        for path in paths:
            analyze(path, root / "loop" / path.stem, config)
        loop_s = time.perf_counter() - started
        result["sequential_loop"] = {
            "wall_s": round(loop_s, 1),
            "recordings_per_min": round(recordings / loop_s * 60, 2),
        }
        if not ray_available():
            result["ray"] = "not installed (pip install 'classmood[cluster]')"
            return result
        for workers in (1, 2):
            started = time.perf_counter()
            rows = run_batch([str(root / "in")], root / f"ray{workers}", config, workers=workers, use_ray=True)
            wall = time.perf_counter() - started
            result[f"ray_{workers}_workers"] = {
                "wall_s": round(wall, 1),
                "recordings_per_min": round(recordings / wall * 60, 2),
                "speedup_vs_loop": round(loop_s / wall, 2),
                "failed": sum(r["status"] == "failed" for r in rows),
            }
        result["long_recording"] = _long_recording(root, long_s, config)
        return result


def _long_recording(root: Path, seconds: float, config: PipelineConfig) -> dict[str, Any]:
    """One long recording on 2 Ray workers: whole (one worker does it all) vs in 4 chunks, and the ids."""
    from classmood.analysis.batch import run_batch

    (root / "long").mkdir()
    (path,) = write_recordings(root / "long", 1, seconds)
    out: dict[str, Any] = {"seconds": seconds}
    for name, chunk_s in (("unsplit", None), ("chunked", seconds / 4)):
        started = time.perf_counter()
        run_batch([str(path)], root / name, config, workers=2, use_ray=True, chunk_s=chunk_s, overlap_s=10.0)
        out[f"{name}_wall_s"] = round(time.perf_counter() - started, 1)
    out["chunked_speedup"] = round(out["unsplit_wall_s"] / out["chunked_wall_s"], 2)
    out["ids_changed_at_boundaries"] = _id_changes(root / "unsplit" / path.stem, root / "chunked" / path.stem)
    return out


def _id_changes(unsplit: Path, chunked: Path) -> int:
    """How many more ids the chunked run gave the same faces: for each unsplit track, its distinct chunked ids
    minus one, summed (the same box at the same frame is the same face)."""
    import csv

    def boxes(folder: Path) -> dict[tuple[str, str, str], str]:
        with open(folder / "faces.csv", newline="") as fh:
            return {(r["frame"], r["x"], r["y"]): r["track_id"] for r in csv.DictReader(fh)}

    a, b = boxes(unsplit), boxes(chunked)
    seen: dict[str, set[str]] = {}
    for key, tid in a.items():
        if key in b:
            seen.setdefault(tid, set()).add(b[key])
    return sum(len(v) - 1 for v in seen.values())
