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
# (page, label, icon, what it is for), in two columns: the live ways in, then recorded work
LIVE = [
    (
        "views/students.py",
        "Live — students' browsers",
        ":material/groups:",
        "Each student's own browser reads their face and sends only numbers. No video leaves their device.",
    ),
    (
        "views/gallery.py",
        "Live — class gallery",
        ":material/grid_view:",
        "Share the gallery view of your video call; the class is read on this computer.",
    ),
    ("views/camera.py", "Live — my camera", ":material/videocam:", "Your own webcam, to try it out."),
]
RECORDED = [
    (
        "views/analyse.py",
        "Analyse a recording",
        ":material/upload_file:",
        "Upload a video of a class and get its class mood, a report and the numbers to download.",
    ),
    (
        "views/sessions.py",
        "Sessions",
        ":material/history:",
        "Every analysis saved from its first face: open, compare, export, rename or delete.",
    ),
    (
        "views/about.py",
        "About / model card",
        ":material/info:",
        "What the models are, how well they read faces, their limits and the law.",
    ),
]
for column, links in zip(st.columns(2), (LIVE, RECORDED), strict=True):
    with column:
        for page, label, icon, caption in links:
            st.page_link(page, label=label, icon=icon)
            st.caption(caption)
