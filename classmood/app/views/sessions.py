"""Sessions: every live or uploaded analysis, saved as numbers only. List, open, compare, export, rename, delete.

A session opens at the k it was run with (its own, not the sidebar's), with its headline first;
lowering k takes the same explicit step as on a live page (``ui.view_k``), and every k goes through
the store (``SessionStore.read_k``), so a student-side class is never shown below the k its
students were promised. Times are local to the reader's browser. An error while the page is drawn
is a plain message, never a traceback with file paths.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from classmood import words
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


def _model_of(config: Any) -> str:
    return words.MODEL_WORDS.get(str(config.get("model", "")), str(config.get("model") or "—"))


def _markdown_escaped(text: str) -> str:
    """``text`` shown as it is in Markdown (a file called ``*lesson*_1.mp4`` is not set in italics)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~<>$:])", r"\\\1", text)


def _name(row: Any) -> str:
    """A session's name, or its source (the file or the camera) when it has none."""
    return row["name"] if isinstance(row["name"], str) and row["name"] else str(row["source"])


def _page() -> None:
    st.title("Sessions")
    store = ui.store_or_warn()
    if store is None:
        st.stop()
    table = store.list_sessions()
    if not len(table):
        st.info("No sessions yet. Live and uploaded analyses are saved here as they run, from the first face seen.")
        st.stop()
    table = table.sort_values("id", ascending=False)
    zone = ui.browser_zone()
    models = {sid: _model_of(store.session(int(sid))["config"]) for sid in table["id"]}
    st.dataframe(
        pd.DataFrame(
            {
                "Session": [f"#{i}" for i in table["id"]],
                "Name": [_name(r) for _, r in table.iterrows()],
                "What": [words.KIND_WORDS.get(k, k) for k in table["kind"]],
                "Model": [models[i] for i in table["id"]],
                "Started": [words.local_time(t, zone) for t in table["started_at"]],
                "Length": [words.clock(d) for d in table["duration_s"]],
                "Status": [words.STATUS_WORDS.get(x, x) for x in table["status"]],
                "Faces found": table["faces"].tolist(),
                "People seen": table["tracks"].tolist(),
            }
        ),
        hide_index=True,
    )
    st.caption("Ids of people are pseudonyms valid inside one session only. Only numbers are stored, never images.")
    rows = table.set_index("id")

    def label(sid: int) -> str:
        row = rows.loc[sid]
        return f"#{sid} · {_name(row)} · {words.KIND_WORDS.get(row['kind'], row['kind'])} · " + words.local_time(
            row["started_at"], zone
        )

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


def _session_k(store: SessionStore, sid: int, key: str) -> int:
    """The k this tab reads the session at: its own unless changed (``ui.view_k``), never below its floor."""
    meta = store.session(sid)
    own, _ = store.read_k(sid)
    k = ui.view_k(f"{key}_{sid}", own, meta["k_floor"])
    k, note = store.read_k(sid, k)
    if note:
        _floor_notes({sid: note})
    return k


def _started_epoch(meta: dict[str, Any]) -> float | None:
    try:
        return datetime.fromisoformat(str(meta["started_at"])).timestamp()
    except (KeyError, ValueError):
        return None


def _open(store: SessionStore, ids: list[int], label: Callable[[int], str]) -> None:
    sid = st.selectbox("Session", ids, format_func=label, key="open_id")
    meta = store.session(sid)
    zone = ui.browser_zone()
    ended = f" · ended {words.local_time(meta['ended_at'], zone)}" if meta["ended_at"] else ""
    kind, status = (
        words.KIND_WORDS.get(meta["kind"], meta["kind"]),
        words.STATUS_WORDS.get(meta["status"], meta["status"]),
    )
    st.markdown(
        f"**{_markdown_escaped(_name(meta))}** · {kind} · {status}"
        f" · started {words.local_time(meta['started_at'], zone)}{ended}"
        f" · model {_model_of(meta['config'])}"
    )
    own, _ = store.read_k(sid)

    def floored(k: int) -> int:
        k, note = store.read_k(sid, k)  # never below a student-side class's floor
        if note:
            _floor_notes({sid: note})
        return k

    summary = store.summary(sid, own)
    raw = store.raw_mood_bins(sid)
    live = meta["kind"] in ("camera", "gallery", "students")  # a live session's times are clock times
    ui.result_view(
        raw,
        own,
        str(meta["config"].get("model", "")),
        summary.get("tracks"),
        key=f"open_{sid}",
        floor=meta["k_floor"],
        started_at=_started_epoch(meta) if live else None,
        people_label="students who joined" if meta["kind"] == "students" else "people seen",
        numbers_for=lambda k: store.class_summary(sid, k),
        read_k=floored,
        facing=words.facing_measured(summary, raw),
    )
    with st.expander("Settings"):
        config = meta["config"]
        st.dataframe(
            pd.DataFrame(
                {
                    "Setting": ["Expression model", "Face detector", "Analysed frames a second", "k it ran with"],
                    "Value": [
                        _model_of(config),
                        words.DETECTOR_WORDS.get(str(config.get("detector")), str(config.get("detector") or "—")),
                        f"{config['rate_hz']:g}" if isinstance(config.get("rate_hz"), int | float) else "—",
                        str(store.read_k(sid)[0]),
                    ],
                }
            ),
            hide_index=True,
        )


