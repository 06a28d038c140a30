"""Comparing two sessions: their class numbers side by side and the difference, under the k rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from classmood.analytics.privacy import class_summary
from classmood.containers import MoodBin
from classmood.labels import EMOTIONS


def overall(raw_bins: Sequence[MoodBin], k: int) -> dict[str, float]:
    """One session's comparable numbers: top-expression shares and valence from the bins with at least k faces
    (NaN when none has), the shares facing the screen and looking down from the bins with at least k faces
    clearly oriented, and the mean face count per analysed frame over every bin (a count, always shown)."""
    nan = float("nan")
    summary = class_summary(raw_bins, k)
    shares = summary["shares"] or {}
    out = {f"share_{e}": float(shares.get(e, nan)) for e in EMOTIONS}
    out["valence"] = nan if summary["valence"] is None else float(summary["valence"])
    for key in ("facing_share", "looking_down_share"):  # under k on their own count (privacy.facing_summary)
        out[key] = nan if summary[key] is None else float(summary[key])
    frames = sum(b.frames for b in raw_bins)
    out["faces"] = sum(b.frames * b.faces for b in raw_bins) / frames if frames > 0 else nan
    return out


def compare(a: Sequence[MoodBin], b: Sequence[MoodBin], k_a: int, k_b: int, note: str = "") -> pd.DataFrame:
    """Per metric (share_<emotion>, valence, facing_share, looking_down_share, faces): the value in ``a``, in
    ``b`` and ``b - a``."""
    df = pd.DataFrame({"a": overall(a, k_a), "b": overall(b, k_b)})
    df["difference"] = df["b"] - df["a"]
    df.index.name = "metric"
    attrs: dict[str, Any] = {"note": note}
    df.attrs = attrs
    return df
