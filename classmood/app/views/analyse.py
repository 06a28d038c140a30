"""Analyse a recording: upload a video, watch the progress, then the result (headline first) and the downloads."""

from __future__ import annotations

import streamlit as st

from classmood import words
from classmood.app import ui
from classmood.app.uploads import MIME, UploadResult, analyze_upload, check_upload, max_upload_mb, save_upload
from classmood.errors import ClassmoodError

RESULT = "upload_result"

st.title("Analyse a recording")
limit = max_upload_mb()
st.markdown(f"Upload limit: **{limit} MB** per file. Video files (mp4, webm, mov, avi, mkv, …).")
upload = st.file_uploader("Recording of a class", key="upload", help=f"At most {limit} MB.")
annotate = st.checkbox(
    "Also make an annotated video (faces boxed, with each face's expression only in the per-face view)",
    help="Slower; the video is kept in memory for download only and never stored. Without the sidebar's "
    "per-face view it shows boxes and pseudonymous ids only.",
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
                per_face=ui.per_face(),
            )
        except ClassmoodError as exc:
            st.error(str(exc))
        finally:
            path.unlink(missing_ok=True)
            bar.empty()

done: UploadResult | None = st.session_state.get(RESULT)
if done is not None:
    s = done.result.summary
    st.subheader(f"Result: {s.get('input', done.result.source)}")
    saved = f"saved as session {done.session_id}" if done.session_id else "not saved"
    st.caption(
        f"Analysed {s.get('frames_analysed')} of {words.plural(s.get('frames', 0), 'frame')} "
        f"with the {words.MODEL_WORDS.get(str(s.get('model')), s.get('model'))} model · {saved}"
    )
    if done.store_error:
        st.warning(done.store_error)
    if s.get("truncated"):
        st.warning("The video ended early (cut off?); what could be read is analysed.")
    if not s.get("faces"):
        st.info(
            "No faces were found in this recording, so there is no class mood to show (and no session was "
            "saved). Faces need to be visible and about 40 pixels tall or more."
        )
    else:
        k = ui.result_view(
            done.result.raw_bins,
            done.result.min_faces,
            str(s.get("model", "")),
            s.get("tracks"),
            key=f"upload_{id(done)}",
            facing=words.facing_measured(s, done.result.raw_bins),
        )
        if k != done.result.min_faces:
            st.caption(f"The files below were written at the k = {done.result.min_faces} the analysis ran with.")
    st.subheader("Download")
    cols = st.columns(len(done.files) or 1)
    for col, (name, data) in zip(cols, done.files.items(), strict=False):
        mime = MIME.get("." + name.rsplit(".", 1)[-1])
        col.download_button(name, data, file_name=name, mime=mime, on_click="ignore", key=f"dl_{name}")
