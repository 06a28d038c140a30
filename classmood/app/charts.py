"""The app's charts, drawn with Altair (Streamlit's own Vega-Lite, served by this app: nothing fetched).

Streamlit's quick charts draw nothing for a single row (one line of one point) and label an axis
of seconds "0.000000", so a class that passed k in one 5-s bin looked empty. These charts draw
points and bars, which show one bin as well as a hundred; their times read as a clock (the time
into a recording, ``m:ss``, or the local time of day for a live or saved session, in the
browser's own time zone); every colour and word comes from the glossary (``classmood.words``),
the same as the report's. A chart with nothing to draw is None, and the page says why instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from classmood import words
from classmood.containers import MoodBin
from classmood.labels import EMOTIONS

EXPRESSION_ORDER = [words.expression(e) for e in EMOTIONS]
_COLOURS = [words.hex_colour(e) for e in EMOTIONS]


def _alt() -> Any:
    import altair as alt

    return alt


def _times(seconds: Sequence[float], started_at: float | None) -> pd.Series:
    """Datetimes for Vega: the local clock when ``started_at`` (epoch seconds) is known, else the time into
    the input (naive times from midnight, which Vega shows as they are)."""
    s = pd.Series(list(seconds), dtype="float64")
    if started_at is not None:
        return pd.to_datetime(started_at + s, unit="s", utc=True)
    return pd.Timestamp("2000-01-01") + pd.to_timedelta(s, unit="s")


def _x(started_at: float | None, longest_s: float, field: str = "when") -> Any:
    alt = _alt()
    clock = "%H:%M:%S" if started_at is not None else ("%-H:%M:%S" if longest_s >= 3600 else "%-M:%S")
    title = "local time" if started_at is not None else "time into the recording"
    return alt.X(f"{field}:T", title=title, axis=alt.Axis(format=clock, labelOverlap=True, tickCount=6))


def _spans(df: pd.DataFrame, bins: Sequence[MoodBin], started_at: float | None) -> dict[str, Any]:
    """Bars from each bin's start to its end: adds ``when``/``until`` to ``df`` (rows with ``start``/``end``
    seconds) and returns the x encodings that draw them."""
    df["when"], df["until"] = _times(df["start"], started_at), _times(df["end"], started_at)
    return {"x": _x(started_at, max(b.end_s for b in bins)), "x2": "until:T"}


def expression_scale() -> Any:
    return _alt().Scale(domain=EXPRESSION_ORDER, range=_COLOURS)


def mood_chart(bins: Sequence[MoodBin], started_at: float | None = None, change: bool = False) -> Any | None:
    """The mood score per shown bin (points joined by a line), on -1..+1 with calm (0) marked; None when no
    bin shows one. ``change``: each face's change from its own start instead (``valence_change``)."""
    alt = _alt()
    rows: list[tuple[MoodBin, float]] = []
    for b in bins:
        value = b.valence_change if change else b.valence
        if not b.suppressed and value is not None:
            rows.append((b, value))
    if not rows:
        return None
    what = words.COLUMN_WORDS["valence_change" if change else "valence"]
    df = pd.DataFrame(
        {
            "when": _times([(b.start_s + b.end_s) / 2 for b, _ in rows], started_at),
            "score": [float(v) for _, v in rows],
            "moment": [words.span(b.start_s, b.end_s) for b, _ in rows],
            "value": [words.score(v) for _, v in rows],
        }
    )
    longest = max(b.end_s for b in bins)
    y = alt.Y("score:Q", title=what, scale=alt.Scale(domain=[-1, 1]), axis=alt.Axis(values=[-1, -0.5, 0, 0.5, 1]))
    line = (
        alt.Chart(df)
        .mark_line(
            point=alt.OverlayMarkDef(size=60, filled=True, color=words.hex_colour("mood")),
            color=words.hex_colour("mood"),
            strokeWidth=2,
        )
        .encode(
            x=_x(started_at, longest),
            y=y,
            tooltip=[alt.Tooltip("moment:N", title="moment"), alt.Tooltip("value:N", title=what)],
        )
    )
    if len(df) == 1:
        line = line.mark_point(size=90, filled=True, color=words.hex_colour("mood"))
    calm = alt.Chart(pd.DataFrame({"score": [0.0]})).mark_rule(strokeDash=[4, 4], color="#888").encode(y="score:Q")
    return (calm + line).properties(height=220)


def _legend() -> Any:
    # right of the plot, compact: Streamlit sizes the whole chart to its height, so a legend below would squeeze
    # the plot away and a tall one on the right would be cut off
    return _alt().Legend(orient="right", title=None, symbolType="square", rowPadding=0, labelFontSize=11, symbolSize=70)


