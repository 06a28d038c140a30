"""Live — class gallery: a shared video-call gallery (browser screen share or this server's screen)."""

from __future__ import annotations

import streamlit as st

from classmood.app import ui
from classmood.app.screenshare import decode_frame, screen_share
from classmood.errors import ClassmoodError
from classmood.live import LiveSession
from classmood.vision.sources import open_source

KEY = "live_gallery"
BROWSER = "browser screen share"
RATE_HZ = 1.0  # a 49-face gallery on 2 cores: one analysed frame a second leaves room for the UI

st.title("Live — class gallery")
st.caption(
    "Share the window of your video call in gallery view. The class view shows aggregates only, and only "
    "while at least k faces are visible; the per-face grid only with the per-face view on (sidebar). Tracks "
    "are numbered, never named, and no pictures are kept."
)
consent = ui.consent_gate("gallery")
box = ui.holder(KEY)
how = st.radio(
    "Source",
    ["Share a screen or window from this browser", "Capture this server's screen"],
    horizontal=True,
    key="gallery_source",
    disabled=box.active is not None,
)
video, panel = st.columns([2, 3])

with video:
    if how.startswith("Share"):

        @st.fragment
        def browser_share() -> None:
            result = screen_share("screen_share", active=consent and not box.paused)
            sharing = consent and bool(result.get("sharing"))
            if not sharing:
                box.paused = False
                if box.active is not None and box.active.source == BROWSER:
                    box.stop()
            elif box.active is None and not box.paused:
                box.start(
                    LiveSession(
                        "gallery", BROWSER, ui.pipeline_config(RATE_HZ), ui.store_or_warn(), alive=ui.browser_alive()
                    )
                )
            image = decode_frame(result.get("frame"))
            if image is not None and box.active is not None:
                box.active.submit(image)

        browser_share()
        st.caption("The browser asks which screen, window or tab to share; pick the video call.")
    else:
        spec = st.text_input(
            "Screen", "screen", help="screen (primary monitor), screen:N (monitor N) or screen:X,Y,W,H (a region)"
        )
        if box.active is None and st.button("Start capture", type="primary", disabled=not consent):
            try:
                source = open_source(spec)
            except ClassmoodError as exc:
                st.error(str(exc))
            else:
                # a server-side capture: it stops when this browser session goes away (a closed tab)
                session = LiveSession(
                    "gallery", source.name, ui.pipeline_config(RATE_HZ), ui.store_or_warn(), alive=ui.browser_alive()
                )
                box.start(session).feed(source)
                st.rerun()
        if box.active is not None and st.button("Stop capture", type="primary"):
            box.stop()  # the browser share has its own "Stop sharing": one stop button per way of capturing
            st.rerun()
        if not consent:
            st.info("Confirm consent above before capturing.")

with panel:
    ui.live_panel_fragment(KEY, show_tracks=True)
