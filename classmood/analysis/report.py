"""``report.html``: one self-contained page summarising an analysis (``classmood analyze --annotate``).

The page works offline: no scripts, fonts or links to fetch; the charts are matplotlib PNGs
(Agg, no pyplot state, so it is safe in the web app's threads) embedded as base64 data URIs. It
holds numbers and charts only, never a face image. ``write_report`` works from an
``AnalysisResult``; ``report_from_dir`` rebuilds the same page from a folder that ``classmood
analyze`` wrote (faces.csv, class_mood.csv, summary.json).
"""

from __future__ import annotations

import atexit
import base64
import csv
import html
import io
import json
import os
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from classmood.analytics.face_rows import FaceRows
from classmood.analytics.privacy import DEFAULT_MIN_FACES, class_summary
from classmood.containers import UNCERTAIN_WORD, MoodBin
from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS, FACE_COLUMNS
from classmood.pipeline import AnalysisResult
from classmood.vision.annotate import EXPRESSION_RGB

UNCERTAIN_RGB = (175, 175, 175)  # faces too small, blurred or unconfident to read: grey, apart from the 7

MAX_TRACK_ROWS = 60  # rows in the per-track chart (most-seen tracks first)

NOTICE_HTML = (
    "<strong>What this is, and is not.</strong> classmood reports <em>apparent facial expressions</em> "
    "(what a face looks like to a model trained on posed and in-the-wild photos), not inner emotional "
    "states, attention or learning. Expressions vary with culture, camera, lighting and individual "
    "habits, and the model makes mistakes. Inferring emotions of natural persons in education "
    "institutions is <strong>prohibited in the EU</strong> by the AI Act, Art. 5(1)(f) (Regulation (EU) "
    "2024/1689), except for medical or safety reasons. Use classmood only where that is lawful and only "
    "with the informed consent of everyone on camera; never use it to assess or grade individuals."
)

