"""Live — my camera: the browser's webcam through WebRTC, faces boxed and labelled, the live panel beside it."""

from __future__ import annotations

import av
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from classmood.app import ui
from classmood.live import LiveSession

KEY = "live_camera"
RATE_HZ = 3.0

st.title("Live — my camera")
st.caption(
    "Your webcam, analysed on this server. Boxes show pseudonymous track ids; each face's apparent expression "
    "only with the per-face view (sidebar)."
)
if not ui.consent_gate("camera"):
    st.info("Confirm consent above to turn on the camera.")
    st.stop()

box = ui.holder(KEY)
expressions = ui.per_face()  # read here: the frame callback runs on another thread, without the page's state


def on_frame(frame: av.VideoFrame) -> av.VideoFrame:
    """Runs on streamlit-webrtc's thread: hand the frame over, draw the latest analysed faces."""
    session = box.active
    image = frame.to_ndarray(format="bgr24")
    if session is None or not session.submit(image):
        return frame
    out = av.VideoFrame.from_ndarray(ui.draw(image, session.latest_detections(), expressions), format="bgr24")
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


video, panel = st.columns([3, 2])
with video:
    ctx = webrtc_streamer(
        key="camera",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration={"iceServers": []},  # no STUN: the browser and this server reach each other directly
        media_stream_constraints={"video": {"width": 640, "height": 480}, "audio": False},
        video_frame_callback=on_frame,
        async_processing=True,
    )
    playing = ctx.state.playing
    if playing and box.active is None:
        box.start(
            LiveSession(
                "camera", "browser webcam", ui.pipeline_config(RATE_HZ), ui.store_or_warn(), alive=ui.browser_alive()
            )
        )
    elif not playing and box.active is not None:
        box.stop()  # one way to stop: the video's own STOP button ends the camera and the analysis
    st.caption(
        "Press START and allow the camera; STOP ends both. From another computer the browser needs HTTPS for "
        "camera access, and a TURN server when no direct connection is possible."
    )
with panel:
    ui.live_panel_fragment(KEY, show_tracks=True)
