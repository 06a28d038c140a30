"""``build_summary``: the one place a ``Summary`` is made, for ``analyze`` and the live worker alike."""

from __future__ import annotations

from collections.abc import Sequence

from classmood.analytics.privacy import class_summary
from classmood.containers import MoodBin, Summary


def build_summary(
    *,
    input: str,
    kind: str,
    frames: int,
    frames_analysed: int,
    faces: int,
    tracks: int,
    wall_s: float,
    detector: str,
    model: str,
    rate_hz: float,
    raw_bins: Sequence[MoodBin],
    min_faces: int,
    frames_dropped: int = 0,
    truncated: bool = False,
    skipped_frames: int = 0,
    error: str | None = None,
    facing: bool = True,
) -> Summary:
    """Counts and settings as given; the class numbers from ``raw_bins`` under the k rule (``min_faces``)."""
    return Summary(
        input=input,
        kind=kind,
        frames=frames,
        frames_analysed=frames_analysed,
        faces=faces,
        tracks=tracks,
        wall_s=wall_s,
        detector=detector,
        model=model,
        rate_hz=rate_hz,
        class_numbers=class_summary(raw_bins, min_faces),
        frames_dropped=frames_dropped,
        truncated=truncated,
        skipped_frames=skipped_frames,
        error=error,
        facing=facing,
    )