def _compare(store: SessionStore, ids: list[int], label: Callable[[int], str]) -> None:
    if len(ids) < 2:
        st.caption("Two sessions are needed for a comparison.")
        return
    left, right = st.columns(2)
    with left:
        a = st.selectbox("First", ids, index=1, format_func=label, key="cmp_a")
        k_a = _session_k(store, a, "cmp_a")
    with right:
        b = st.selectbox("Second", ids, index=0, format_func=label, key="cmp_b")
        k_b = _session_k(store, b, "cmp_b")
    from classmood.analytics.compare import compare

    diff = compare(store.raw_mood_bins(a), store.raw_mood_bins(b), k_a, k_b)
    metric_words = {f"share_{e}": f"looking {words.expression(e)}" for e in EMOTIONS}
    metric_words.update(
        valence="mood score",
        faces="faces present",
        facing_share=words.COLUMN_WORDS["facing_share"],
        looking_down_share=words.COLUMN_WORDS["looking_down_share"],
    )
    shown = pd.DataFrame(
        {
            "": [metric_words.get(str(m), str(m)) for m in diff.index],
            f"#{a}": [_compare_value(m, v) for m, v in diff["a"].items()],
            f"#{b}": [_compare_value(m, v) for m, v in diff["b"].items()],
            "difference": [_compare_value(m, v, signed=True) for m, v in diff["difference"].items()],
        }
    )
    st.dataframe(shown, hide_index=True, height=35 * (len(shown) + 1) + 3)  # every metric, no scrolling
    import altair as alt

    from classmood.app.charts import EXPRESSION_ORDER, expression_scale

    bars = pd.DataFrame(
        [
            {"expression": words.expression(e), "session": f"#{sid}", "share": float(diff.loc[f"share_{e}", col])}
            for e in EMOTIONS
            for sid, col in ((a, "a"), (b, "b"))
            if pd.notna(diff.loc[f"share_{e}", col])
        ]
    )
    if len(bars):
        chart = (
            alt.Chart(bars)
            .mark_bar()
            .encode(
                x=alt.X("expression:N", sort=EXPRESSION_ORDER, title=None),
                xOffset="session:N",
                y=alt.Y("share:Q", title="share of faces read", axis=alt.Axis(format="%")),
                color=alt.Color("expression:N", scale=expression_scale(), legend=None),
                opacity=alt.Opacity("session:N", scale=alt.Scale(range=[0.55, 1.0]), title="session"),
                tooltip=["session:N", "expression:N", alt.Tooltip("share:Q", format=".0%")],
            )
            .properties(height=220)
        )
        st.altair_chart(chart, width="stretch")
        st.caption(f"Paler bars: #{a}; full colour: #{b}.")
    st.caption("From moments with enough faces read (each session's k); apparent facial expressions, not feelings.")


def _compare_value(metric: Any, value: Any, signed: bool = False) -> str:
    if pd.isna(value):
        return "—"
    if str(metric).startswith("share_") or str(metric) in ("facing_share", "looking_down_share"):
        return (("+" if value > 0 else "") if signed else "") + words.percent(float(value))
    if metric == "valence":
        return words.score(float(value))
    return (f"{value:+.1f}" if signed else words.faces(float(value))).replace("-", "−")


def _export(store: SessionStore, ids: list[int], label: Callable[[int], str]) -> None:
    sid = st.selectbox("Session", ids, format_func=label, key="export_id")
    fmt = st.radio("Format", ["csv", "parquet"], horizontal=True, key="export_fmt")
    k = _session_k(store, sid, "export")
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
