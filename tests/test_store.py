"""The session database: writing, reading, export, compare, delete, the recorder and the ``sessions`` CLI."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from classmood.cli import main
from classmood.containers import MoodBin
from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS
from classmood.store import BIN_COLUMNS, FACE_COLUMNS, SessionRecorder, SessionStore, default_url, open_store
from classmood.store.schema import bins_table, faces_table

# Set (as .ci/run does, with a throwaway local server) to run every store test on PostgreSQL too.
POSTGRES_URL = os.environ.get("CLASSMOOD_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", *(["postgresql"] if POSTGRES_URL else [])])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'sessions.db'}"
        return
    assert POSTGRES_URL
    yield POSTGRES_URL
    from sqlalchemy import create_engine

    from classmood.store.schema import metadata

    engine = create_engine(POSTGRES_URL)
    metadata.drop_all(engine)  # every test starts from an empty database
    engine.dispose()


@pytest.fixture
def store(url: str) -> SessionStore:
    s = open_store(url)
    yield s
    s.close()


def face(frame: int, track: int, emotion: str = "happy", time_s: float | None = None) -> dict[str, Any]:
    probs = {f"p_{e}": (0.7 if e == emotion else 0.05) for e in EMOTIONS}
    row: dict[str, Any] = {
        "frame": frame,
        "time_s": frame * 0.5 if time_s is None else time_s,
        "track_id": track,
        "x": 10.0 * track,
        "y": 20.5,
        "w": 30.0,
        "h": 31.5,
        "det_score": 0.9,
        "emotion": emotion,
    }
    pose = {"yaw": 5.0 * track, "pitch": -4.0, "roll": 1.5, "facing": "toward" if track < 6 else "away"}
    return row | probs | pose


def mood(
    start: float,
    frames: int,
    faces: float,
    shares: dict[str, float] | None,
    valence: float | None = None,
    unread: float = 0.1,
    facing: float = 0.75,
) -> dict[str, object]:
    full = None if shares is None else {e: shares.get(e, 0.0) for e in EMOTIONS}
    negative = None if full is None else full["angry"] + full["disgust"] + full["fear"] + full["sad"]
    flags = ["faces_dropped"] if faces < 2 else []
    uncertain = None if full is None else unread
    change = None if valence is None else valence / 2
    read = faces if uncertain is None else round(faces * (1 - uncertain), 2)
    spread = None if valence is None else 0.25
    return MoodBin(
        start,
        start + 5,
        frames,
        faces,
        3,
        shares is None,
        full,
        full,
        valence,
        negative,
        flags,
        uncertain,
        change,
        read,
        spread,
        faces_oriented=faces,
        facing_share=facing,
        looking_down_share=(1 - facing) / 2,
    ).as_row()


def count(store: SessionStore, table: Any, session_id: int) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(table.c.session_id == session_id)).scalar_one())


def test_columns_are_the_pipelines() -> None:
    from classmood.labels import FACE_COLUMNS as PIPELINE_FACES

    assert FACE_COLUMNS == PIPELINE_FACES
    assert list(mood(0, 1, 5, {"happy": 1.0}, 1.0)) == BIN_COLUMNS


def test_start_update_finish(store: SessionStore) -> None:
    sid = store.start_session("camera", "webcam:0", {"rate_hz": 2.0}, name="Monday")
    s = store.session(sid)
    assert (s["kind"], s["source"], s["status"], s["name"], s["ended_at"]) == (
        "camera",
        "webcam:0",
        "running",
        "Monday",
        None,
    )
    assert s["config"] == {"rate_hz": 2.0} and s["summary"] == {}
    started = datetime.fromisoformat(s["started_at"])
    assert started.utcoffset() == timedelta(0)

    store.add_update(sid, [face(0, 1), face(0, 2)], [])
    store.add_update(sid, [face(1, 1)], [mood(0, 2, 1.5, None)])
    assert count(store, faces_table, sid) == 3 and count(store, bins_table, sid) == 1

    store.finish_session(sid, {"faces": 3, "shares": {"happy": 1.0}})
    s = store.session(sid)
    assert s["status"] == "finished" and s["summary"] == {"faces": 3, "shares": {"happy": 1.0}}
    assert datetime.fromisoformat(s["ended_at"]) >= started
    store.finish_session(sid, status="stopped")  # no summary: the stored one stays
    assert store.session(sid)["summary"]["faces"] == 3 and store.session(sid)["status"] == "stopped"
    store.rename(sid, "Tuesday")
    assert store.session(sid)["name"] == "Tuesday"


def test_bad_input_is_a_one_line_error(store: SessionStore) -> None:
    with pytest.raises(ClassmoodError, match="unknown session kind 'zoom'"):
        store.start_session("zoom", "x")
    sid = store.start_session("cli", "x")
    with pytest.raises(ClassmoodError, match="unknown final status"):
        store.finish_session(sid, status="running")
    bad = face(0, 1)
    del bad["det_score"]
    with pytest.raises(ClassmoodError, match=r"face row lacks column.* det_score"):
        store.add_faces(sid, [face(1, 1), bad])
    assert count(store, faces_table, sid) == 0  # nothing of a rejected update is written


def test_list_newest_first_with_counts(store: SessionStore) -> None:
    empty = store.list_sessions()
    assert list(empty.columns) == [
        *["id", "name", "kind", "source", "status", "started_at", "ended_at"],
        *["faces", "tracks", "bins", "duration_s"],
    ]
    assert len(empty) == 0
    a = store.start_session("upload", "a.mp4")
    store.add_faces(a, [face(0, 1), face(1, 1), face(2, 2, time_s=7.25)])
    store.add_bins(a, [mood(0, 2, 1.0, None), mood(5, 1, 1.0, None)])
    b = store.start_session("gallery", "b.mp4")
    store.add_bins(b, [mood(0, 1, 0.0, None), mood(10, 1, 0.0, None)])  # no faces at all
    c = store.start_session("cli", "c.png")
    table = store.list_sessions()
    assert table["id"].tolist() == [c, b, a]
    rows = table.set_index("id")
    assert rows.loc[a, ["faces", "tracks", "bins"]].tolist() == [3, 2, 2]
    assert rows.loc[a, "duration_s"] == 7.25  # last face time (later than the last bin start, 5)
    assert rows.loc[b, ["faces", "tracks", "bins"]].tolist() == [0, 0, 2]
    assert rows.loc[b, "duration_s"] == 10.0  # last bin start
    assert rows.loc[c, ["faces", "tracks", "bins", "duration_s"]].tolist() == [0, 0, 0, 0.0]
    assert rows.loc[c, "status"] == "running" and pd.isna(rows.loc[c, "ended_at"])


def test_faces_and_bins_round_trip(store: SessionStore) -> None:
    sid = store.start_session("upload", "class.mp4")
    faces = [face(2, 3, "sad"), face(0, 1, "neutral"), face(1, 1, "happy")]
    faces[1]["p_fear"] = float("nan")  # an unclassified probability comes back as NaN
    bins = [mood(5, 2, 6.0, {"happy": 0.5, "sad": 0.5}, -0.1), mood(0, 3, 1.0, None)]
    store.add_update(sid, faces, bins)

    got = store.faces(sid)
    assert list(got.columns) == FACE_COLUMNS
    want = pd.DataFrame(sorted(faces, key=lambda r: r["frame"]), columns=FACE_COLUMNS)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert got["frame"].dtype == "int64" and got["track_id"].dtype == "int64"

    got_bins = store.bins(sid, min_faces=1)  # k = 1: every stored number comes back as it was written
    assert list(got_bins.columns) == BIN_COLUMNS
    want_bins = pd.DataFrame(sorted(bins, key=lambda r: float(r["start_s"])), columns=BIN_COLUMNS)
    kept = [c for c in BIN_COLUMNS if c not in ("suppressed", "flags")]  # the k rule sets these when read
    pd.testing.assert_frame_equal(got_bins[kept], want_bins[kept].astype({"share_happy": "float64"}), check_dtype=False)
    assert got_bins["share_sad"].isna().tolist() == [True, False]
    under_k = store.bins(sid)  # the session's own k (default 5): the 1-face bin is hidden
    assert under_k["suppressed"].tolist() == [True, False] and under_k["flags"].tolist() == ["", ""]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export(store: SessionStore, tmp_path: Path, fmt: str) -> None:
    sid = store.start_session("upload", "class.mp4", {"bin_s": 5.0}, name="Lecture 3")
    store.add_update(sid, [face(0, 1), face(1, 2, "sad")], [mood(0, 2, 6.0, {"happy": 0.5, "sad": 0.5}, 0.2)])
    store.finish_session(sid, {"faces": 2})
    paths = store.export(sid, tmp_path / "out" / "deep", fmt)
    assert [p.name for p in paths] == [f"faces.{fmt}", f"class_mood.{fmt}", "session.json"]
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    pd.testing.assert_frame_equal(read(paths[0]), store.faces(sid), check_dtype=False)
    back = read(paths[1])
    if fmt == "csv":
        back["flags"] = back["flags"].fillna("")
    pd.testing.assert_frame_equal(back, store.bins(sid), check_dtype=False)
    meta = json.loads(paths[2].read_text())
    assert meta["id"] == sid and meta["name"] == "Lecture 3"
    assert meta["config"] == {"bin_s": 5.0} and meta["summary"]["faces"] == 2
    assert meta["summary"]["class"]["shares"]["happy"] == 0.5  # 6 faces >= k: the class numbers, under k
    assert "not inner emotional states" in meta["note"]
    with pytest.raises(ClassmoodError, match="unknown export format"):
        store.export(sid, tmp_path, "xlsx")


def test_compare_by_hand(store: SessionStore) -> None:
    a = store.start_session("upload", "a.mp4")
    store.add_bins(
        a,
        [
            mood(0, 2, 5.0, {"happy": 0.6, "neutral": 0.4}, 0.5, unread=0.0),  # 10 faces, all read
            mood(5, 2, 10.0, {"happy": 0.3, "neutral": 0.7}, 0.1, unread=0.0),  # 20 faces
            mood(10, 4, 1.0, None),  # suppressed: counts for faces only
        ],
    )
    b = store.start_session("upload", "b.mp4")
    store.add_bins(b, [mood(0, 1, 6.0, {"happy": 1.0}, 0.8, unread=0.0, facing=0.5)])
    table = store.compare(a, b)
    assert list(table.columns) == ["a", "b", "difference"]
    assert table.index.tolist() == [
        *[f"share_{e}" for e in EMOTIONS],
        "valence",
        "facing_share",
        "looking_down_share",
        "faces",
    ]
    # facing: from the bins with at least k = 5 faces clearly oriented (the third bin's one face does not count)
    assert table.loc["facing_share"].tolist() == pytest.approx([0.75, 0.5, -0.25])
    assert table.loc["looking_down_share", "a"] == pytest.approx(0.125)
    assert table.loc["share_happy", "a"] == pytest.approx((0.6 * 10 + 0.3 * 20) / 30)  # 0.4
    assert table.loc["share_neutral", "a"] == pytest.approx(0.6)
    assert table.loc["valence", "a"] == pytest.approx(7 / 30)
    assert table.loc["faces", "a"] == pytest.approx((10 + 20 + 4) / 8)  # 4.25 faces per analysed frame
    assert table.loc["share_happy", "difference"] == pytest.approx(0.6)
    assert table.loc["share_neutral", "difference"] == pytest.approx(-0.6)
    assert table.loc["valence", "difference"] == pytest.approx(0.8 - 7 / 30)
    assert table.loc["faces", "difference"] == pytest.approx(1.75)
    assert table.loc["share_angry"].tolist() == [0.0, 0.0, 0.0]

    only_suppressed = store.start_session("cli", "c.png")
    store.add_bins(only_suppressed, [mood(0, 1, 2.0, None)])
    small = store.compare(only_suppressed, b)
    assert pd.isna(small.loc["share_happy", "a"]) and small.loc["faces", "a"] == 2.0
    assert pd.isna(small.loc["facing_share", "a"])


def test_delete_removes_only_that_session(store: SessionStore) -> None:
    keep = store.start_session("upload", "keep.mp4")
    gone = store.start_session("upload", "gone.mp4")
    for sid in (keep, gone):
        store.add_update(sid, [face(0, 1), face(1, 1)], [mood(0, 2, 1.0, None)])
    store.delete(gone)
    assert count(store, faces_table, gone) == 0 and count(store, bins_table, gone) == 0
    assert count(store, faces_table, keep) == 2 and count(store, bins_table, keep) == 1
    assert store.list_sessions()["id"].tolist() == [keep]
    with pytest.raises(ClassmoodError, match=f"no session {gone}"):
        store.delete(gone)


def test_missing_session_is_a_clear_error(store: SessionStore, tmp_path: Path) -> None:
    calls = [
        lambda: store.session(99),
        lambda: store.faces(99),
        lambda: store.bins(99),
        lambda: store.add_update(99, [face(0, 1)], []),
        lambda: store.finish_session(99),
        lambda: store.rename(99, "x"),
        lambda: store.export(99, tmp_path),
        lambda: store.compare(99, 99),
        lambda: store.delete(99),
    ]
    for call in calls:
        with pytest.raises(ClassmoodError, match=r"^no session 99$"):
            call()


class FakeUpdate:
    """What SessionRecorder needs from a pipeline Update."""

    def __init__(self, frame: int, bins: list[MoodBin] | None = None) -> None:
        self.frame = frame
        self.bins = bins or []

    def face_rows(self) -> list[dict[str, Any]]:
        return [face(self.frame, 1), face(self.frame, 2)]


def test_recorder_marks_failed_and_keeps_earlier_rows(store: SessionStore) -> None:
    with pytest.raises(RuntimeError, match="decoder died"), SessionRecorder(store, "upload", "broken.mp4", {}) as rec:
        rec.add(FakeUpdate(0))  # type: ignore[arg-type]
        rec.add(FakeUpdate(1, [MoodBin(0, 5, 2, 2.0, 2, True, None, None, None, None)]))  # type: ignore[arg-type]
        raise RuntimeError("decoder died")
    assert rec.session_id is not None
    meta = store.session(rec.session_id)
    assert meta["status"] == "failed" and "decoder died" in meta["summary"]["error"]
    assert store.faces(rec.session_id)["frame"].tolist() == [0, 0, 1, 1]
    assert len(store.bins(rec.session_id)) == 1


def test_recorder_finished_and_stopped(store: SessionStore) -> None:
    with SessionRecorder(store, "upload", "ok.mp4", {}) as done:
        for i in range(2):
            done.add(FakeUpdate(i))  # type: ignore[arg-type]
            assert len(store.faces(done.session_id or 0)) == 2 * (i + 1)  # committed while still running
        done.finish({"faces": 4})
    assert store.session(done.session_id or 0)["status"] == "finished"
    assert store.session(done.session_id or 0)["summary"] == {"faces": 4}

    with pytest.raises(KeyboardInterrupt), SessionRecorder(store, "camera", "webcam:0", {}) as live:
        live.add(FakeUpdate(0))  # type: ignore[arg-type]
        live.add(FakeUpdate(1))  # type: ignore[arg-type]
        raise KeyboardInterrupt  # the user pressed stop (Ctrl-C, SIGTERM, a page left)
    assert store.session(live.session_id or 0)["status"] == "stopped"
    assert len(store.faces(live.session_id or 0)) == 4

    with SessionRecorder(store, "cli", "left.mp4", {}) as unfinished:  # the block ended without finish()
        pass
    assert store.session(unfinished.session_id or 0)["status"] == "stopped"


def test_recorder_never_stops_the_analysis_when_the_database_fails(store: SessionStore) -> None:
    with SessionRecorder(store, "cli", "a.mp4", {}) as rec:
        store.delete(rec.session_id or 0)  # the row vanishes under the recorder
        rec.add(FakeUpdate(0))  # type: ignore[arg-type]
        rec.add(FakeUpdate(1))  # type: ignore[arg-type]
    assert rec.error is not None and "no session" in rec.error


def test_sqlite_wal_and_threads(store: SessionStore) -> None:
    if store.url.startswith("sqlite"):
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    sid = store.start_session("camera", "webcam:0")
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(5):
                store.add_faces(sid, [face(i, 1)])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    for _ in range(5):
        store.list_sessions()
    thread.join()
    assert errors == [] and len(store.faces(sid)) == 5


def test_default_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/classmood")
    monkeypatch.setenv("CLASSMOOD_DB", str(tmp_path / "ignored.db"))
    assert default_url() == "postgresql://u@db.example/classmood"

    monkeypatch.delenv("DATABASE_URL")
    path = tmp_path / "custom" / "dir" / "s.db"
    monkeypatch.setenv("CLASSMOOD_DB", str(path))
    assert default_url() == f"sqlite:///{path}"
    assert path.parent.is_dir()

    monkeypatch.delenv("CLASSMOOD_DB")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_url() == f"sqlite:///{tmp_path / 'home' / '.classmood' / 'sessions.db'}"
    assert (tmp_path / "home" / ".classmood").is_dir()
    store = open_store()
    assert store.url == default_url() and (tmp_path / "home" / ".classmood" / "sessions.db").is_file()
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuchdialect://x/y", "cannot open session database"),
        ("sqlite:////proc/no/such/dir/s.db", "cannot open session database"),
    ],
)
def test_bad_database_is_a_one_line_error(url: str, message: str) -> None:
    with pytest.raises(ClassmoodError, match=message) as info:
        open_store(url)
    assert "\n" not in str(info.value)


def test_password_is_not_shown() -> None:
    with pytest.raises(ClassmoodError) as info:
        open_store("nosuchdialect://user:hunter2@host/db")
    assert "hunter2" not in str(info.value)


def test_cli_sessions(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store(url)
    first = store.start_session("upload", "first.mp4", name="first")
    store.add_update(first, [face(0, 1)], [mood(0, 1, 6.0, {"happy": 1.0}, 0.7)])
    second = store.start_session("cli", "second.png", name="second")
    store.add_update(second, [face(0, 1, "sad")], [mood(0, 1, 6.0, {"sad": 1.0}, -0.7)])
    store.close()

    assert main(["sessions", "list", "--db", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["id", "name", "kind", "source", "status"]
    assert [line.split()[0] for line in out[1:]] == [str(second), str(first)]

    assert main(["sessions", "show", str(first), "--db", url]) == 0
    assert "first.mp4" in capsys.readouterr().out

    assert main(["sessions", "compare", str(first), str(second), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "share_happy" in out and "-1.0000" in out

    assert (
        main(["sessions", "export", str(first), "--out", str(tmp_path / "x"), "--format", "parquet", "--db", url]) == 0
    )
    assert len(pd.read_parquet(tmp_path / "x" / "faces.parquet")) == 1
    assert (tmp_path / "x" / "session.json").is_file()

    assert main(["sessions", "delete", str(first), "--db", url]) == 0
    assert f"deleted session {first}" in capsys.readouterr().out
    assert main(["sessions", "delete", str(first), "--db", url]) == 2
    assert capsys.readouterr().err.strip() == f"classmood: error: no session {first}"
    assert open_store(url).list_sessions()["id"].tolist() == [second]


def test_cli_analyze_save(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from classmood.expression.predict import sample_face_path

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CLASSMOOD_DB", str(tmp_path / "s.db"))
    image = str(sample_face_path())
    assert main(["analyze", image, "--out", str(tmp_path / "out"), "--min-faces", "1", "--save"]) == 0
    assert "saved as session 1" in capsys.readouterr().out
    store = open_store()
    s = store.session(1)
    assert (s["kind"], s["source"], s["status"]) == ("cli", image, "finished")
    assert s["config"]["min_faces"] == 1 and s["summary"]["faces"] == len(store.faces(1))
    written = pd.read_csv(tmp_path / "out" / "faces.csv")
    pd.testing.assert_frame_equal(store.faces(1), written, check_dtype=False)
    assert len(store.bins(1)) == len(pd.read_csv(tmp_path / "out" / "class_mood.csv"))


def test_a_database_from_before_new_columns_opens_and_gains_them(tmp_path: Path) -> None:
    """A session database written by an earlier classmood (no uncertain_share/valence_change) still opens;
    the new columns are added empty and its old rows read back unchanged."""
    import sqlite3

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    old_bins = ", ".join(f'"{c}" FLOAT' for c in BIN_COLUMNS if c not in ("uncertain_share", "valence_change"))
    con.executescript(
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY, name TEXT, kind VARCHAR(16) NOT NULL, source TEXT NOT NULL,"
        " status VARCHAR(16) NOT NULL, started_at VARCHAR(40) NOT NULL, ended_at VARCHAR(40), config TEXT,"
        " summary TEXT);"
        f"CREATE TABLE bins (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL, {old_bins});"
        "INSERT INTO sessions VALUES (1, 'old', 'cli', 'a.mp4', 'finished', '2026-01-01T00:00:00+00:00', NULL,"
        " '{}', '{}');"
        "INSERT INTO bins (session_id, start_s, end_s, frames, faces, tracks, suppressed, valence)"
        " VALUES (1, 0, 5, 10, 6, 6, 0, 0.25);"
    )
    con.close()
    from classmood.store import open_store

    store = open_store(f"sqlite:///{path}")
    got = store.bins(1)
    assert list(got.columns) == BIN_COLUMNS and got["valence"].tolist() == [0.25]
    assert got["uncertain_share"].isna().all()
    sid = store.start_session("cli", "b.mp4")
    store.add_update(sid, [], [mood(0, 2, 6.0, {"happy": 1.0}, 0.5)])
    assert store.bins(sid)["uncertain_share"].tolist() == [0.1]
    store.close()


def test_cli_analyze_without_save_claims_no_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --save nothing is saved, nothing says it was, and no database file appears."""
    from classmood.expression.predict import sample_face_path

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CLASSMOOD_DB", str(tmp_path / "s.db"))
    assert main(["analyze", str(sample_face_path()), "--out", str(tmp_path / "out"), "--min-faces", "1"]) == 0
    out = capsys.readouterr().out
    assert "frames analysed" in out and "session" not in out
    assert not (tmp_path / "s.db").exists()
