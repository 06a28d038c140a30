"""Streamlit pieces the pages share: notice, settings, consent gate, store access, the result view, live panel.

Only presentation here; what is computed lives in ``live``, ``uploads`` and the pipeline, and every
word, colour and rounding comes from the glossary (``classmood.words``). Every result - an upload,
a saved session, a live page, a student-side class - is shown the same way (``result_view``): the
headline figures first, the mood score and the k rule each in one sentence, then charts that draw
one bin as well as many and say why when there is nothing to draw. A result is shown at the k it
ran with (``view_k``): raising it is one step, lowering it needs a confirmation, and a student-side
class never goes below the k its students were promised.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from classmood import words
from classmood.analytics.privacy import DEFAULT_MIN_FACES, apply_k, check_min_faces, class_summary
from classmood.app import charts
from classmood.app.server import facing_enabled
from classmood.containers import Detections, MoodBin
from classmood.live import LiveSession, LiveSnapshot
from classmood.pipeline import PipelineConfig
from classmood.store import SessionStore
from classmood.vision.annotate import draw_detections
from classmood.weights.shipped import LIVE_MODEL, MODEL_NAMES

LEGAL_NOTICE = (
    "**Apparent facial expressions, not emotions.** classmood reads how faces *look* (FER2013 classes); it "
    "does not measure what anyone feels. Inferring emotions in education institutions is **prohibited in "
    "the EU** (AI Act, Art. 5(1)(f)); elsewhere, use it only with the informed consent of everyone on "
    "camera, and never to grade or single out a student or to watch students during tests (high-risk under "
    "the AI Act, Annex III, point 3(d))."
)
CONSENT_TEXT = (
    "Everyone whose face will be analysed knows about it and has agreed (informed consent). "
    "Frames stay in memory; no images of faces are stored."
)
PER_FACE_WARNING = (
    "Per-face view on: expressions of individual (pseudonymous) faces are shown. This singles people out; "
    "use it only for your own camera or with everyone's explicit agreement."
)


def sidebar() -> None:
    """The legal notice and the settings for new analyses, on every page."""
    with st.sidebar:
        st.warning(LEGAL_NOTICE)
        st.number_input(
            "k for new analyses: hide class numbers below this many faces read",
            min_value=1,
            max_value=100,
            value=DEFAULT_MIN_FACES,
            step=1,
            key="min_faces",
            help=(
                "Expression shares, the mood score, flags and summaries come only from moments with at least k "
                "faces read (faces present but too small or blurred to read do not count). Each result keeps "
                "the k it ran with; raise or lower it on the result itself."
            ),
        )
        st.checkbox(
            "Per-face view (singles people out)",
            key="per_face",
            help="Off by default. Shows each face's apparent expression: on the video, in a list of faces, "
            "and in an annotated video made from a recording.",
        )
        if per_face():
            st.error(PER_FACE_WARNING)
        st.selectbox(
            "Expression model",
            sorted(MODEL_NAMES, key=lambda name: name != LIVE_MODEL),  # the live default first: it is preselected
            key="model",
            help=model_help(),
        )
        st.checkbox(
            "Mood as change from each face's own start",
            key="change_view",
            help=(
                "Resting faces differ: a calm face can look a little sad or a little happy. With this on, "
                "the mood chart shows the change of the mood score from each face's own first two minutes "
                "(kept in memory for this session only), i.e. whether the class brightened or darkened."
            ),
        )
        st.caption("Faces too small, blurred or unclear to read are counted as *not read*, never as an expression.")


def model_help() -> str:
    """The model picker's help, with each shipped model's size and PublicTest accuracy from the manifest."""
    from classmood.weights.manifest import read_manifest

    manifest = read_manifest()

    def card(name: str) -> str:
        entry = manifest.get(name, {})
        val = entry.get("val", {})
        plus = val.get("ferplus", {}).get("accuracy")
        params = (entry.get("params") or 0) / 1e6
        tta = f" with {entry['tta']} TTA" if entry.get("tta", "none") != "none" else ""
        if plus is None and val.get("accuracy") is None:
            return "no manifest entry"
        agreed = f"{plus:.0%} agreement with FER+'s annotators" if plus is not None else ""
        return f"{params:.1f} M parameters{tta}, {agreed or format(val['accuracy'], '.0%') + ' on FER2013'}"

    return (
        f"accurate: {card('accurate')}, two networks averaged (the live default); "
        f"fast: {card('fast')}, about four times cheaper (PublicTest faces)."
    )


def min_faces() -> int:
    """The k in the sidebar (at least 1)."""
    try:
        return check_min_faces(int(st.session_state.get("min_faces", DEFAULT_MIN_FACES)))
    except Exception:
        return DEFAULT_MIN_FACES


def per_face() -> bool:
    """Whether the user turned on the per-face view (off by default)."""
    return bool(st.session_state.get("per_face", False))


def change_view() -> bool:
    return bool(st.session_state.get("change_view", False))


def browser_alive() -> Any:
    """A check, safe from any thread, that this page's browser session is still connected (None outside
    a running app). A live session stops when it turns False: a closed tab stops a server-side capture."""
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:
        return None
    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None
    runtime, session_id = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session_id)


def pipeline_config(rate_hz: float) -> PipelineConfig:
    # One inference thread: the other core stays free for the server, the video and the UI.
    model = str(st.session_state.get("model", LIVE_MODEL))
    facing = facing_enabled(os.environ)  # classmood app --no-facing: no head orientation anywhere
    return PipelineConfig(model=model, rate_hz=rate_hz, min_faces=min_faces(), threads=1, facing=facing)


@st.cache_resource(show_spinner=False)
def _open_store(url: str) -> SessionStore:
    from classmood.store import open_store

    return open_store(url)


def get_store() -> SessionStore:
    """The session database for this app (``classmood app --db``, DATABASE_URL, CLASSMOOD_DB or ~/.classmood)."""
    from classmood.store import default_url

    return _open_store(default_url())


def store_or_warn() -> SessionStore | None:
    """The store, or None with a warning on the page when the database cannot be opened."""
    from classmood.errors import ClassmoodError

    try:
        return get_store()
    except ClassmoodError as exc:
        st.warning(f"Sessions are not being saved: {exc}")
        return None


def consent_gate(key: str) -> bool:
    """Nothing is captured until the user confirms consent on this page."""
    return st.checkbox(CONSENT_TEXT, key=f"consent_{key}")


def draw(image: np.ndarray, dets: Detections, expressions: bool) -> np.ndarray:
    """Boxes and ``#id`` on a copy of the frame; each face's apparent expression only in the per-face view."""
    return draw_detections(image, dets, expressions)


