"""The glossary: every word, colour and number format a person reads, for the app and the report alike.

The code speaks in column names (``negative_share``, ``share_angry``, ``faces_dropped``); people
read words. Keeping the words here, beside the one colour per expression, means a page and the
report never disagree on what a thing is called or which colour it has, and no developer string
reaches a teacher. Numbers are rounded here too (shares to whole per cent, the mood score to two
decimals, face counts to whole faces) and times are shown as a clock in the reader's time zone.

No Streamlit, no matplotlib: the report (``analysis/report.py``) and the app (``app/``) both import it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from classmood.labels import EMOTIONS

if TYPE_CHECKING:
    from classmood.containers import MoodBin

# The one sentence the app and the report show beside every mood score (defined in ``analytics/mood.py``).
MOOD_EXPLAINED = (
    "Mood score, from −1 to +1: the mean over the faces read of how happy (+) or angry, disgusted, afraid "
    "or sad (−) each looks, set so that faces people call neutral average 0."
)

# The sentence shown beside every facing-the-screen number (``vision/pose.py``, ``analytics/mood.py``).
FACING_EXPLAINED = (
    "Facing the screen: the share of faces whose head is turned toward the screen's camera (apparent head "
    "orientation, not gaze), among the faces whose orientation is clear; looking down: the share turned "
    "away by looking down. A head turned to notes, a second monitor or a book is not inattention: these "
    "numbers say where heads point, not what anyone is thinking."
)
FACING_WORDS = {"toward": "facing the screen", "away": "turned away", "unclear": "unclear"}  # per-face view
FACING_RGB = (60, 110, 200)  # the facing-the-screen line
LOOKING_DOWN_RGB = (150, 150, 150)

# How each class is said: the adjective a person would use ("looks afraid"), never the dataset's noun.
EXPRESSION_WORDS: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "afraid",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "neutral": "neutral",
}
NOT_READ = "not read"  # a face present but too small, blurred or unclear to read ("uncertain" in files)

# One colour per expression (RGB): the app's charts, the report's charts and the boxes on video.
EXPRESSION_RGB: dict[str, tuple[int, int, int]] = {
    "angry": (214, 39, 40),
    "disgust": (140, 86, 75),
    "fear": (148, 103, 189),
    "happy": (240, 190, 30),
    "sad": (31, 119, 180),
    "surprise": (255, 127, 14),
    "neutral": (110, 170, 120),
}
NOT_READ_RGB = (200, 200, 200)
MOOD_RGB = (40, 40, 40)  # the mood score's line: dark, apart from every expression's colour

KIND_WORDS = {
    "camera": "live camera",
    "gallery": "class gallery",
    "upload": "uploaded recording",
    "cli": "recording (command line)",
    "students": "students' browsers",
}
STATUS_WORDS = {
    "running": "running",
    "finished": "finished",
    "stopped": "stopped",
    "failed": "failed",
    "incomplete": "incomplete: some rows could not be saved",
    "interrupted": "interrupted",
}
FLAG_WORDS = {
    "negative_jump": "more faces looked negative than just before",
    "faces_dropped": "noticeably fewer faces than just before",
}
MODEL_WORDS = {"accurate": "accurate", "fast": "fast"}
DETECTOR_WORDS = {"libface": "libfacedetection", "mtcnn": "MTCNN", "yunet": "YuNet"}

# Names of the per-bin numbers, for chart legends and tables.
COLUMN_WORDS: dict[str, str] = {
    "valence": "mood score",
    "valence_change": "mood change since each face's start",
    "negative_share": "looking negative",
    "uncertain_share": "not read",
    "faces": "faces present",
    "faces_read": "faces read",
    "tracks": "people seen",
    "facing_share": "facing the screen",
    "looking_down_share": "looking down",
    "faces_oriented": "faces clearly oriented",
    **{f"share_{e}": EXPRESSION_WORDS[e] for e in EMOTIONS},
}


_LINE_RGB = {"mood": MOOD_RGB, "facing": FACING_RGB, "looking_down": LOOKING_DOWN_RGB}


def expression(word: str) -> str:
    """The human word for a class (or ``uncertain``); unknown words come back as they are."""
    return EXPRESSION_WORDS.get(word, NOT_READ if word == "uncertain" else word)


def hex_colour(word: str) -> str:
    """``#rrggbb`` of an expression, of the mood score's line (``mood``) or the facing lines (``facing``,
    ``looking_down``), grey for a face not read."""
    r, g, b = _LINE_RGB[word] if word in _LINE_RGB else EXPRESSION_RGB.get(word, NOT_READ_RGB)
    return f"#{r:02x}{g:02x}{b:02x}"


def plural(n: float, one: str, many: str | None = None) -> str:
    """``1 bin``, ``2 bins``, ``0 faces``: the count rounded to a whole number, with the right noun."""
    count = round(n)
    return f"{count} {one if count == 1 else (many or one + 's')}"


def percent(share: float | None) -> str:
    """A share as whole per cent (``62 %``), ``—`` when unknown."""
    return "—" if share is None or not math.isfinite(share) else f"{round(100 * share)} %"


def score(value: float | None) -> str:
    """A mood score with its sign and two decimals (``+0.04``, ``−0.31``), ``—`` when unknown."""
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{value:+.2f}"
    return "0.00" if text in ("+0.00", "-0.00") else text.replace("-", "−")


def mood(value: float | None, margin: float | None = None) -> str:
    """The mood score with its 95 % margin when known: ``+0.04 ± 0.06``."""
    if value is None or not math.isfinite(value):
        return "—"
    return score(value) + ("" if margin is None or not math.isfinite(margin) else f" ± {margin:.2f}")


def faces(n: float | None) -> str:
    """A mean face count as people say it: whole faces (``22``), one decimal under 10 (``2.5``)."""
    if n is None or not math.isfinite(n):
        return "—"
    return f"{n:.1f}".removesuffix(".0") if n < 10 else f"{round(n)}"


def clock(seconds: float) -> str:
    """Time into a recording or session: ``m:ss``, ``h:mm:ss`` from an hour on."""
    if seconds < 0:
        return "-" + clock(-seconds)
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def span(start_s: float, end_s: float) -> str:
    """A time bin as ``0:05–0:10``."""
    return f"{clock(start_s)}–{clock(end_s)}"


def local_time(when: str | float | datetime | None, zone: tzinfo | None = None) -> str:
    """An ISO time (as stored, UTC), epoch seconds or a datetime as a local clock: ``3 Dec 2025, 15:45``.

    ``zone``: the reader's time zone (the browser's, in the app); None: this machine's."""
    if when is None or when == "":
        return "—"
    try:
        if isinstance(when, datetime):
            moment = when
        elif isinstance(when, int | float):
            moment = datetime.fromtimestamp(float(when)).astimezone()
        else:
            moment = datetime.fromisoformat(str(when))
    except (ValueError, OverflowError, OSError):
        return str(when)
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is this machine's
    local = moment.astimezone(zone)
    return f"{local.day} {local:%b %Y, %H:%M}"