def shares_chart(bins: Sequence[MoodBin], started_at: float | None = None) -> Any | None:
    """Stacked bars: per shown bin, the share of faces read by top apparent expression; None when none shows.

    The stacks are computed here (each bar is a rectangle from its lower to its upper share), which draws
    a single bin as one full bar."""
    alt = _alt()
    rows = []
    for b in bins:
        if b.suppressed or b.shares is None:
            continue
        low = 0.0
        for e in EMOTIONS:
            share = float(b.shares[e])
            rows.append(
                {
                    "start": b.start_s,
                    "end": b.end_s,
                    "low": low,
                    "high": low + share,
                    "expression": words.expression(e),
                    "moment": words.span(b.start_s, b.end_s),
                    "value": words.percent(share),
                }
            )
            low += share
    if not rows:
        return None
    df = pd.DataFrame(rows)
    spans = _spans(df, bins, started_at)
    return (
        alt.Chart(df)
        .mark_bar(stroke="white", strokeWidth=0.5)
        .encode(
            **spans,
            y=alt.Y("low:Q", title="share of faces read", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            y2="high:Q",
            color=alt.Color("expression:N", scale=expression_scale(), sort=EXPRESSION_ORDER, legend=_legend()),
            tooltip=["moment:N", "expression:N", alt.Tooltip("value:N", title="share")],
        )
        .properties(height=230)
    )


def facing_chart(bins: Sequence[MoodBin], started_at: float | None = None) -> Any | None:
    """Per bin whose facing shows under k: the share of faces facing the screen and the share looking
    down (points joined by lines, 0..100 %); None when no bin shows them."""
    alt = _alt()
    shown = [b for b in bins if b.facing_share is not None]
    if not shown:
        return None
    df = pd.DataFrame(
        [
            {
                "when": (b.start_s + b.end_s) / 2,
                "share": float(v or 0.0),
                "what": what,
                "moment": words.span(b.start_s, b.end_s),
                "value": words.percent(v),
            }
            for b in shown
            for what, v in (("facing the screen", b.facing_share), ("looking down", b.looking_down_share))
        ]
    )
    df["when"] = _times(df["when"], started_at)
    colours = [words.hex_colour("facing"), words.hex_colour("looking_down")]
    return (
        alt.Chart(df)
        .mark_line(point=alt.OverlayMarkDef(size=50, filled=True), strokeWidth=2)
        .encode(
            x=_x(started_at, max(b.end_s for b in bins)),
            y=alt.Y("share:Q", title="share of faces", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            color=alt.Color(
                "what:N", scale=alt.Scale(domain=["facing the screen", "looking down"], range=colours), legend=_legend()
            ),
            tooltip=["moment:N", "what:N", alt.Tooltip("value:N", title="share")],
        )
        .properties(height=170)
    )


def faces_chart(bins: Sequence[MoodBin], started_at: float | None = None) -> Any | None:
    """Faces present and, inside them, faces read per bin (counts: shown for every bin, hidden ones included)."""
    alt = _alt()
    if not bins:
        return None
    df = pd.DataFrame(
        [
            {
                "start": b.start_s,
                "end": b.end_s,
                "zero": 0.0,
                "count": float(v),
                "what": what,
                "moment": words.span(b.start_s, b.end_s),
                "value": words.faces(v),
            }
            for b in bins
            for what, v in (("faces present", b.faces), ("faces read", b.read_faces))
        ]
    )
    spans = _spans(df, bins, started_at)
    return (
        alt.Chart(df)
        .mark_bar(stroke="white", strokeWidth=0.5)
        .encode(
            **spans,
            y=alt.Y("zero:Q", title="faces", scale=alt.Scale(domainMin=0)),
            y2="count:Q",
            color=alt.Color(
                "what:N",
                scale=alt.Scale(domain=["faces present", "faces read"], range=["#c9d3df", "#4c6a8a"]),
                legend=_legend(),
            ),
            order=alt.Order("what:N"),
            tooltip=["moment:N", "what:N", alt.Tooltip("value:N", title="faces")],
        )
        .properties(height=150)
    )


def series_chart(series: Sequence[Mapping[str, Any]], started_at: float | None) -> Any | None:
    """The live mood score per analysed frame over the last minutes (points hidden below k are left out)."""
    alt = _alt()
    shown = [p for p in series if p.get("valence") is not None]
    if not shown:
        return None
    df = pd.DataFrame(
        {
            "when": _times([p["time_s"] for p in shown], started_at),
            "score": [float(p["valence"]) for p in shown],
            "value": [words.score(p["valence"]) for p in shown],
        }
    )
    longest = max(float(p["time_s"]) for p in series)
    chart = (
        alt.Chart(df)
        .mark_line(
            point=alt.OverlayMarkDef(size=30, filled=True, color=words.hex_colour("mood")),
            color=words.hex_colour("mood"),
        )
        .encode(
            x=_x(started_at, longest),
            y=alt.Y("score:Q", title="mood score", scale=alt.Scale(domain=[-1, 1])),
            tooltip=[alt.Tooltip("value:N", title="mood score")],
        )
    )
    calm = alt.Chart(pd.DataFrame({"score": [0.0]})).mark_rule(strokeDash=[4, 4], color="#888").encode(y="score:Q")
    return (calm + chart).properties(height=170)


def now_chart(shares: Mapping[str, float]) -> Any:
    """Horizontal bars: the share of faces read now by top apparent expression, in the glossary's colours."""
    alt = _alt()
    df = pd.DataFrame(
        {
            "expression": [words.expression(e) for e in EMOTIONS],
            "share": [float(shares.get(e, 0.0)) for e in EMOTIONS],
            "value": [words.percent(shares.get(e, 0.0)) for e in EMOTIONS],
        }
    )
    bars = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("expression:N", sort=EXPRESSION_ORDER, title=None, axis=alt.Axis(labelOverlap=False)),
            x=alt.X(
                "share:Q", title="share of faces read now", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")
            ),
            color=alt.Color("expression:N", scale=expression_scale(), legend=None),
            tooltip=["expression:N", alt.Tooltip("value:N", title="share")],
        )
    )
    labels = bars.mark_text(align="left", dx=3, color="#333").encode(text="value:N", color=alt.value("#333"))
    return (bars + labels).properties(height=215)
