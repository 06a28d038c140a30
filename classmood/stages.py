"""Where a frame's time goes: wall time per pipeline stage, summed over a session.

Every speed claim needs to say which stage it is about (detection, not the classifier, costs most of
a 49-face frame on a CPU without AMX), so the Analyzer keeps these sums always; a ``perf_counter``
pair per stage costs about a microsecond against tens of milliseconds per frame. ``bench
--pipeline`` prints them as milliseconds per analysed frame and shares of the whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

# In the order a frame goes through them (``decode`` is timed by whoever reads the frames).
STAGES = ("decode", "detect", "refine", "gate", "track", "pose", "crop", "classify", "readout", "aggregate")


class StageTimes:
    """Seconds spent per stage and the number of frames they were spent on."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.frames = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def per_frame_ms(self) -> dict[str, float]:
        """Milliseconds per analysed frame of each stage (0 before the first frame)."""
        n = max(self.frames, 1)
        return {name: round(1000 * s / n, 2) for name, s in self.seconds.items()}

    def shares(self) -> dict[str, float]:
        """Each stage's share of the time of all stages together."""
        total = sum(self.seconds.values())
        return {name: round(s / total, 3) if total > 0 else 0.0 for name, s in self.seconds.items()}
