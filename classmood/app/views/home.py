"""The start page at the app's root address: what classmood shows a teacher, and where each way of using it is.

It exists so that every other page has an address of its own: Streamlit serves its default page
at ``/`` and ignores that page's own path, so with *Live — my camera* as the default, ``/camera``
opened a "Page not found" dialog.
"""

from __future__ import annotations

import streamlit as st

from classmood import words

st.title("classmood")
st.markdown(
    "How a class *looks* on camera, as class-level numbers: the share of faces that look neutral, happy, "
    "surprised or negative, and a mood score, over time. Apparent facial expressions, not feelings."
)
st.caption(words.MOOD_EXPLAINED)
st.markdown("**Start with one of these**")
left, right = st.columns(2)
with left:
    st.page_link("views/students.py", label="Live — students' browsers", icon=":material/groups:")
    st.caption("Each student's own browser reads their face and sends only numbers. No video leaves their device.")
    st.page_link("views/gallery.py", label="Live — class gallery", icon=":material/grid_view:")
    st.caption("Share the gallery view of your video call; the class is read on this computer.")
    st.page_link("views/camera.py", label="Live — my camera", icon=":material/videocam:")
    st.caption("Your own webcam, to try it out.")
with right:
    st.page_link("views/analyse.py", label="Analyse a recording", icon=":material/upload_file:")
    st.caption("Upload a video of a class and get its class mood, a report and the numbers to download.")
    st.page_link("views/sessions.py", label="Sessions", icon=":material/history:")
    st.caption("Every analysis saved from its first face: open, compare, export, rename or delete.")
    st.page_link("views/about.py", label="About / model card", icon=":material/info:")
    st.caption("What the models are, how well they read faces, their limits and the law.")
