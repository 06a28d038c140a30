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
from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS
from classmood.store.recorder import SessionRecorder

CODE_KEY = "student_class_code"

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

room = hub.rooms.get(st.session_state.get(CODE_KEY, ""))
if room is None:
    st.session_state.pop(CODE_KEY, None)
    others = sorted(hub.rooms)
    model = str(st.session_state.get("model", "accurate"))
    if model not in ("accurate", "fast"):
        st.caption(f"The {model} model is not run in browsers; classes use accurate.")
        model = "accurate"
    st.markdown(
        f"Open a class for your students. The sidebar's k (**{ui.min_faces()}**) decides how many students with a "
        f"face in view the class numbers need; the students' browsers run the **{model}** model."
    )
    if st.button("Open a class", type="primary"):
        try:
            st.session_state[CODE_KEY] = hub.open_room(ui.min_faces(), model).code
        except ClassmoodError as exc:
            st.error(str(exc))
            st.stop()
        st.rerun()
    if others:
        pick = st.selectbox("Or return to a class open on this server", others, index=None)
        if pick:
            st.session_state[CODE_KEY] = pick
            st.rerun()
    st.stop()

url = hub.join_url(room.code)
left, right = st.columns([2, 3])
with left:
    st.markdown(f"### Class code: `{room.code}`")
    st.markdown(f"Join link: [{url}]({url})")
    st.caption(
        "Give students the link (or the code on the join page). Webcams need HTTPS off this computer: see the "
        "README's reverse-proxy recipe."
    )
with right:
    save = st.checkbox("Save the class numbers as a session when it ends", value=True, key="student_save")
    if st.button("End class"):
        ended = hub.close_room(room.code)
        st.session_state.pop(CODE_KEY, None)
        store = ui.store_or_warn() if save and ended is not None else None
        if store is not None and ended is not None:
            raw, summary = ended
            with SessionRecorder(store, "students", f"student-side class {room.code}", {"min_faces": room.k}) as rec:
                rec.save([], raw)
                rec.finish(summary)
            st.success(f"Class ended and saved as session {rec.session_id}." if rec.error is None else rec.error)
        else:
            st.success("Class ended. Nothing was saved.")
        st.stop()


@st.fragment(run_every=1.0)
def dashboard() -> None:
    current = hub.rooms.get(room.code)
    if current is None:
        st.info("This class has ended.")
        return
    current.set_k(ui.min_faces())
    view = current.now_view()
    a, b, c = st.columns(3)
    a.metric("Students connected", view["students"])
    b.metric("Faces present", view["faces"])
    c.metric("Paused", view["paused"])
    st.markdown("Current apparent expressions")
    if view["hidden"]:
        st.caption(
            f"Hidden: class numbers need at least {view['k']} students with a face present ({view['faces']} now)."
        )
    else:
        st.bar_chart(pd.Series(view["shares"], name="share").reindex(list(EMOTIONS)), height=180)
        st.caption(f"Valence now: {view['valence']:+.2f} (P(happy) − P(negative), mean over faces read).")
    st.markdown("Mood over time")
    ui.mood_charts(ui.bins_frame(current.bins()))


dashboard()
