"""The report's charts: matplotlib figures (Agg, no pyplot state, safe in the app's threads) as PNG data URIs."""

from __future__ import annotations

import atexit
import base64
import io
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from typing import Any

import numpy as np

from classmood import words
from classmood.analytics.face_rows import FaceRows
from classmood.containers import UNCERTAIN_WORD, MoodBin
from classmood.labels import EMOTIONS
from classmood.words import EXPRESSION_RGB, FACING_RGB, LOOKING_DOWN_RGB, MOOD_RGB, NOT_READ_RGB, clock

MAX_TRACK_ROWS = 60  # rows in the per-track chart (most-seen tracks first)
__all__ = ["clock", "facing_chart", "mood_chart", "sample_step", "shares_chart", "tracks_chart"]


def rgb(emotion: str) -> tuple[float, float, float]:
    """The glossary's colour of an expression (grey for a face not read), as matplotlib's 0..1 floats."""
    r, g, b = EXPRESSION_RGB.get(emotion, NOT_READ_RGB) if emotion != "mood" else MOOD_RGB
    return (r / 255, g / 255, b / 255)


def _png_data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Any:
    _private_matplotlib_cache()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _private_matplotlib_cache() -> None:
    """Matplotlib keeps a font cache in ~/.cache/matplotlib and a config folder in ~/.config: point it at a
    folder of this process's own, removed at exit, so that making a report writes nothing in the home folder.
    A user's own MPLCONFIGDIR is respected."""
    if "MPLCONFIGDIR" in os.environ or "matplotlib" in sys.modules:
        return
    folder = tempfile.mkdtemp(prefix="classmood-matplotlib-")
    atexit.register(shutil.rmtree, folder, True)
    os.environ["MPLCONFIGDIR"] = folder


def _time_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: clock(v)))
    ax.set_xlabel("time in input (m:ss)")


def _hidden_gaps(ax: Any, hidden: list[MoodBin], label: str) -> None:
    """Moments hidden by the k rule as hatched gaps (one legend entry)."""
    for b in hidden:
        ax.axvspan(b.start_s, b.end_s, facecolor="#f2f2f2", edgecolor="#bbbbbb", hatch="//", linewidth=0, label=label)
        label = "_nolegend_"


def mood_chart(bins: list[MoodBin]) -> str:
    fig = _figure(10, 3.8)
    ax = fig.add_subplot()
    shown = [b for b in bins if b.shares is not None]
    starts = np.array([b.start_s for b in shown])
    widths = np.array([b.end_s - b.start_s for b in shown])
    bottom = np.zeros(len(shown))
    for e in EMOTIONS:
        vals = np.array([b.shares[e] if b.shares else 0.0 for b in shown])
        ax.bar(starts, vals, widths, bottom=bottom, align="edge", color=rgb(e), label=words.expression(e), linewidth=0)
        bottom += vals
    _hidden_gaps(ax, [b for b in bins if b.shares is None], "hidden: fewer than k faces read")
    flagged = [b for b in bins if b.flags]
    if flagged:
        ax.scatter(
            [(b.start_s + b.end_s) / 2 for b in flagged],
            [1.04] * len(flagged),
            marker="v",
            color="black",
            clip_on=False,
            zorder=5,
            label="flagged moment (see the table)",
        )
    ax.set_ylim(0, 1)
    ax.set_xlim(bins[0].start_s, bins[-1].end_s)
    ax.set_ylabel("share of faces read (top apparent expression)")
    _time_axis(ax)
    ax2 = ax.twinx()
    centres = [(b.start_s + b.end_s) / 2 for b in bins]
    valence = [np.nan if b.valence is None else b.valence for b in bins]
    ax2.plot(centres, valence, color=rgb("mood"), marker="o", markersize=4, linewidth=1.5, label="mood score")
    ax2.axhline(0, color="black", linewidth=0.5, linestyle=":")
    ax2.set_ylim(-1, 1)
    ax2.set_ylabel("mood score (−1 negative, 0 calm, +1 happy)")
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(handles + h2, labels + l2, loc="upper left", bbox_to_anchor=(1.08, 1), fontsize=8, frameon=False)
    ax.set_title("Class mood over time", pad=14)
    return _png_data_uri(fig)


def facing_chart(bins: list[MoodBin]) -> str:
    """The shares facing the screen and looking down per moment, hidden moments as hatched gaps."""
    fig = _figure(10, 2.8)
    ax = fig.add_subplot()
    centres = [(b.start_s + b.end_s) / 2 for b in bins]
    for attr, colour, label in (
        ("facing_share", FACING_RGB, "facing the screen"),
        ("looking_down_share", LOOKING_DOWN_RGB, "looking down"),
    ):
        values = [np.nan if getattr(b, attr) is None else getattr(b, attr) for b in bins]
        ax.plot(centres, values, color=tuple(c / 255 for c in colour), marker="o", markersize=4, label=label)
    _hidden_gaps(ax, [b for b in bins if b.facing_share is None], "hidden: fewer than k faces clearly oriented")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(bins[0].start_s, bins[-1].end_s)
    ax.set_ylabel("share of faces clearly oriented")
    _time_axis(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.set_title("Facing the screen over time (apparent head orientation)")
    return _png_data_uri(fig)


def shares_chart(shares_by_word: dict[str, float]) -> str:
    names = list(shares_by_word)
    shares = [shares_by_word[w] for w in names]
    fig = _figure(7, 3)
    ax = fig.add_subplot()
    bars = ax.bar([words.expression(e) for e in names], shares, color=[rgb(e) for e in names])
    ax.bar_label(bars, labels=[words.percent(s) for s in shares], fontsize=8)
    ax.set_ylim(0, max(shares) * 1.15 + 0.01)
    ax.set_ylabel("share of faces read")
    ax.set_title("Expression shares (top apparent expression, moments with at least k faces read)")
    ax.spines[["top", "right"]].set_visible(False)
    return _png_data_uri(fig)


def sample_step(faces: FaceRows, rate_hz: float | None) -> float:
    times = np.unique(faces.column("time_s"))
    if len(times) > 1:
        return float(np.median(np.diff(times)))
    return 1 / rate_hz if rate_hz else 1.0


def tracks_chart(tracks: dict[int, list[tuple[float, str]]], order: list[int], step: float) -> str:
    from matplotlib.patches import Patch

    shown = order[:MAX_TRACK_ROWS]
    fig = _figure(10, 1.2 + 0.24 * len(shown))
    ax = fig.add_subplot()
    for row, tid in enumerate(shown):
        samples = sorted(tracks[tid])
        spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for i, (t, emotion) in enumerate(samples):
            end = t + step if i + 1 == len(samples) else min(samples[i + 1][0], t + step)
            spans[emotion].append((t, max(end - t, step * 0.2)))
        for emotion, segs in spans.items():
            ax.broken_barh(segs, (row - 0.4, 0.8), facecolors=rgb(emotion), linewidth=0)
    ax.set_yticks(range(len(shown)), [f"#{t}" for t in shown], fontsize=7 if len(shown) > 30 else 9)
    ax.set_ylim(len(shown) - 0.5, -0.5)  # most-seen track on top
    ax.set_xlim(0, max(t for tid in shown for t, _ in tracks[tid]) + step)
    ax.set_ylabel("pseudonymous id")
    _time_axis(ax)
    ax.legend(
        handles=[Patch(color=rgb(e), label=words.expression(e)) for e in (*EMOTIONS, UNCERTAIN_WORD)],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=8,
        frameon=False,
    )
    ax.set_title("Per-person timelines (colour = top apparent expression)")
    return _png_data_uri(fig)
