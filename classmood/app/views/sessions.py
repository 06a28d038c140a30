"""Sessions: every live or uploaded analysis, saved as numbers only. List, open, compare, export, rename, delete.

Every k here goes through the store (``SessionStore.read_k``): a student-side class is never shown
below the k its students were promised, whatever the sidebar says, and the page says when it raised
k. An error while the page is drawn is a plain message, never a traceback with file paths.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from classmood.app import ui
from classmood.app.uploads import MIME
from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS
from classmood.store import SessionStore

log = logging.getLogger(__name__)


def _floor_notes(notes: dict[int, str]) -> None:
    """Say which sessions are shown above the sidebar's k because of their floor."""
    for sid, note in notes.items():
        st.info(f"Session #{sid}: {note}.")


def _page() -> None:
    st.title("Sessions")
    store = ui.store_or_warn()
    if store is None:
        st.stop()
    table = store.list_sessions()
    if not len(table):
        st.info("No sessions yet. Live and uploaded analyses are saved here as they run.")
        st.stop()
    table = table.sort_values("id", ascending=False)
    st.dataframe(table, hide_index=True)
    st.caption("Track ids are pseudonyms valid inside one session only. Only numbers are stored, never images.")
    rows = table.set_index("id")

    def label(sid: int) -> str:
        row = rows.loc[sid]
        name = row["name"] if isinstance(row["name"], str) and row["name"] else row["source"]
        return f"#{sid} · {row['kind']} · {name} · {str(row['started_at'])[:19]}"

    ids = [int(i) for i in table["id"]]
    opened, compared, exported, managed = st.tabs(["Open", "Compare", "Export", "Rename / delete"])
    with opened:
        _open(store, ids, label)
    with compared:
        _compare(store, ids, label)
    with exported:
        _export(store, ids, label)
    with managed:
        _manage(store, ids, label, rows)
    if "deleted" in st.session_state:
        st.toast(f"Deleted session #{st.session_state.pop('deleted')}")


def _open(store: SessionStore, ids: list[int], label: Callable[[int], str]) -> None:
    sid = st.selectbox("Session", ids, format_func=label, key="open_id")
    meta = store.session(sid)
    k, note = store.read_k(sid, ui.min_faces())  # never below a student-side class's floor
    if note:
        _floor_notes({sid: note})
    bins = store.bins(sid, k)
    st.markdown(f"Status **{meta['status']}** · started {meta['started_at']} · ended {meta['ended_at'] or '—'}")
    ui.mood_charts(bins, k if note else None)
    with st.expander("Settings and summary"):
        st.caption(f"Class numbers from time bins with at least k = {k} faces.")
        st.json({"config": meta["config"], "summary": store.summary(sid, k)})


def _compare(store: SessionStore, ids: list[int], label: Callable[[int], str]) -> None:
    if len(ids) < 2:
        st.caption("Two sessions are needed for a comparison.")
        return
    left, right = st.columns(2)
    a = left.selectbox("First", ids, index=1, format_func=label, key="cmp_a")
    b = right.selectbox("Second", ids, index=0, format_func=label, key="cmp_b")
    diff = store.compare(a, b, min_faces=ui.min_faces())
    _floor_notes(diff.attrs.get("k_notes", {}))
    diff.columns = [f"#{a}", f"#{b}", f"#{b} − #{a}"]
    st.dataframe(diff.style.format("{:.3f}", na_rep="—"))
    shares = diff.loc[[f"share_{e}" for e in EMOTIONS], [f"#{a}", f"#{b}"]]
    shares.index = list(EMOTIONS)
    st.bar_chart(shares, stack=False, height=220)
    st.caption("From bins with at least k faces; apparent facial expressions, not emotional states.")


def _export(store: SessionStore, ids: list[int], label: Callable[[int], str]) -> None:
    sid = st.selectbox("Session", ids, format_func=label, key="export_id")
    fmt = st.radio("Format", ["csv", "parquet"], horizontal=True, key="export_fmt")
    k, note = store.read_k(sid, ui.min_faces())
    if note:
        _floor_notes({sid: note})
    if st.button("Prepare files"):
        with tempfile.TemporaryDirectory(prefix="classmood-export-") as tmp:
            try:
                files = {p.name: p.read_bytes() for p in store.export(sid, tmp, fmt, min_faces=k)}
                st.session_state["export"] = (sid, fmt, k, files)
            except ClassmoodError as exc:
                st.error(str(exc))
    ready = st.session_state.get("export")
    st.caption("faces.csv holds one row per face (the analyst's per-face data); class_mood and the summary follow k.")
    if ready and ready[:3] == (sid, fmt, k):  # files prepared under another k are not offered
        for name, data in ready[3].items():
            st.download_button(
                f"Download {name}",
                data,
                file_name=f"session-{sid}-{name}",
                mime=MIME.get(Path(name).suffix, "application/octet-stream"),
                on_click="ignore",
                key=f"export_{name}",
            )


def _manage(store: SessionStore, ids: list[int], label: Callable[[int], str], rows: pd.DataFrame) -> None:
    sid = st.selectbox("Session", ids, format_func=label, key="manage_id")
    current = rows.loc[sid, "name"]
    # keyed by session: the field shows this session's name, never the text typed for another one
    new_name = st.text_input("Name", value=current if isinstance(current, str) else "", key=f"rename_{sid}")
    if st.button("Rename"):
        store.rename(sid, new_name)
        st.rerun()
    sure = st.checkbox(f"Yes, delete session #{sid} and all its rows", key=f"delete_confirm_{sid}")
    if st.button("Delete session", disabled=not sure, type="primary"):
        store.delete(sid)
        st.session_state["deleted"] = sid
        st.rerun()


try:
    _page()
except ClassmoodError as exc:  # a database that went away, a session deleted meanwhile: one line
    st.error(str(exc))
except Exception as exc:  # a bug: the details go to the server's log, not to the browser
    log.exception("the Sessions page failed")
    st.error(f"The sessions could not be shown ({type(exc).__name__}); the details are in the server's log.")