def view_k(key: str, own: int, floor: int | None = None) -> int:
    """The k a result is shown at, asked on the result itself: the k it ran with (``own``) unless changed.

    Raising it is one step. Lowering it below ``own`` needs an explicit confirmation (numbers from fewer
    faces can describe one or two people); below ``floor`` (a student-side class: the k its students were
    promised) it cannot go at all. The widget is keyed by the result, so each opens at its own k."""
    low = check_min_faces(floor) if floor is not None else 1
    own = max(own, low)
    k = int(
        st.number_input(
            f"k for this view (it ran with k = {own})",
            min_value=low,
            max_value=100,
            value=own,
            step=1,
            key=f"view_k_{key}_{own}",
            help="Class numbers come only from moments with at least k faces read."
            + (f" This class promised its students k ≥ {low}: it cannot go lower." if floor is not None else ""),
        )
    )
    if k < own and not st.checkbox(
        f"Yes, show numbers from as few as {words.plural(k, 'face')}: they can describe one or two people",
        key=f"view_k_lower_{key}_{own}_{k}",
    ):
        st.caption(f"Still shown at k = {own}: confirm the lower k above to use it.")
        return own
    return k


def _unbroken(value: str) -> str:
    """A figure's value as HTML that wraps only between its parts ("neutral 78 % · surprised 12 %"), so a long
    value goes onto a second line of its card instead of running over the next one."""
    return " · ".join(f'<span style="white-space:nowrap">{html.escape(part)}</span>' for part in value.split(" · "))