FLAG_TEXT = {
    "negative_jump": "share of apparent negative expressions rose sharply from the previous bin",
    "faces_dropped": "noticeably fewer faces visible than in the previous bin",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1040px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
.notice{background:#fff4e5;border-left:5px solid #e8a33d;padding:.8em 1em;margin:1em 0}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .7em;text-align:left}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;border:1px solid #eee}.note{color:#555;font-size:.92em}
.empty{font-size:1.1em;padding:1em;background:#f0f4f8;border-left:5px solid #6c8ebf}
"""


def _rgb(emotion: str) -> tuple[float, float, float]:
    r, g, b = EXPRESSION_RGB.get(emotion, UNCERTAIN_RGB)
    return (r / 255, g / 255, b / 255)


def _clock(seconds: float) -> str:
    if seconds < 0:
        return "-" + _clock(-seconds)
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _private_matplotlib_cache() -> None:
    """Matplotlib keeps a font cache in ~/.cache/matplotlib and a config folder in ~/.config: point it at a
    folder of this process's own, removed at exit, so that making a report writes nothing in the home folder.
    A user's own MPLCONFIGDIR is respected."""
    if "MPLCONFIGDIR" in os.environ or "matplotlib" in sys.modules:
        return
    folder = tempfile.mkdtemp(prefix="classmood-matplotlib-")
    atexit.register(shutil.rmtree, folder, True)
    os.environ["MPLCONFIGDIR"] = folder


def _figure(width: float, height: float) -> Any:
    _private_matplotlib_cache()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png_data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _time_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _clock(v)))
    ax.set_xlabel("time in input (m:ss)")


def _mood_chart(bins: list[MoodBin]) -> str:
    fig = _figure(10, 3.8)
    ax = fig.add_subplot()
    shown = [b for b in bins if b.shares is not None]
    starts = np.array([b.start_s for b in shown])
    widths = np.array([b.end_s - b.start_s for b in shown])
    bottom = np.zeros(len(shown))
    for e in EMOTIONS:
        vals = np.array([b.shares[e] if b.shares else 0.0 for b in shown])
        ax.bar(starts, vals, widths, bottom=bottom, align="edge", color=_rgb(e), label=e, linewidth=0)
        bottom += vals
    gap_label = "too few faces: suppressed"
    for b in bins:
        if b.shares is None:
            ax.axvspan(
                b.start_s, b.end_s, facecolor="#f2f2f2", edgecolor="#bbbbbb", hatch="//", linewidth=0, label=gap_label
            )
            gap_label = "_nolegend_"
    flagged = [b for b in bins if b.flags]
    if flagged:
        ax.scatter(
            [(b.start_s + b.end_s) / 2 for b in flagged],
            [1.04] * len(flagged),
            marker="v",
            color="black",
            clip_on=False,
            zorder=5,
            label="flagged (see table)",
        )
    ax.set_ylim(0, 1)
    ax.set_xlim(bins[0].start_s, bins[-1].end_s)
    ax.set_ylabel("share of faces (top apparent expression)")
    _time_axis(ax)
    ax2 = ax.twinx()
    centres = [(b.start_s + b.end_s) / 2 for b in bins]
    valence = [np.nan if b.valence is None else b.valence for b in bins]
    ax2.plot(centres, valence, color="black", marker="o", markersize=3, linewidth=1.5, label="valence")
    ax2.axhline(0, color="black", linewidth=0.5, linestyle=":")
    ax2.set_ylim(-1, 1)
    ax2.set_ylabel("valence (P(happy) − P(negative))")
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(handles + h2, labels + l2, loc="upper left", bbox_to_anchor=(1.08, 1), fontsize=8, frameon=False)
    ax.set_title("Class mood over time", pad=14)
    return _png_data_uri(fig)


def _shares_chart(shares_by_word: dict[str, float]) -> str:
    words = list(shares_by_word)
    shares = [shares_by_word[w] for w in words]
    fig = _figure(7, 3)
    ax = fig.add_subplot()
    bars = ax.bar(words, shares, color=[_rgb(e) for e in words])
    ax.bar_label(bars, labels=[f"{s:.0%}" for s in shares], fontsize=8)
    ax.set_ylim(0, max(shares) * 1.15 + 0.01)
    ax.set_ylabel("share of faces read")
    ax.set_title("Expression shares (top apparent expression, bins with at least k faces)")
    ax.spines[["top", "right"]].set_visible(False)
    return _png_data_uri(fig)


def _sample_step(faces: FaceRows, rate_hz: float | None) -> float:
    times = np.unique(faces.column("time_s"))
    if len(times) > 1:
        return float(np.median(np.diff(times)))
    return 1 / rate_hz if rate_hz else 1.0


def _tracks_chart(tracks: dict[int, list[tuple[float, str]]], order: list[int], step: float) -> str:
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
            ax.broken_barh(segs, (row - 0.4, 0.8), facecolors=_rgb(emotion), linewidth=0)
    ax.set_yticks(range(len(shown)), [f"#{t}" for t in shown], fontsize=7 if len(shown) > 30 else 9)
    ax.set_ylim(len(shown) - 0.5, -0.5)  # most-seen track on top
    ax.set_xlim(0, max(t for tid in shown for t, _ in tracks[tid]) + step)
    ax.set_ylabel("pseudonymous track")
    _time_axis(ax)
    ax.legend(
        handles=[Patch(color=_rgb(e), label=e) for e in (*EMOTIONS, UNCERTAIN_WORD)],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=8,
        frameon=False,
    )
    ax.set_title("Per-track timelines (colour = top apparent expression)")
    return _png_data_uri(fig)


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def _class_numbers(result: AnalysisResult) -> dict[str, Any]:
    """The whole-input class numbers under the k rule (from summary.json when it has them)."""
    given = result.summary.get("class")
    return given if isinstance(given, dict) else class_summary(result.bins, result.min_faces)


def render_report(result: AnalysisResult, per_track: bool = False) -> str:
    """The report page as an HTML string; ``per_track`` adds the per-person timelines and table."""
    s, faces = result.summary, result.faces
    esc = html.escape
    fps = s.get("analysed_fps")
    numbers = _class_numbers(result)
    uncertain = numbers.get("uncertain_share")
    summary_rows: list[tuple[str, Any]] = [
        ("Input", s.get("input", result.source)),
        ("Frames", s.get("frames", "?")),
        ("Frames analysed", f"{s.get('frames_analysed', '?')} (rate {s.get('rate_hz', '?')}/s of input)"),
        ("Faces (detections)", s.get("faces", len(faces))),
        ("Tracks (pseudonymous ids)", s.get("tracks", len({f["track_id"] for f in faces}))),
        (
            "Faces not read (uncertain)",
            "hidden (fewer than k faces)"
            if uncertain is None
            else f"{uncertain:.0%}: too small, blurred or unclear to read; counted, never given an expression",
        ),
        (
            "Privacy (k)",
            f"class numbers only from time bins with at least {numbers.get('min_faces', result.min_faces)} faces: "
            f"{numbers.get('bins_shown', 0)} bins shown, {numbers.get('bins_hidden', 0)} hidden",
        ),
        ("Detector", s.get("detector", "?")),
        ("Model", s.get("model", "?")),
        ("Analysed frames/s", "?" if fps is None else fps),
    ]
    if s.get("truncated"):
        summary_rows.append(("Note", "the input ended early (truncated?); this covers what could be read"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>classmood report: {esc(Path(str(result.source)).name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>classmood report</h1>",
        f'<p class="note">{esc(str(s.get("input", result.source)))}</p>',
        f'<div class="notice">{NOTICE_HTML}</div>',
        "<h2>Summary</h2>",
        _table(summary_rows),
    ]
    if not faces:
        parts.append(
            '<p class="empty">No faces were found in this input, so there is no class mood, expression share '
            "or track timeline to show. Check that faces are visible and large enough (about 40 px or more), "
            "or try <code>--detector mtcnn</code>.</p>"
        )
    else:
        parts += _charts_and_tables(result, numbers, per_track)
    parts.append(
        '<p class="note">Written by classmood. Numbers only: this page contains no face images; '
        "track ids are pseudonymous and valid within this analysis only.</p></body></html>"
    )
    return "\n".join(parts)


def _charts_and_tables(result: AnalysisResult, numbers: dict[str, Any], per_track: bool) -> list[str]:
    bins = result.bins
    k = numbers.get("min_faces", result.min_faces)
    parts = ["<h2>Class mood over time</h2>"]
    if bins and not any(b.shares is not None for b in bins):
        parts.append(
            f'<p class="empty">No time bin had at least {k} faces, so no class mood is shown: with fewer faces '
            "the numbers would describe one or two people, not a class.</p>"
        )
    elif bins:
        parts.append(f'<img alt="class mood over time" src="{_mood_chart(bins)}">')
        suppressed = sum(b.shares is None for b in bins)
        note = (
            "Each bar is one time bin: the shares of faces by top apparent expression; the black line is the "
            "mean valence (P(happy) minus P(angry, disgust, fear, sad)), from −1 to 1."
        )
        if suppressed:
            note += (
                f" {suppressed} of {len(bins)} bins had too few faces for a class-level view and are shown as "
                "hatched gaps, so that no one or two students are singled out."
            )
        parts.append(f'<p class="note">{note}</p>')
    else:
        parts.append('<p class="note">No time bins were closed.</p>')

    parts.append("<h2>Expression shares</h2>")
    if numbers.get("shares"):
        shares = dict(numbers["shares"])
        parts.append(f'<img alt="expression shares" src="{_shares_chart(shares)}">')
    else:
        parts.append(f'<p class="empty">Hidden: no time bin had at least {k} faces.</p>')
    if per_track:
        parts += _per_track(result)
    else:
        parts.append(
            '<p class="note">Per-person timelines are not part of this report: they single people out. An analyst '
            "who needs them asks explicitly (<code>classmood analyze --annotate --per-track</code>).</p>"
        )
    parts += _flagged(bins)
    return parts


def _per_track(result: AnalysisResult) -> list[str]:
    """Per-person timelines and table: only when asked for, and labelled as such."""
    esc = html.escape
    faces = result.faces
    tracks: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for f in faces:
        tracks[int(f["track_id"])].append((float(f["time_s"]), str(f["emotion"])))
    order = sorted(tracks, key=lambda t: (-len(tracks[t]), t))
    step = _sample_step(faces, result.summary.get("rate_hz"))
    parts = [
        "<h2>Per-person view: per-track timelines</h2>",
        '<p class="notice">Asked for with <code>--per-track</code>. This section follows individual (pseudonymous) '
        "faces and can single people out; share it only with people entitled to see it.</p>",
        f'<img alt="per-track timelines" src="{_tracks_chart(tracks, order, step)}">',
    ]
    if len(order) > MAX_TRACK_ROWS:
        parts.append(
            f'<p class="note">The chart shows the {MAX_TRACK_ROWS} most-seen of {len(order)} tracks; '
            "the table below lists all of them.</p>"
        )
    rows = []
    for tid in order:
        samples = tracks[tid]
        times = [t for t, _ in samples]
        top, n_top = Counter(e for _, e in samples).most_common(1)[0]
        rows.append(
            f"<tr><td>#{tid}</td><td class='num'>{_clock(min(times))}</td><td class='num'>{_clock(max(times))}</td>"
            f"<td class='num'>{len(samples)}</td><td>{esc(top)} ({n_top / len(samples):.0%})</td></tr>"
        )
    parts.append(
        f"<details><summary>Per-track table ({len(order)} tracks)</summary><table><tr><th>Track</th>"
        "<th>First seen</th><th>Last seen</th><th>Analysed frames</th><th>Most frequent apparent expression</th>"
        f"</tr>{''.join(rows)}</table></details>"
    )
    return parts


def _flagged(bins: list[MoodBin]) -> list[str]:
    esc = html.escape
    parts = ["<h2>Flagged moments</h2>"]
    flagged = [b for b in bins if b.flags]
    if not flagged:
        parts.append('<p class="note">No flagged moments.</p>')
    else:
        body = "".join(
            f"<tr><td>{_clock(b.start_s)}–{_clock(b.end_s)}</td>"
            f"<td>{esc('; '.join(FLAG_TEXT.get(f, f) for f in b.flags))}</td>"
            f"<td class='num'>{b.faces:.1f}</td><td class='num'>{_pct(b.negative_share)}</td>"
            f"<td class='num'>{'–' if b.valence is None else f'{b.valence:+.2f}'}</td></tr>"
            for b in flagged
        )
        parts.append(
            "<table><tr><th>Time</th><th>What</th><th>Mean faces</th><th>Negative share</th><th>Valence</th></tr>"
            f"{body}</table>"
        )
    return parts


def write_report(result: AnalysisResult, path: str | Path, per_track: bool = False) -> Path:
    """Write the report page for ``result`` to ``path`` (a folder gets ``report.html``); returns the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(result, per_track), encoding="utf-8")
    return path


def _number(text: str | None, kind: type = float) -> Any:
    return None if text in (None, "") else kind(text)


def _face_row(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in FACE_COLUMNS:
        v = row.get(col, "")
        out[col] = v if col == "emotion" else _number(v, int if col in ("frame", "track_id") else float)
    return out


def load_result(out_dir: str | Path) -> AnalysisResult:
    """Read an ``AnalysisResult`` back from a folder written by ``classmood analyze``."""
    out_dir = Path(out_dir)
    faces_csv = out_dir / "faces.csv"
    if not faces_csv.is_file():
        raise ClassmoodError(f"{out_dir}: no faces.csv here (not a 'classmood analyze' output folder?)")
    summary_json = out_dir / "summary.json"
    summary: dict[str, Any] = json.loads(summary_json.read_text()) if summary_json.is_file() else {}
    with open(faces_csv, newline="", encoding="utf-8") as fh:
        faces = [_face_row(r) for r in csv.DictReader(fh)]
    bins: list[MoodBin] = []
    mood_csv = out_dir / "class_mood.csv"
    if mood_csv.is_file():
        with open(mood_csv, newline="", encoding="utf-8") as fh:
            bins = [MoodBin.from_row(r) for r in csv.DictReader(fh)]
    k = (summary.get("class") or {}).get("min_faces", DEFAULT_MIN_FACES)
    return AnalysisResult(str(summary.get("input", out_dir)), FaceRows(faces), bins, summary, min_faces=int(k))


def report_from_dir(out_dir: str | Path, path: str | Path | None = None, per_track: bool = False) -> Path:
    """Rebuild ``report.html`` from faces.csv, class_mood.csv and summary.json in ``out_dir``."""
    out_dir = Path(out_dir)
    return write_report(load_result(out_dir), path or out_dir / "report.html", per_track)
