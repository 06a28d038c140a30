"""Is the live app responsive with a 49-face gallery? (``classmood bench --live``)

The web app hands every captured frame to a ``LiveSession`` worker and polls it for the live
panel. This benchmark plays the two other parties for ``seconds``: a producer submitting a 1080p
7x7 gallery (a real portrait photograph in every tile, fresh sensor-like noise on each frame so
nothing is perfectly still) at ``fps``, as the WebRTC callback or screen capture does, and a UI
thread polling ``snapshot()`` every 50 ms. It prints how long ``submit`` and ``snapshot`` take
(the UI side must never wait for inference), how many frames were analysed and dropped, how
many faces the worker sees, and how long after a frame arrives its numbers are ready (the first
frame, which waits for the models to load, left out). Needs no dataset: the photograph ships with
matplotlib.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np

from classmood.imageio import read_image
from classmood.live import LiveSession
from classmood.pipeline import PipelineConfig


def real_gallery(rows: int = 7, cols: int = 7, width: int = 1920, height: int = 1080, head_px: int = 100) -> np.ndarray:
    """A video-call gallery frame with matplotlib's Grace Hopper portrait (public domain) in each tile."""
    import matplotlib.cbook

    photo = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    tile = cv2.resize(photo, (head_px * photo.shape[1] // photo.shape[0], head_px), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 30, np.uint8)
    tw, th = width // cols, height // rows
    for r in range(rows):
        for c in range(cols):
            x, y = c * tw + (tw - tile.shape[1]) // 2, r * th + (th - head_px) // 2
            frame[y : y + head_px, x : x + tile.shape[1]] = tile
    return frame


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p99": round(float(np.percentile(values, 99)), 2),
        "max": round(max(values), 2),
    }


def run_live_bench(seconds: float = 20.0, fps: float = 10.0, config: PipelineConfig | None = None) -> dict[str, Any]:
    config = config or PipelineConfig()
    gallery = real_gallery()
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 6, gallery.shape, dtype=np.uint8) for _ in range(4)]
    live = LiveSession("gallery", "live-bench", config).start()
    submit_ms: list[float] = []
    snapshot_ms: list[float] = []
    faces_seen: list[int] = []
    delays: list[float] = []  # per analysed frame: from its arrival to its numbers, as the UI first sees them
    stop = threading.Event()
    seen = [0]

    def ui() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            snap = live.snapshot()
            snapshot_ms.append((time.perf_counter() - t) * 1000)
            if snap.analysed:
                faces_seen.append(snap.faces_now)
            if snap.analysed > seen[0] and snap.delay_s is not None:
                if seen[0]:  # not the first result: that one waited for the models to load
                    delays.append(snap.delay_s * 1000)
                seen[0] = snap.analysed
            stop.wait(0.05)

    poller = threading.Thread(target=ui, name="live-bench-ui")
    poller.start()
    started = time.perf_counter()
    submitted = 0
    while time.perf_counter() - started < seconds:
        frame = cv2.add(gallery, noise[submitted % len(noise)])  # not timed: the camera's work, not ours
        t = time.perf_counter()
        live.submit(frame)
        submit_ms.append((time.perf_counter() - t) * 1000)
        submitted += 1
        time.sleep(max(0.0, started + submitted / fps - time.perf_counter()))
    elapsed = time.perf_counter() - started
    stop.set()
    poller.join()
    final = live.stop()
    return {
        "gallery": "1920x1080, 7x7 tiles, a real portrait in each (face ~35 px tall), sensor-like noise",
        "seconds": round(elapsed, 1),
        "submitted_fps": round(submitted / elapsed, 2),
        "rate_hz": config.rate_hz,
        "analysed": final.analysed,
        "analysed_per_s": round(final.analysed / elapsed, 2),
        "dropped": final.dropped,
        "faces_seen_median": int(np.median(faces_seen)) if faces_seen else 0,
        "submit_ms": _ms(submit_ms),
        "snapshot_ms": _ms(snapshot_ms),
        # frame to numbers: the wait for the worker plus the analysis (the app's page refreshes once a second)
        "frame_to_numbers_ms": _ms(delays) if delays else None,
    }