def headline(figures: Sequence[words.Figure]) -> None:
    """The headline figures as a row of cards (they wrap on a narrow screen), the same as the report's."""
    card = "border:1px solid rgba(128,128,128,.35);border-radius:.5rem;padding:.45rem .7rem"
    cards = "".join(
        f'<div style="{card}"><div style="font-size:.8rem;opacity:.75">{html.escape(f.label)}</div>'
        f'<div style="font-size:1.35rem;font-weight:600">{_unbroken(f.value)}</div>'
        f'<div style="font-size:.75rem;opacity:.7">{html.escape(f.note)}</div></div>'
        for f in figures
    )
    st.markdown(
        '<div data-testid="cm-headline" style="display:grid;gap:.5rem;margin:.3rem 0 .6rem;'
        'grid-template-columns:repeat(auto-fill,minmax(8.5em,1fr))">'
        f"{cards}</div>",
        unsafe_allow_html=True,
    )


def explain(k: int) -> None:
    """The mood score and the k rule, each in one sentence, once per result."""
    st.caption(f"{words.MOOD_EXPLAINED} {words.k_rule(k)}")


def flagged_table(bins: Sequence[MoodBin], empty: str = "No flagged moment.") -> None:
    """Flagged moments in words: when, what, faces present, the share looking negative and the mood score."""
    st.markdown("**Flagged moments**")
    rows = words.flagged_moments(bins)
    if rows:
        st.dataframe(pd.DataFrame(rows).rename(columns=words.FLAGGED_COLUMNS), hide_index=True)
    else:
        st.caption(empty)


def mood_charts(bins: Sequence[MoodBin], k: int, started_at: float | None = None, facing: bool = True) -> None:
    """The mood score and the expression shares over time for bins with at least k faces read (one bin draws
    as a point and a bar), the shares facing the screen for bins with k faces clearly oriented (``facing``
    False: not measured), then the faces per moment (counts: every bin) and the flagged moments; when
    there is nothing to draw, a sentence says why."""
    change = change_view()
    mood = charts.mood_chart(bins, started_at, change=change)
    shares = charts.shares_chart(bins, started_at)
    if not bins:
        st.info("No moment has closed yet: class numbers come in moments of 5 seconds.")
    elif shares is None:
        st.info(
            f"Class numbers hidden: no moment had at least {words.plural(k, 'face')} read. With fewer faces "
            "the numbers would describe one or two people, not a class."
        )
    else:
        st.markdown("**" + ("Mood change since each face's start" if change else "Mood score over time") + "**")
        if mood is None:
            st.caption("No face has been seen for two minutes yet, so no change from its start can be shown.")
        else:
            st.altair_chart(mood, width="stretch")
        st.markdown("**Apparent expressions over time**")
        st.altair_chart(shares, width="stretch")
    facing_chart = charts.facing_chart(bins, started_at)
    if bins:
        st.markdown("**Facing the screen over time**")
        if not facing:
            st.caption("Not measured: no head orientation was estimated (--no-facing, or a session from before).")
        elif facing_chart is None:
            st.caption(f"Hidden: no moment had at least {words.plural(k, 'face')} whose head orientation was clear.")
        else:
            st.altair_chart(facing_chart, width="stretch")
            st.caption(
                f"{words.FACING_EXPLAINED} Moments with fewer than {words.plural(k, 'face')} whose orientation is "
                "clear are left out."
            )
    faces = charts.faces_chart(bins, started_at)
    if faces is not None:
        st.markdown("**Faces in each moment**")
        st.altair_chart(faces, width="stretch")
    if bins:
        flagged_table([b for b in bins if not b.suppressed or b.flags])


