"""Streamlit pieces the pages share: notice, settings, consent gate, store access, live panel.

Only presentation here; what is computed lives in ``live``, ``uploads`` and the pipeline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from classmood.analytics.privacy import DEFAULT_MIN_FACES, apply_k, check_min_faces, class_summary
from classmood.containers import Detections, MoodBin
from classmood.labels import EMOTIONS
from classmood.live import LiveSession, LiveSnapshot
from classmood.pipeline import PipelineConfig
from classmood.store import SessionStore
from classmood.vision.annotate import draw_detections

LEGAL_NOTICE = (
    "**Apparent facial expressions, not emotions.** classmood reads how faces *look* (FER2013 classes); it "
    "does not measure what anyone feels. Inferring emotions in education institutions is **prohibited in "
    "the EU** (AI Act, Art. 5(1)(f)); elsewhere, use it only with the informed consent of everyone on "
    "camera, and never to grade or single out a student."
)
CONSENT_TEXT = (
    "Everyone whose face will be analysed knows about it and has agreed (informed consent). "
    "Frames stay in memory; no images of faces are stored."
)
# The live default, chosen by measurement (README "On real footage"): under call-like degradation
# accurate reads 2-4 points more faces correctly than fast with the same low share of calm faces read
# negative, and the live worker runs it at 6.5 analysed frames/s on a 49-face 1080p gallery with one
# inference thread (fast: 9.8), over three times the 2 Hz the pages ask for.
LIVE_DEFAULT_MODEL = "accurate"
PER_FACE_WARNING = (
    "Per-face view on: expressions of individual (pseudonymous) faces are shown. This singles people out; "
    "use it only for your own camera or with everyone's explicit agreement."
)


def sidebar() -> None:
    """The legal notice and the privacy settings, on every page."""
    with st.sidebar:
        st.warning(LEGAL_NOTICE)
        st.number_input(
            "Hide class numbers below this many faces (k)",
            min_value=1,
            max_value=100,
            value=DEFAULT_MIN_FACES,
            step=1,
            key="min_faces",
            help=(
                "Expression shares, valence, flags and summaries come only from moments with at least k faces "
                "visible. Changing k applies at once to what is on screen, live and saved sessions alike."
            ),
        )
        st.checkbox(
            "Per-face view (singles people out)",
            key="per_face",
            help="Off by default. Shows each face's apparent expression: on the video, in a track grid.",
        )
        if per_face():
            st.error(PER_FACE_WARNING)
        st.selectbox(
            "Expression model",
            ["accurate", "fast"],  # live default: see LIVE_DEFAULT_MODEL
            key="model",
            help=model_help(),
        )
        st.checkbox(
            "Mood as change from each face's own start",
            key="change_view",
            help=(
                "Resting faces differ: a calm face can look a little sad or a little happy. With this on, "
                "the mood-per-bin chart shows the valence change from each face's own first two minutes "
                "(kept in memory for this session only), i.e. whether the class brightened or darkened."
            ),
        )
        st.caption("Faces too small, blurred or unclear to read are counted as *uncertain*, never as an expression.")


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
        agreed = f"{plus:.1%} agreement with FER+'s annotators" if plus is not None else ""
        return f"{params:.1f} M parameters{tta}, {agreed or format(val['accuracy'], '.1%') + ' on FER2013'}"

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


def _mood_columns(df: pd.DataFrame) -> list[str]:
    """The per-bin lines to draw: valence (or its change from each face's start), negative and uncertain shares."""
    first = "valence_change" if change_view() and "valence_change" in df else "valence"
    return [c for c in (first, "negative_share", "uncertain_share") if c in df]


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
    model = str(st.session_state.get("model", LIVE_DEFAULT_MODEL))
    return PipelineConfig(model=model, rate_hz=rate_hz, min_faces=min_faces(), threads=1)


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
    if not expressions:
        dets = Detections(dets.xyxy, dets.score, dets.track_id)  # boxes and ids, no expression
    return draw_detections(image, dets)


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
        sid = f" · saved as session {session.session_id}" if session.session_id is not None else ""
        st.markdown(f":red[●] **Analysing** ({session.kind}{sid})")
    else:
        st.markdown("○ Not analysing")


def _series_frame(snapshot: LiveSnapshot) -> pd.DataFrame:
    df = pd.DataFrame(snapshot.series, columns=["time_s", "faces", "valence"])
    df["valence"] = pd.to_numeric(df["valence"], errors="coerce")
    return df.set_index("time_s")


def bins_frame(bins: list[MoodBin]) -> pd.DataFrame:
    return pd.DataFrame([b.as_row() for b in bins])


def bins_under_k(raw: list[MoodBin]) -> pd.DataFrame:
    """Raw bins as rows under the sidebar's k (the one place pages get class numbers from raw bins)."""
    return bins_frame(apply_k(raw, min_faces()))


def class_numbers(raw: list[MoodBin]) -> dict[str, Any]:
    return class_summary(raw, min_faces())


def mood_charts(bins: pd.DataFrame, k: int | None = None) -> None:
    """Faces per bin, then - only for bins with at least k faces - valence, expression shares and flags.

    ``k``: the k the bins were read with when it is not the sidebar's (a saved class's floor)."""
    if len(bins):
        st.line_chart(bins.set_index("start_s")[["faces"]], height=160, x_label="seconds", y_label="mean faces")
    shown = bins[~bins["suppressed"].astype(bool) & bins["valence"].notna()] if len(bins) else bins
    if not len(shown):
        where = "k" if k else "k, in the sidebar"
        st.info(
            f"Class numbers hidden: no time bin had at least {k or min_faces()} faces ({where}), or there "
            "are no bins yet. With fewer faces the numbers would describe one or two people, not a class."
        )
        return
    st.line_chart(shown.set_index("start_s")[_mood_columns(shown)], height=220, x_label="seconds")
    shares = shown.set_index("start_s")[[f"share_{e}" for e in EMOTIONS]]
    shares.columns = list(EMOTIONS)
    st.area_chart(shares, height=200, x_label="seconds", y_label="share of faces")
    flagged = shown[shown["flags"] != ""][["start_s", "end_s", "flags"]]
    st.markdown("Flagged moments")
    if len(flagged):
        st.dataframe(flagged, hide_index=True)
    else:
        st.caption("None.")


def live_panel(snapshot: LiveSnapshot | None, show_tracks: bool) -> None:
    """Faces now, current expression shares, the mood over the last minutes, flagged moments, tracks."""
    if snapshot is None:
        st.info("Start to see the class mood here.")
        return
    if snapshot.error:
        st.error(snapshot.error)
    if snapshot.store_error:
        st.warning(snapshot.store_error)
    k = snapshot.min_faces
    st.markdown(f"**Faces now: {snapshot.faces_now}**")
    st.caption(
        f"Series points: {len(snapshot.series)} · analysed {snapshot.analysed} of {snapshot.received} frames "
        f"({snapshot.dropped} dropped while busy) · {snapshot.analysed_fps:.1f} analysed frames/s · "
        f"status {snapshot.status}"
        + (f" · frames {snapshot.frame_size[0]}x{snapshot.frame_size[1]}" if snapshot.frame_size else "")
    )
    series = _series_frame(snapshot)
    if len(series):
        st.markdown("Faces over the last minutes")
        st.line_chart(series[["faces"]], height=150, x_label="seconds", y_label="faces")
        if series["valence"].notna().any():
            st.markdown("Class mood (valence: P(happy) − P(negative), mean over faces)")
            st.line_chart(series[["valence"]], height=150, x_label="seconds", y_label="valence")
    st.markdown("Current apparent expressions")
    if snapshot.suppressed or snapshot.shares is None:
        st.caption(f"Hidden: class numbers need at least {k} faces ({snapshot.faces_now} now).")
    else:
        st.bar_chart(pd.Series(snapshot.shares, name="share").reindex(list(EMOTIONS)), height=180)
        if snapshot.uncertain_now:
            st.caption(
                f"{snapshot.uncertain_now} of {snapshot.faces_now} faces uncertain (not read, not counted above)."
            )
    bins = [b for b in snapshot.bins if not b.suppressed and b.valence is not None]
    if bins:
        df = bins_frame(bins).set_index("start_s")
        st.markdown("Mood per time bin")
        st.line_chart(df[_mood_columns(df)], height=240, x_label="seconds")
    st.markdown("Flagged moments")
    if snapshot.flagged:
        st.dataframe(pd.DataFrame(snapshot.flagged), hide_index=True)
    else:
        st.caption("None so far.")
    if show_tracks and per_face():
        st.markdown("Per-face view: tracks (pseudonymous ids, this session only)")
        if not snapshot.tracks:
            st.caption("No face now.")
        else:
            cols = st.columns(7)
            for i, (tid, expression) in enumerate(snapshot.tracks):
                cols[i % 7].markdown(f"`#{tid}` {expression}")


def live_panel_fragment(key: str, show_tracks: bool) -> None:
    """The live panel, refreshed every second without rerunning the page (video keeps playing)."""

    @st.fragment(run_every=1.0)
    def panel() -> None:
        current = holder(key).current()
        analysing_indicator(holder(key).active)
        live_panel(current.snapshot(min_faces()) if current is not None else None, show_tracks)

    panel()


HUB_PORT_ENV, PUBLIC_URL_ENV = "CLASSMOOD_CLASS_PORT", "CLASSMOOD_PUBLIC_URL"


@st.cache_resource(show_spinner=False)
def _hub(host: str, port: int, public_url: str | None) -> Any:
    from classmood.classroom.hub import Hub, hub_settings

    return Hub(host=host, port=port, public_url=public_url, **hub_settings(os.environ)).start()


def class_hub() -> Any:
    """The student-side hub of this app process (started on first use; ``classmood app --class-port``)."""
    from classmood.classroom.hub import DEFAULT_PORT

    host = st.get_option("server.address") or "127.0.0.1"
    port = int(os.environ.get(HUB_PORT_ENV, DEFAULT_PORT))
    return _hub(host, port, os.environ.get(PUBLIC_URL_ENV) or None)
