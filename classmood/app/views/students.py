"""Live — students' browsers: each student's browser reads its own face; only numbers reach this server.

The teacher opens a class here and gets a join link and a short code. Students open the link,
read what is measured, consent, and their browser sends one small JSON message a second (no
image ever). This page shows the class view under the sidebar's k: counts always; the current
expression shares and the mood over time only with at least k students with a face present;
nothing per student.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from classmood.app import ui
from classmood.classroom.hub import BROWSER_MODELS, DEFAULT_MODEL
from classmood.classroom.room import IDLE_CLOSE_S
from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS

st.title("Live — students' own browsers")
st.caption(
    "Each student's browser reads its own face with the model running on the student's device and sends only "
    "numbers: no video or picture of a student reaches this server. Students see what is measured, consent or "
    "not, can pause or leave at any time, and see every message their browser sends."
)

try:
    hub = ui.class_hub()
except ClassmoodError as exc:
    st.error(f"The student-side hub could not start: {exc}")
    st.stop()


def _current_code() -> str:
    """The class this page shows: in the URL (?class=CODE), so a reload or a bookmark comes back to it."""
    return str(st.query_params.get("class", "")).strip().upper()


room = hub.rooms.get(_current_code())
if room is None:
    if "class" in st.query_params:
        del st.query_params["class"]
    model = str(st.session_state.get("model", DEFAULT_MODEL))
    if model not in BROWSER_MODELS:
        st.caption(f"The {model} model is not run in browsers; classes use {DEFAULT_MODEL}.")
        model = DEFAULT_MODEL
    k = ui.min_faces()
    st.markdown(
        f"Open a class for your students. Students are told before they consent that class numbers need at "
        f"least **k = {k}** students with a face in view (the sidebar's k): you can raise it during the class, "
        f"not lower it. Their browsers run the **{model}** model."
    )
    if k < 3:
        st.warning(f"With k = {k} the class numbers can describe one or two students. Students will be told.")
    save = st.checkbox(
        "Save the class numbers as a session (class-level time bins only; students are told)",
        value=True,
        key="student_save",
    )
    if st.button("Open a class", type="primary"):
        try:
            opened = hub.open_room(k, model, store=ui.store_or_warn() if save else None)
        except ClassmoodError as exc:
            st.error(str(exc))
            st.stop()
        st.query_params["class"] = opened.code
        st.rerun()
    st.stop()

url = hub.join_url(room.code)
left, right = st.columns([2, 3])
with left:
    st.markdown(f"### Class code: `{room.code}`")
    st.markdown(f"Join link: [{url}]({url})")
    st.caption(
        "Give students the link (or the code on the join page). Webcams need HTTPS off this computer: see the "
        "README's reverse-proxy recipe. This page's address brings you back to the class."
    )
    if hub.camera_needs_https(room.code):
        st.warning(
            "Students on other computers will not get their camera from a plain http:// link. Put an HTTPS "
            "reverse proxy in front (README) and start the app with --public-url https://..."
        )
with right:
    error = room.recorder.error if room.recorder is not None else None
    if error:
        st.warning(error)  # the database failed at opening or since: students are told it is not saved
    st.caption(
        ("Saved as a session as it runs." if room.saving else "Not saved.")
        + f" A class nobody uses for {IDLE_CLOSE_S / 3600:g} hours (no student, this page closed) ends by itself."
    )
    if st.button("End class"):
        saved = room.saving
        ended = hub.close_room(room.code)
        del st.query_params["class"]
        error = room.recorder.error if room.recorder is not None else None
        if ended is None:
            st.info("This class had already ended.")
        elif error:
            st.warning(f"Class ended. {error}")
        elif saved:
            st.success(f"Class ended and saved as session {room.recorder.session_id}.")  # type: ignore[union-attr]
        else:
            st.success("Class ended. Nothing was saved.")
        st.stop()


@st.fragment(run_every=1.0)
def dashboard() -> None:
    current = hub.rooms.get(room.code)
    if current is None:
        st.info("This class has ended.")
        return
    # Only a change of the sidebar's k made on this page applies: a reload (which resets the sidebar)
    # must not move the class's k. It never goes below the k students joined under.
    sidebar, seen = ui.min_faces(), f"student_k_seen_{current.code}"
    if st.session_state.get(seen, sidebar) != sidebar:
        current.set_k(sidebar)
    st.session_state[seen] = sidebar
    if current.k != sidebar:
        st.caption(
            f"This class uses k = {current.k} (the sidebar says {sidebar}): change the sidebar's k to raise it; "
            f"it cannot go below {current.min_k}, the k students joined under."
        )
    view = current.now_view()
    a, b, c = st.columns(3)
    a.metric("Students connected", view["students"])
    b.metric("Faces present", view["faces"])
    c.metric("Paused", view["paused"])
    if view["turned_away"]:
        st.caption(
            f"{view['turned_away']} join(s) turned away: the class was full or one network address had its "
            f"{current.seats_per_client()} seats (classmood app --class-size / --per-client / --trusted-proxy)."
        )
    st.markdown("Current apparent expressions")
    if view["hidden"]:
        st.caption(
            f"Hidden: class numbers need at least {view['k']} student{'s' if view['k'] != 1 else ''} with a face "
            f"present ({view['faces']} now)."
        )
    else:
        st.bar_chart(pd.Series(view["shares"], name="share").reindex(list(EMOTIONS)), height=180)
        st.caption(f"Valence now: {view['valence']:+.2f} (P(happy) − P(negative), mean over faces read).")
    st.markdown("Mood over time")
    ui.mood_charts(ui.bins_frame(current.bins()))


dashboard()