def result_view(
    raw_bins: Sequence[MoodBin],
    own_k: int,
    model: str,
    people: int | None,
    *,
    key: str,
    floor: int | None = None,
    started_at: float | None = None,
    people_label: str = "people seen",
    numbers_for: Callable[[int], Mapping[str, Any]] | None = None,
    read_k: Callable[[int], int] | None = None,
    facing: bool = True,
) -> int:
    """One result as every page shows it: the headline first, the mood score and the k rule each in one
    sentence, the k control (``view_k``: the result's own k unless changed), then the charts. Returns the k.

    ``numbers_for(k)``: the class numbers at k when the caller has its own way to read them (a saved
    session, through its floor); ``read_k(k)``: the k actually used for a k asked for (a floor)."""
    top = st.container()
    control, _ = st.columns([1, 2])
    with control:
        k = view_k(key, own_k, floor)
    if read_k is not None:
        k = read_k(k)
    numbers = {**(numbers_for(k) if numbers_for is not None else class_summary(raw_bins, k)), "facing": facing}
    with top:
        headline(words.headline(numbers, model=model, people=people, people_label=people_label))
        explain(k)
    mood_charts(apply_k(raw_bins, k), k, started_at, facing=facing)
    return k


@dataclass
class LiveHolder:
    """Per browser session: the running analysis (if any) and the last finished one."""

    active: LiveSession | None = None
    last: LiveSession | None = None
    paused: bool = False  # analysis stopped by the user while the video still plays

    def current(self) -> LiveSession | None:
        return self.active or self.last

    def start(self, session: LiveSession) -> LiveSession:
        self.stop()
        self.active = session.start()
        return self.active

    def stop(self) -> None:
        if self.active is not None:
            self.active.stop()
            self.last, self.active = self.active, None


def holder(key: str) -> LiveHolder:
    if key not in st.session_state:
        st.session_state[key] = LiveHolder()
    value: LiveHolder = st.session_state[key]
    return value


def analysing_indicator(session: LiveSession | None) -> None:
    if session is not None and session.running:
        saved = f" · saved as session {session.session_id}" if session.session_id is not None else ""
        st.markdown(f":red[●] **Analysing** ({words.KIND_WORDS.get(session.kind, session.kind)}{saved})")
    else:
        st.markdown("○ Not analysing")


def bins_under_k(raw: list[MoodBin], k: int) -> list[MoodBin]:
    """Raw bins under ``k`` (the one place pages get class numbers from raw bins)."""
    return apply_k(raw, k)


def live_panel(snapshot: LiveSnapshot | None, show_tracks: bool, head: Any = None) -> None:
    """A live result: the figures of this moment, then the mood over the last minutes, flagged moments, faces.

    ``head``: the container the headline goes in (above a k control drawn after it), else here."""
    if snapshot is None:
        st.info("Start to see the class mood here.")
        return
    with head if head is not None else st.container():
        _live_headline(snapshot)
    _live_details(snapshot, show_tracks)


def _live_headline(snapshot: LiveSnapshot) -> None:
    if snapshot.error:
        st.error(snapshot.error)
    if snapshot.store_error:
        st.warning(snapshot.store_error)
    k = snapshot.min_faces
    read_now = snapshot.faces_now - snapshot.uncertain_now
    now = None if snapshot.suppressed else {
        "shares": snapshot.shares, "valence": snapshot.mood_now, "mood_margin": snapshot.mood_margin_now
    }  # fmt: skip
    figures = words.headline(
        snapshot.class_numbers,
        model=snapshot.model,
        people=snapshot.tracks_seen,
        faces_now=snapshot.faces_now,
        read_now=read_now,
        now=now,
        facing_now=snapshot.facing_now,
    )
    headline(figures)
    rate = f" ({snapshot.analysed_fps:.1f} a second)" if snapshot.analysed else ""
    if snapshot.analysed and snapshot.delay_s is not None:
        rate += f" · numbers {snapshot.delay_s:.1f} s after their frame"
    busy = f", {words.plural(snapshot.dropped, 'frame')} skipped while busy" if snapshot.dropped else ""
    size = f" · picture {snapshot.frame_size[0]}×{snapshot.frame_size[1]}" if snapshot.frame_size else ""
    started = f" · started {words.local_time(snapshot.started_at, browser_zone())}" if snapshot.started_at else ""
    st.caption(f"Analysed {snapshot.analysed} of {words.plural(snapshot.received, 'frame')}{rate}{busy}{size}{started}")
    explain(k)


