"""Browser screen sharing for the gallery page: a small Streamlit component around ``getDisplayMedia``.

streamlit-webrtc only captures cameras, so the shared screen (or window, or tab) of the video call
comes in another way: the component shows the browser's own share picker, keeps the stream in the
page, and every ``interval_ms`` draws the newest picture onto a canvas, scales it to at most
``max_width`` pixels and sends it to Python as a JPEG data URL (a trigger value: it reruns only the
fragment that holds the component). Python decodes it with ``decode_frame`` and hands it to the
live worker. Frames are never stored; the browser stops sending when the share ends, when the page
is left, or when Python passes ``active: false``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import cv2
import numpy as np

HTML = """
<div class="cm-share">
  <button class="cm-start" type="button">Share screen</button>
  <button class="cm-stop" type="button" disabled>Stop sharing</button>
  <span class="cm-info">Not sharing.</span>
</div>
"""

CSS = """
.cm-share { display: flex; gap: .6rem; align-items: center; font-family: var(--st-font, sans-serif); }
.cm-share button { padding: .35rem .9rem; border-radius: .5rem; border: 1px solid var(--st-border-color, #ccc);
  background: var(--st-secondary-background-color, #f0f2f6); color: var(--st-text-color, #222); cursor: pointer; }
.cm-share button.cm-start { background: var(--st-primary-color, #ff4b4b); color: white; border: none; }
.cm-share button:disabled { opacity: .45; cursor: default; }
.cm-info { color: var(--st-text-color, #444); font-size: .9rem; }
"""

JS = """
export default function (component) {
  const { data, parentElement, setTriggerValue, setStateValue } = component;
  const opts = data || {};
  const g = (window.__classmoodScreen = window.__classmoodScreen || { stream: null, timer: null, sent: 0 });
  g.send = setTriggerValue;
  g.setState = setStateValue;
  const root = parentElement;
  const start = root.querySelector(".cm-start");
  const stopBtn = root.querySelector(".cm-stop");
  const info = root.querySelector(".cm-info");
  const show = () => {
    const on = !!g.stream;
    start.disabled = on || !opts.active;
    stopBtn.disabled = !on;
    info.textContent = on ? `Sharing: ${g.sent} frames sent` : opts.active ? "Not sharing." : "Confirm consent first.";
  };
  const stop = () => {
    if (g.timer) clearInterval(g.timer);
    g.timer = null;
    if (g.stream) g.stream.getTracks().forEach((t) => t.stop());
    g.stream = null;
    if (g.setState) g.setState("sharing", false);
    show();
  };
  const grab = () => {
    const v = g.video;
    if (!v || v.readyState < 2 || !v.videoWidth) return;
    const scale = Math.min(1, (opts.max_width || 1920) / v.videoWidth);
    const w = Math.round(v.videoWidth * scale), h = Math.round(v.videoHeight * scale);
    g.canvas = g.canvas || document.createElement("canvas");
    g.canvas.width = w;
    g.canvas.height = h;
    g.canvas.getContext("2d").drawImage(v, 0, 0, w, h);
    g.sent += 1;
    g.send("frame", g.canvas.toDataURL("image/jpeg", opts.quality || 0.85));
    show();
  };
  start.onclick = async () => {
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 5 }, audio: false });
      g.stream = stream;
      g.sent = 0;
      g.video = document.createElement("video");
      g.video.muted = true;
      g.video.srcObject = stream;
      await g.video.play();
      stream.getVideoTracks()[0].addEventListener("ended", stop);
      g.timer = setInterval(grab, opts.interval_ms || 1000);
      g.setState("sharing", true);
    } catch (err) {
      info.textContent = `Screen sharing not started: ${err && err.message ? err.message : err}`;
      return;
    }
    show();
  };
  stopBtn.onclick = stop;
  if (!opts.active && g.stream) stop();
  show();
  // Leaving the page removes the component: stop sharing unless it comes back at once (a rerun).
  return () => setTimeout(() => { if (!(root.host || root).isConnected) stop(); }, 1500);
}
"""

_component: Any = None


def screen_share(key: str, active: bool, interval_ms: int = 1000, max_width: int = 1920) -> Any:
    """Mount the component; the result has ``.sharing`` (state) and ``.frame`` (a JPEG data URL or None)."""
    global _component
    import streamlit as st

    if _component is None:
        _component = st.components.v2.component("classmood_screen_share", html=HTML, css=CSS, js=JS)
    return _component(
        key=key,
        data={"active": active, "interval_ms": interval_ms, "max_width": max_width},
        default={"sharing": False},
        height=48,
        on_sharing_change=lambda: None,
        on_frame_change=lambda: None,
    )


def decode_frame(data_url: str | None) -> np.ndarray | None:
    """A ``data:image/...;base64,`` URL as a BGR image, or None if it is not a decodable picture."""
    if not data_url or not isinstance(data_url, str) or "," not in data_url:
        return None
    header, _, payload = data_url.partition(",")
    if not header.startswith("data:image/") or ";base64" not in header:
        return None
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None
