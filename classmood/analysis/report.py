"""``report.html``: one self-contained page summarising an analysis (``classmood analyze --annotate``).

The page is rendered from ``templates/report.html.j2`` (Jinja2, autoescape on: file names and any
text from an input are escaped). It works offline: no scripts, fonts or links to fetch; the charts
(``charts.py``) are PNGs embedded as data URIs. It holds numbers and charts only, never a face
image, and class numbers only under the k rule; the per-person view is added only when asked for.
``write_report`` works from an ``AnalysisResult``; ``report_from_dir`` rebuilds the same page from a
folder that ``classmood analyze`` wrote (``read_back.py``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cache
from pathlib import Path
from typing import Any

from classmood import words
from classmood.analysis import charts
from classmood.analytics.privacy import class_summary
from classmood.pipeline import AnalysisResult


@cache
def _template() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("classmood.analysis", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


def _class_numbers(result: AnalysisResult) -> dict[str, Any]:
    """The whole-input class numbers under the k rule (from summary.json when it has them in full)."""
    given = result.summary.get("class")
    if isinstance(given, dict) and "faces" in given:
        return dict(given)
    return class_summary(result.bins, int(given.get("min_faces", result.min_faces)) if given else result.min_faces)


def _summary_rows(result: AnalysisResult, numbers: dict[str, Any]) -> list[tuple[str, Any]]:
    """The details under the headline: what was read, with which settings, in words."""
    s, faces = result.summary, result.faces
    fps = s.get("analysed_fps")
    rate = s.get("rate_hz")
    rows: list[tuple[str, Any]] = [
        ("Input", s.get("input", result.source)),
        (
            "Frames analysed",
            f"{s.get('frames_analysed', '?')} of {s.get('frames', '?')}"
            + (f" ({rate:g} a second of input)" if isinstance(rate, int | float) and rate > 0 else ""),
        ),
        ("Faces found", f"{s.get('faces', len(faces))} (one per face per analysed frame)"),
        (
            "People seen",
            f"{s.get('tracks', len({f['track_id'] for f in faces}))} (pseudonymous ids, this analysis only)",
        ),
        ("Face detector", words.DETECTOR_WORDS.get(str(s.get("detector")), s.get("detector", "?"))),
        ("Expression model", words.MODEL_WORDS.get(str(s.get("model")), s.get("model", "?"))),
    ]
    if isinstance(fps, int | float):
        rows.append(("Speed", f"{fps:.1f} analysed frames a second"))
    if s.get("skipped_frames"):
        rows.append(("Skipped", f"{words.plural(s['skipped_frames'], 'damaged or unreadable frame')}"))
    if s.get("truncated"):
        rows.append(("Note", "the input ended early (cut off?); this covers what could be read"))
    return rows


def _per_track(result: AnalysisResult) -> dict[str, Any]:
    """Per-person timelines and table: only when asked for."""
    faces = result.faces
    tracks: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for f in faces:
        tracks[int(f["track_id"])].append((float(f["time_s"]), str(f["emotion"])))
    order = sorted(tracks, key=lambda t: (-len(tracks[t]), t))
    step = charts.sample_step(faces, result.summary.get("rate_hz"))
    rows = []
    for tid in order:
        samples = tracks[tid]
        times = [t for t, _ in samples]
        top, n_top = Counter(e for _, e in samples).most_common(1)[0]
        rows.append(
            {
                "track": tid,
                "first": words.clock(min(times)),
                "last": words.clock(max(times)),
                "frames": len(samples),
                "top": words.expression(top),
                "top_share": f"{n_top / len(samples):.0%}",
            }
        )
    return {"chart": charts.tracks_chart(tracks, order, step), "rows": rows, "chart_rows": charts.MAX_TRACK_ROWS}


def render_report(result: AnalysisResult, per_track: bool = False) -> str:
    """The report page as an HTML string; ``per_track`` adds the per-person timelines and table."""
    numbers = _class_numbers(result)
    bins = result.bins
    has_faces = bool(result.faces)
    shown = has_faces and any(b.shares is not None for b in bins)
    k = int(numbers.get("min_faces", result.min_faces))
    facing_on = words.facing_measured(result.summary, result.raw_bins)
    figures = words.headline(
        {**numbers, "facing": facing_on},
        model=str(result.summary.get("model", "?")),
        people=result.summary.get("tracks"),
    )
    return str(
        _template().render(
            title=Path(str(result.source)).name,
            input=str(result.summary.get("input", result.source)),
            headline=figures,
            k_rule=words.k_rule(k),
            mood_explained=words.MOOD_EXPLAINED,
            summary_rows=_summary_rows(result, numbers),
            has_faces=has_faces,
            k=k,
            n_bins=len(bins),
            hidden_bins=sum(b.shares is None for b in bins),
            mood_chart=charts.mood_chart(bins) if shown else None,
            facing_chart=charts.facing_chart(bins)
            if has_faces and any(b.facing_share is not None for b in bins)
            else None,
            facing_explained=words.FACING_EXPLAINED,
            facing_on=facing_on,
            shares_chart=charts.shares_chart(dict(numbers["shares"])) if has_faces and numbers.get("shares") else None,
            per_track=_per_track(result) if per_track and has_faces else None,
            flagged=words.flagged_moments(bins) if has_faces else [],
            flagged_columns=words.FLAGGED_COLUMNS,
        )
    )


def write_report(result: AnalysisResult, path: str | Path, per_track: bool = False) -> Path:
    """Write the report page for ``result`` to ``path`` (a folder gets ``report.html``); returns the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(result, per_track), encoding="utf-8")
    return path


def report_from_dir(out_dir: str | Path, path: str | Path | None = None, per_track: bool = False) -> Path:
    """Rebuild ``report.html`` from faces.csv, class_mood.csv and summary.json in ``out_dir``."""
    from classmood.analysis.read_back import load_result

    out_dir = Path(out_dir)
    return write_report(load_result(out_dir), path or out_dir / "report.html", per_track)