def _live_details(snapshot: LiveSnapshot, show_tracks: bool) -> None:
    k = snapshot.min_faces
    read_now = snapshot.faces_now - snapshot.uncertain_now
    st.markdown("**Apparent expressions now**")
    if snapshot.shares is None:
        st.caption(
            f"Hidden: class numbers need at least {words.plural(k, 'face')} read "
            f"({words.plural(snapshot.faces_now, 'face')} now, {read_now} read)."
        )
    else:
        st.altair_chart(charts.now_chart(snapshot.shares), width="stretch")
    series = charts.series_chart(snapshot.series, snapshot.started_at)
    st.markdown("**Mood score over the last minutes**")
    if series is None:
        st.caption(f"Nothing to draw yet: no analysed frame had {words.plural(k, 'face')} read.")
    else:
        st.altair_chart(series, width="stretch")
    with st.expander("Moments of 5 seconds so far", expanded=False):
        mood_charts(snapshot.bins, k, snapshot.started_at, facing=snapshot.class_numbers.get("facing") is not False)
    if show_tracks and per_face():
        st.markdown("**Per-face view** (pseudonymous ids, this session only)")
        if not snapshot.tracks:
            st.caption("No face now.")
        else:
            st.dataframe(
                pd.DataFrame(
                    {
                        "Face": [f"#{tid}" for tid, _, _ in snapshot.tracks],
                        "Looks": [words.expression(e) for _, e, _ in snapshot.tracks],
                        "Head": [words.FACING_WORDS.get(f, f) for _, _, f in snapshot.tracks],
                    }
                ),
                hide_index=True,
            )


def live_panel_fragment(key: str, show_tracks: bool) -> None:
    """The live panel, refreshed every second without rerunning the page (video keeps playing).

    It is shown at the k the running (or last) session started with unless changed here (``view_k``)."""

    @st.fragment(run_every=1.0)
    def panel() -> None:
        current = holder(key).current()
        analysing_indicator(holder(key).active)
        head = st.container()
        own = current.config.min_faces if current is not None else min_faces()
        control, _ = st.columns([3, 2])
        with control:
            k = view_k(f"live_{key}", own)
        live_panel(current.snapshot(k) if current is not None else None, show_tracks, head)

    panel()


def browser_zone() -> Any:
    """The reader's time zone (the browser's), so times on the page are local to the teacher; None outside a
    page or when the browser does not say (then this machine's)."""
    try:
        from zoneinfo import ZoneInfo

        name = st.context.timezone
        return ZoneInfo(name) if name else None
    except Exception:
        return None


HUB_PORT_ENV, PUBLIC_URL_ENV = "CLASSMOOD_CLASS_PORT", "CLASSMOOD_PUBLIC_URL"


@st.cache_resource(show_spinner=False)
def _hub(host: str, port: int, public_url: str | None) -> Any:
    from classmood.classroom.hub import Hub, hub_settings

    return Hub(
        host=host, port=port, public_url=public_url, facing=facing_enabled(os.environ), **hub_settings(os.environ)
    ).start()


def class_hub() -> Any:
    """The student-side hub of this app process (started on first use; ``classmood app --class-port``)."""
    from classmood.classroom.hub import DEFAULT_PORT

    host = st.get_option("server.address") or "127.0.0.1"
    port = int(os.environ.get(HUB_PORT_ENV, DEFAULT_PORT))
    return _hub(host, port, os.environ.get(PUBLIC_URL_ENV) or None)
