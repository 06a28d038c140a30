"""The k rule, in one place: class-level numbers come only from time bins with at least k faces read.

k counts the faces a number is computed from: faces *read* (present, classified and not
``uncertain``), per analysed frame on average in a bin, or now in a live view. Faces present but not
read count towards nothing but the face counts, so they cannot lift a view over k: with k = 3 and
three faces of which one is unreadable, the shares would describe two people, and they are hidden.

Everything a teacher or a file sees as a class-level number - expression shares, mean
probabilities, valence, the negative and uncertain shares, the change from each face's start,
the shares facing the screen and looking down, flagged moments, summaries, charts, exports and
session comparisons - is computed here from the
*raw* bins of ``MoodAggregator`` (which know nothing about k) after ``apply_k`` has blanked every
bin whose mean face count is below k. Counts of faces are not expressions and stay visible.

The facing shares are counted over a different set of faces, those whose head orientation was clear
(toward or away, read or not: ``faces_oriented``), and shown only where at least k of them were.

Keeping the raw bins and applying k when something is shown is what lets a changed k re-apply to
what is already on screen (a running or a finished session), in both directions: the raw numbers
add nothing to what the session store already holds per face (its faces table), and they are
never written to a file or shown without passing through this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from classmood.analytics.mood import NEGATIVE, facing_counts, flag_bins, mean_mood, mood_margin, mood_scores
from classmood.containers import MoodBin
from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS

if TYPE_CHECKING:
    import pandas as pd

    from classmood.containers import Detections

DEFAULT_MIN_FACES = 5
HIDDEN_NOTE = (
    "class-level numbers need at least k faces read, the facing shares k faces clearly oriented; "
    "bins with fewer are hidden"
)


def check_min_faces(k: Any) -> int:
    """k as an int, or a one-line error: at least 1 (1 turns the protection off, 0 would be meaningless)."""
    if isinstance(k, bool) or not isinstance(k, int | float | np.integer | np.floating):
        raise ClassmoodError(f"k (min faces) must be a whole number of at least 1, not {k!r}")
    if not math.isfinite(float(k)) or float(k) != int(k) or int(k) < 1:
        raise ClassmoodError(f"k (min faces) must be a whole number of at least 1, not {k}")
    return int(k)


def floored_k(asked: int | None, own: int, floor: int | None) -> tuple[int, str | None]:
    """The k a read of a saved session uses, and a note when a lower k was asked for and refused.

    ``asked`` is the reader's k (None: the session's ``own``, the k it was analysed with); ``floor`` is
    the k promised with the session (a student-side class: the k its students were shown before they
    consented), which no read goes below, by any route: a lower request is raised to the floor, and
    the note says so. A session without a floor reads at any k >= 1 (its per-face rows are the
    analyst's anyway). Every read path of the store takes its k from here.
    """
    k = check_min_faces(own if asked is None else asked)
    if floor is None:
        return k, None
    floor = check_min_faces(floor)
    if k >= floor:
        return k, None
    return floor, f"k raised from {k} to {floor}: this class promised its students k >= {floor}"


def blank_below(rows: Sequence[Mapping[str, Any]], floor: int) -> list[dict[str, Any]]:
    """Bin rows (``MoodBin.as_row``) with the class numbers of every bin below ``floor`` faces removed.

    What a session with a k floor stores: since no read may go below the floor, the raw numbers of
    such a bin have no reader, and a database that never held them cannot leak them.
    """
    floor = check_min_faces(floor)
    out = []
    for row in rows:
        b = MoodBin.from_row(dict(row))
        if enough_faces(b.read_faces, floor) and _facing_shown(b, floor):
            out.append(dict(row))
        else:
            out.append(_facing_under_k(b if enough_faces(b.read_faces, floor) else _hidden(b), floor).as_row())
    return out


def enough_faces(faces_read: float, k: int) -> bool:
    """The rule itself: a bin (mean faces read per analysed frame) or a frame (faces read now) may show class
    numbers. A small tolerance absorbs the rounding of stored means (2.999 read faces is 3)."""
    return faces_read >= k - 1e-6


def _hidden(b: MoodBin) -> MoodBin:
    return replace(
        b,
        suppressed=True,
        shares=None,
        mean_probs=None,
        valence=None,
        negative_share=None,
        uncertain_share=None,
        valence_change=None,
        mood_sd=None,
        flags=[],
    )


def _expressions_under_k(b: MoodBin, k: int) -> MoodBin:
    return replace(b, suppressed=False, flags=[]) if enough_faces(b.read_faces, k) else _hidden(b)


def _facing_shown(b: MoodBin, k: int) -> bool:
    """Facing numbers count the faces whose orientation was clear, read or not (``faces_oriented``)."""
    return b.faces_oriented is not None and enough_faces(b.faces_oriented, k)


def _facing_under_k(b: MoodBin, k: int) -> MoodBin:
    return b if _facing_shown(b, k) else replace(b, facing_share=None, looking_down_share=None)


def apply_k(bins: Sequence[MoodBin], k: int) -> list[MoodBin]:
    """Copies of ``bins`` with every bin below k faces read blanked, and flags computed over what stays shown.

    The facing shares of a bin are kept or blanked on their own count, the faces whose orientation was
    clear: a class turned away may be unreadable (expressions hidden) and still show that it is turned away.
    """
    k = check_min_faces(k)
    return flag_bins([_facing_under_k(_expressions_under_k(b, k), k) for b in bins])


def facing_summary(bins: Sequence[MoodBin], k: int) -> dict[str, float | None]:
    """Whole-input facing shares from the bins whose facing is shown under k, weighted by the faces counted
    in each; ``faces_oriented`` is their mean per analysed frame over those bins. None when no bin qualifies."""
    shown = [b for b in apply_k(bins, k) if b.facing_share is not None and b.faces_oriented is not None]
    weights = np.array([b.frames * (b.faces_oriented or 0.0) for b in shown], np.float64)
    if not shown or weights.sum() <= 0:
        return {"facing_share": None, "looking_down_share": None, "faces_oriented": None}
    w = weights / weights.sum()
    return {
        "facing_share": float(sum(wi * (b.facing_share or 0.0) for wi, b in zip(w, shown, strict=True))),
        "looking_down_share": float(sum(wi * (b.looking_down_share or 0.0) for wi, b in zip(w, shown, strict=True))),
        "faces_oriented": round(float(weights.sum() / sum(b.frames for b in shown)), 2),
    }


def apply_k_rows(rows: pd.DataFrame, k: int) -> pd.DataFrame:
    """``apply_k`` for bins as rows (``MoodBin.as_row`` columns: class_mood.csv, the session store)."""
    import pandas as pd

    bins = apply_k([MoodBin.from_row(r) for r in rows.to_dict("records")], k)
    out = pd.DataFrame([b.as_row() for b in bins], columns=list(rows.columns))
    return out.astype(rows.dtypes.to_dict()) if len(out) else rows.iloc[0:0].copy()


def class_summary(bins: Sequence[MoodBin], k: int) -> dict[str, Any]:
    """Whole-input class numbers from the bins with at least k faces read, weighted by the faces read in each.

    Returns always: ``min_faces`` (k), ``bins_shown``, ``bins_hidden`` and ``faces`` (mean faces present
    per analysed frame over every bin: a count, not an expression). From the shown bins only, None when
    no bin qualifies (so a one-person video has no class-level numbers anywhere): ``shares``
    (top-expression share per class), ``negative_share``, ``valence`` (the mood score),
    ``mood_margin`` (half-width of its 95 % interval, ``mood.mood_margin``; None for bins stored
    without their spread), ``faces_read`` (mean faces read per analysed frame) and ``uncertain_share``;
    and, under the same k on their own count, ``facing_share``, ``looking_down_share`` and
    ``faces_oriented`` (``facing_summary``).
    """
    k = check_min_faces(k)
    shown = [b for b in apply_k(bins, k) if not b.suppressed]
    frames = sum(b.frames for b in bins)
    out: dict[str, Any] = {
        "min_faces": k,
        "bins_shown": len(shown),
        "bins_hidden": len(bins) - len(shown),
        "faces": round(sum(b.frames * b.faces for b in bins) / frames, 2) if frames > 0 else None,
    }
    seen = np.array([b.frames * b.faces for b in shown], np.float64)
    read = np.array([s * (1.0 - (b.uncertain_share or 0.0)) for s, b in zip(seen, shown, strict=True)])
    with_shares = [i for i, b in enumerate(shown) if b.shares is not None]
    weights = read[with_shares]
    uncertain = 1.0 - float(read.sum() / seen.sum()) if seen.sum() > 0 else None
    empty = dict(shares=None, negative_share=None, valence=None, mood_margin=None, faces_read=None)
    if not with_shares or weights.sum() <= 0:  # nothing shown, or every face shown was uncertain
        out.update(empty, uncertain_share=uncertain, **facing_summary(bins, k), note=HIDDEN_NOTE)
        return out
    w = weights / weights.sum()
    used = [shown[i] for i in with_shares]
    shares = {e: float(sum(wi * (b.shares or {})[e] for wi, b in zip(w, used, strict=True))) for e in EMOTIONS}
    valence = float(sum(wi * (b.valence or 0.0) for wi, b in zip(w, used, strict=True)))
    shown_frames = sum(b.frames for b in used)
    faces_read = sum(b.frames * b.read_faces for b in used) / shown_frames if shown_frames else None
    margin = None
    if all(b.mood_sd is not None for b in used):  # the spread of faces' scores, within and between bins
        spread = math.sqrt(
            sum(
                wi * ((b.mood_sd or 0.0) ** 2 + ((b.valence or 0.0) - valence) ** 2)
                for wi, b in zip(w, used, strict=True)
            )
        )
        margin = mood_margin(spread, faces_read)
    out.update(
        shares=shares,
        negative_share=sum(shares[e] for e in NEGATIVE),
        valence=valence,
        mood_margin=margin,
        faces_read=None if faces_read is None else round(faces_read, 2),
        uncertain_share=uncertain,
        **facing_summary(bins, k),
        note=HIDDEN_NOTE,
    )
    return out


def current_view(dets: Detections, k: int) -> dict[str, Any] | None:
    """The live "now" numbers over the faces read now, or None when fewer than k faces are read.

    ``shares`` (top-expression share per class), ``valence`` (the mood score), ``mood_margin`` (its
    95 % half-width over these faces) and ``faces_read``.
    """
    read = dets.read if len(dets) else np.zeros(0, bool)
    n = int(read.sum())
    if n == 0 or not enough_faces(n, k):
        return None
    probs = dets.probs[read]
    counts = np.bincount(probs.argmax(axis=1), minlength=len(EMOTIONS)) / n
    scores = mood_scores(probs)
    return {
        "shares": {e: float(c) for e, c in zip(EMOTIONS, counts, strict=True)},
        "valence": mean_mood(dets),
        "mood_margin": mood_margin(float(scores.std()), n),
        "faces_read": n,
    }


def current_facing(dets: Detections, k: int) -> dict[str, Any] | None:
    """The live "now" facing numbers over the faces whose orientation is clear now, or None under k:
    ``facing_share``, ``looking_down_share`` and ``faces_oriented``."""
    toward, away, down = facing_counts(dets)
    n = toward + away
    if n == 0 or not enough_faces(n, k):
        return None
    return {"facing_share": toward / n, "looking_down_share": down / n, "faces_oriented": n}
