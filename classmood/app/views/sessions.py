"""Sessions: every live or uploaded analysis, saved as numbers only. List, open, compare, export, rename, delete."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from classmood.app import ui
from classmood.app.uploads import MIME
from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS

st.title("Sessions")
store = ui.store_or_warn()
if store is None:
    st.stop()
try:
    table = store.list_sessions()
except ClassmoodError as exc:
    st.error(str(exc))
    st.stop()
if not len(table):
    st.info("No sessions yet. Live and uploaded analyses are saved here as they run.")
    st.stop()

table = table.sort_values("id", ascending=False)
st.dataframe(table, hide_index=True)
st.caption("Track ids are pseudonyms valid inside one session only. Only numbers are stored, never images.")


def label(sid: int) -> str:
    row = table.set_index("id").loc[sid]
    name = row["name"] if isinstance(row["name"], str) and row["name"] else row["source"]
    return f"#{sid} · {row['kind']} · {name} · {str(row['started_at'])[:19]}"


ids = [int(i) for i in table["id"]]
opened, compared, exported, managed = st.tabs(["Open", "Compare", "Export", "Rename / delete"])

with opened:
    sid = st.selectbox("Session", ids, format_func=label, key="open_id")
    meta = store.session(sid)
    k = ui.min_faces()
    bins = store.bins(sid, k)
    st.markdown(f"Status **{meta['status']}** · started {meta['started_at']} · ended {meta['ended_at'] or '—'}")
    ui.mood_charts(bins)
    with st.expander("Settings and summary"):
        st.caption(f"Class numbers from time bins with at least k = {k} faces (sidebar).")
        st.json({"config": meta["config"], "summary": store.summary(sid, k)})

with compared:
    if len(ids) < 2:
        st.caption("Two sessions are needed for a comparison.")
    else:
        left, right = st.columns(2)
        a = left.selectbox("First", ids, index=1, format_func=label, key="cmp_a")
        b = right.selectbox("Second", ids, index=0, format_func=label, key="cmp_b")
        diff = store.compare(a, b, min_faces=ui.min_faces())
        diff.columns = [f"#{a}", f"#{b}", f"#{b} − #{a}"]
        st.dataframe(diff.style.format("{:.3f}", na_rep="—"))
        shares = diff.loc[[f"share_{e}" for e in EMOTIONS], [f"#{a}", f"#{b}"]]
        shares.index = list(EMOTIONS)
        st.bar_chart(shares, stack=False, height=220)
        st.caption("From bins with at least k faces; apparent facial expressions, not emotional states.")

with exported:
    sid_x = st.selectbox("Session", ids, format_func=label, key="export_id")
    fmt = st.radio("Format", ["csv", "parquet"], horizontal=True, key="export_fmt")
    if st.button("Prepare files"):
        with tempfile.TemporaryDirectory(prefix="classmood-export-") as tmp:
            try:
                files = {p.name: p.read_bytes() for p in store.export(sid_x, tmp, fmt, min_faces=ui.min_faces())}
                st.session_state["export"] = (sid_x, fmt, files)
            except ClassmoodError as exc:
                st.error(str(exc))
    ready = st.session_state.get("export")
    st.caption("faces.csv holds one row per face (the analyst's per-face data); class_mood and the summary follow k.")
    if ready and ready[:2] == (sid_x, fmt):
        for name, data in ready[2].items():
            st.download_button(
                f"Download {name}",
                data,
                file_name=f"session-{sid_x}-{name}",
                mime=MIME.get(Path(name).suffix, "application/octet-stream"),
                on_click="ignore",
                key=f"export_{name}",
            )

with managed:
    sid_m = st.selectbox("Session", ids, format_func=label, key="manage_id")
    current = table.set_index("id").loc[sid_m, "name"]
    # keyed by session: the field shows this session's name, never the text typed for another one
    new_name = st.text_input("Name", value=current if isinstance(current, str) else "", key=f"rename_{sid_m}")
    if st.button("Rename"):
        store.rename(sid_m, new_name)
        st.rerun()
    sure = st.checkbox(f"Yes, delete session #{sid_m} and all its rows", key=f"delete_confirm_{sid_m}")
    if st.button("Delete session", disabled=not sure, type="primary"):
        store.delete(sid_m)
        st.session_state["deleted"] = sid_m
        st.rerun()
if "deleted" in st.session_state:
    st.toast(f"Deleted session #{st.session_state.pop('deleted')}")