def flags(names: Sequence[str] | str) -> str:
    """Flag names (a list or the ``;``-joined column) in words."""
    items = [f for f in names.split(";") if f] if isinstance(names, str) else list(names)
    return "; ".join(FLAG_WORDS.get(f, f.replace("_", " ")) for f in items)


def top_expressions(shares: Mapping[str, float] | None, n: int = 2, at_least: float = 0.05) -> str:
    """The most common expressions with their shares, ``neutral 62 % · happy 21 %`` (those under 5 % left out)."""
    if not shares:
        return "—"
    ranked = sorted(((v, e) for e, v in shares.items() if v >= at_least), reverse=True)[:n]
    return " · ".join(f"{expression(e)} {percent(v)}" for v, e in ranked) or "—"


def k_rule(k: int) -> str:
    """The k rule, said once per result: what k counts and what it hides."""
    return (
        f"Class numbers come only from moments with at least k = {plural(k, 'face')} read "
        "(faces present but not read do not count), so they never describe one or two people."
    )


@dataclass(frozen=True)
class Figure:
    """One headline figure: a label, its value and a line that says what it is."""

    label: str
    value: str
    note: str


def headline(
    numbers: Mapping[str, Any],
    *,
    model: str,
    people: int | None = None,
    people_label: str = "people seen",
    faces_now: int | None = None,
    read_now: int | None = None,
    now: Mapping[str, Any] | None = None,
    facing_now: Mapping[str, Any] | None = None,
) -> list[Figure]:
    """The figures every result opens with, from ``privacy.class_summary`` numbers (``numbers``).

    Faces present and people seen (counts, always shown); the share of faces read, the top
    expressions and the mood score with its 95 % margin (only what the k rule lets through); the
    share of moments hidden by k; the model. ``now`` (a live ``privacy.current_view``, None below k)
    with ``faces_now``/``read_now`` makes the figures describe this moment instead of the whole run,
    and ``facing_now`` (a live ``privacy.current_facing``, None below k) its share facing the screen.
    """
    k = int(numbers.get("min_faces", 1))
    live = faces_now is not None
    if live:
        present = Figure("Faces now", faces(faces_now), f"{plural(read_now or 0, 'face')} read")
        view = now or {}
        read = None if not faces_now else (read_now or 0) / faces_now
        shares, value, margin = view.get("shares"), view.get("valence"), view.get("mood_margin")
    else:
        present = Figure("Faces present", faces(numbers.get("faces")), "on average, in each analysed frame")
        uncertain = numbers.get("uncertain_share")
        read = None if uncertain is None else 1.0 - uncertain
        shares, value, margin = numbers.get("shares"), numbers.get("valence"), numbers.get("mood_margin")
    hidden_note = f"needs at least k = {plural(k, 'face')} read"
    figures = [present]
    if people is not None:
        figures.append(Figure(people_label.capitalize(), str(people), "pseudonymous, this session only"))
    read_note = "the rest too small, blurred or unclear" if read is not None else hidden_note
    mood_note = "−1 negative · 0 calm · +1 happy" if value is not None else hidden_note
    figures += [
        Figure("Faces read", percent(read), read_note),
        Figure("Mostly", top_expressions(shares), "top apparent expression" if shares else hidden_note),
        Figure("Mood score", mood(value, margin), mood_note),
        facing_figure({"facing": False} if numbers.get("facing") is False else facing_now if live else numbers, k),
    ]
    if not live:
        shown, hidden = int(numbers.get("bins_shown", 0)), int(numbers.get("bins_hidden", 0))
        total = shown + hidden
        figures.append(
            Figure(
                "Hidden by k",
                percent(hidden / total) if total else "—",
                f"{hidden} of {plural(total, 'moment')} had fewer than {plural(k, 'face')} read",
            )
        )
    figures.append(Figure("Model", MODEL_WORDS.get(model, model), "reads the expressions"))
    return figures


