"""Analyse a recording: upload a video, watch the progress, then the charts and the outputs to download."""

from __future__ import annotations

import json

import streamlit as st

from classmood.app import ui
from classmood.app.uploads import MIME, UploadResult, analyze_upload, check_upload, max_upload_mb, save_upload
from classmood.errors import ClassmoodError

RESULT = "upload_result"

st.title("Analyse a recording")
limit = max_upload_mb()
st.markdown(f"Upload limit: **{limit} MB** per file. Video files (mp4, webm, mov, avi, mkv, …).")
upload = st.file_uploader("Recording of a class", key="upload", help=f"At most {limit} MB.")
annotate = st.checkbox(
    "Also make an annotated video (faces boxed and labelled)",
    help="Slower; the video is kept in memory for download only and never stored.",
)
rate = st.slider("Analysed frames per second", 0.5, 10.0, 2.0, 0.5)

if upload is not None and st.button("Analyse", type="primary"):
    st.session_state.pop(RESULT, None)
    upload.seek(0)
    head = upload.read(64)
    problem = check_upload(upload.name, upload.size, head, limit)
    if problem:
        st.error(problem)
    else:
        path = save_upload(upload, upload.name)
        bar = st.progress(0.0, text="Analysing…")

        def show_progress(done: float, note: str) -> None:
            bar.progress(done, text=f"Analysing… {done:.0%} ({note})")

        try:
            st.session_state[RESULT] = analyze_upload(
                path,
                upload.name,
                ui.pipeline_config(rate),
                ui.store_or_warn(),
                on_progress=show_progress,
                annotate=annotate,
            )
        except ClassmoodError as exc:
            st.error(str(exc))
        finally:
            path.unlink(missing_ok=True)
            bar.empty()

done: UploadResult | None = st.session_state.get(RESULT)
if done is not None:
    s = done.result.summary
    st.success(
        f"Analysed {s.get('frames_analysed')} of {s.get('frames')} frames: {s.get('faces')} faces, "
        f"{s.get('tracks')} tracks" + (f" · saved as session {done.session_id}" if done.session_id else "")
    )
    if done.store_error:
        st.warning(done.store_error)
    if s.get("truncated"):
        st.warning("The video ended early (truncated?); what was read is analysed.")
    st.subheader("Download")
    cols = st.columns(len(done.files) or 1)
    for col, (name, data) in zip(cols, done.files.items(), strict=False):
        mime = MIME.get("." + name.rsplit(".", 1)[-1])
        col.download_button(name, data, file_name=name, mime=mime, on_click="ignore", key=f"dl_{name}")
    st.subheader("Class mood over time")
    ui.mood_charts(ui.bins_under_k(done.result.raw_bins))
    with st.expander("Summary"):
        shown = {**s, "class": ui.class_numbers(done.result.raw_bins)}  # under the sidebar's k now
        st.code(json.dumps(shown, indent=2), language="json")
        st.caption("The downloaded files were written with the k set when the analysis ran.")
