"""Live — students' browsers: each student's browser reads its own face; only numbers reach this server.

The teacher opens a class here and gets a join link and a short code. Students open the link,
read what is measured, consent, and their browser sends one small JSON message a second (no
image ever). This page shows the class under its k: counts always; the current expression
shares, the mood score and the mood over time only while the faces of at least k students are
read; nothing per student. The students' browsers compute nothing about mood: the room
aggregates it here. After *End class* the page says how the class ended and offers a new one.
"""

from __future__ import annotations

import streamlit as st

from classmood import words
from classmood.app import charts, ui
from classmood.classroom.room import IDLE_CLOSE_S
from classmood.errors import ClassmoodError
from classmood.weights.shipped import BROWSER_MODELS, LIVE_MODEL

ENDED = "student_class_ended"  # how the last class on this page ended: shown above the form for a new one

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
    ended = st.session_state.pop(ENDED, None)
    if ended is not None:
        (st.warning if ended[0] == "warning" else st.success)(ended[1])
    model = str(st.session_state.get("model", LIVE_MODEL))
    if model not in BROWSER_MODELS:
        st.caption(f"The {model} model is not run in browsers; classes use {LIVE_MODEL}.")
        model = LIVE_MODEL
    k = ui.min_faces()
    st.markdown(
        f"Open a class for your students. Students are told before they consent that class numbers need the "
        f"faces of at least **k = {k}** students read (the sidebar's k): you can raise it during the class, "
        f"not lower it. Their browsers run the **{model}** model and send only its seven numbers."
    )
    if k < 3:
        st.warning(f"With k = {k} the class numbers can describe one or two students. Students will be told.")
    save = st.checkbox(
        "Save the class numbers as a session, from the first face read (class-level moments only; students are told)",
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
        session = room.recorder.session_id if room.recorder is not None else None
        if ended is None:
            st.session_state[ENDED] = ("success", f"Class {room.code} had already ended.")
        elif error:
            st.session_state[ENDED] = ("warning", f"Class {room.code} ended. {error}")
        elif saved and session is not None:
            st.session_state[ENDED] = ("success", f"Class {room.code} ended and was saved as session {session}.")
        elif saved:
            st.session_state[ENDED] = (
                "success",
                f"Class {room.code} ended. No student's face was read, so nothing was saved.",
            )
        else:
            st.session_state[ENDED] = ("success", f"Class {room.code} ended. Nothing was saved.")
        st.rerun()  # the page for a new class, with how this one ended


@st.fragment(run_every=1.0)
def dashboard() -> None:
    current = hub.rooms.get(room.code)
    if current is None:
        st.info("This class has ended.")
        return
    # The class is shown at its own k (never below the k students joined under); the teacher can raise it
    # here. A reload keeps the class's k: the control opens at it.
    head = st.container()  # the headline first, the class's k control under it
    control, _ = st.columns([1, 2])
    with control:
        k = ui.view_k(f"class_{current.code}", current.k, floor=current.min_k)
    if k != current.k:
        current.set_k(k)
    view = current.now_view()
    now = None if view["hidden"] else view
    numbers = {"min_faces": current.k, "facing": hub.facing}
    figures = words.headline(
        numbers,
        model=current.model,
        people=view["students"],
        people_label="students connected",
        faces_now=view["faces"],
        read_now=view["faces_read"],
        now=now,
        facing_now=None if view["facing_share"] is None else view,
    )
    with head:
        ui.headline(figures)
        st.caption(
            f"{words.plural(view['paused'], 'student')} paused · class opened "
            f"{words.local_time(current.created, ui.browser_zone())}"
        )
        ui.explain(current.k)
    if view["turned_away"]:
        st.caption(
            f"{words.plural(view['turned_away'], 'join')} turned away: the class was full or one network address "
            f"had its {current.seats_per_client()} seats (classmood app --class-size / --per-client / --trusted-proxy)."
        )
    st.markdown("**Apparent expressions now**")
    if view["hidden"]:
        st.caption(
            f"Hidden: class numbers need the faces of at least {words.plural(view['k'], 'student')} read "
            f"({view['faces']} with a face in view now, {view['faces_read']} read)."
        )
    else:
        st.altair_chart(charts.now_chart(view["shares"]), width="stretch")
    ui.mood_charts(current.bins(), current.k, started_at=current.created, facing=hub.facing)


dashboard()