def facing_measured(summary: Mapping[str, Any], bins: Sequence[MoodBin]) -> bool:
    """Whether an analysis estimated head orientation: its summary says (``facing``), or, for one saved
    before summaries said, whether any of its bins counted a face clearly oriented."""
    if "facing" in summary:
        return summary["facing"] is not False
    return any(b.faces_oriented is not None for b in bins)


def facing_figure(numbers: Mapping[str, Any] | None, k: int) -> Figure:
    """ "Facing the screen" with the share looking down under it, or why it is hidden (k counts the faces
    whose orientation is clear)."""
    share = (numbers or {}).get("facing_share")
    if numbers is not None and numbers.get("facing") is False:
        return Figure("Facing the screen", "off", "head orientation not estimated in this analysis")
    if share is None:
        return Figure("Facing the screen", "—", f"needs at least k = {plural(k, 'face')} clearly oriented")
    down = (numbers or {}).get("looking_down_share")
    return Figure("Facing the screen", percent(share), f"looking down {percent(down)} · head orientation")


# The columns of a flagged moment, as the app's table and the report's name them (keys: the report's).
FLAGGED_COLUMNS = {
    "time": "When",
    "what": "What",
    "faces": "Faces present",
    "negative": "Looking negative",
    "mood": "Mood score",
}


def flagged_moments(bins: Sequence[MoodBin]) -> list[dict[str, str]]:
    """The flagged moments among ``bins`` in words: when, what, faces present, the share looking negative
    and the mood score (``FLAGGED_COLUMNS`` names them)."""
    return [
        {
            "time": span(b.start_s, b.end_s),
            "what": flags(b.flags),
            "faces": faces(b.faces),
            "negative": percent(b.negative_share),
            "mood": score(b.valence),
        }
        for b in bins
        if b.flags
    ]
