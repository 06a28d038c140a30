"""A saved student-side class is read at its k floor by every route, and a list never breaks on a class
that is open or that a crash left without a summary (issue 22: data and state)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, update

from classmood.cli import main
from classmood.containers import MoodBin
from classmood.store import SessionRecorder, SessionStore, open_store
from classmood.store.schema import bins_table, sessions_table
from tests.test_app_logic import _app, _text, app_env  # noqa: F401  (app_env: the pages' fixture)
from tests.test_store import face, mood

FLOOR = 5


def happy_bin(start: float, faces: float) -> MoodBin:
    """A bin as the room's aggregator closes it: raw numbers whatever its face count."""
    return MoodBin.from_row(mood(start, 5, faces, {"happy": 0.8, "neutral": 0.2}, 0.6))


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "s.db")


def student_class(store: SessionStore, finished: bool = True) -> int:
    """A class saved as the hub saves one: a recorder of kind "students" opened at k = FLOOR, raw bins as
    they close; one bin with 6 faces (shown at the floor), one with 2 (shown only below it)."""
    recorder = SessionRecorder(store, "students", "student-side class ABC", {"min_faces": FLOOR}).open()
    recorder.save([], [happy_bin(0, 6.0), happy_bin(5, 2.0)])
    if finished:
        recorder.close("finished", {"faces": 40, "tracks": 6})
    assert recorder.session_id is not None
    return recorder.session_id


def recording(store: SessionStore) -> int:
    """An analysed recording at k = FLOOR: no floor, so an analyst may read it at any k."""
    sid = store.start_session("cli", "lesson.mp4", {"min_faces": FLOOR})
    store.add_update(
        sid, [face(0, 1), face(0, 2)], [mood(0, 5, 6.0, {"happy": 1.0}, 0.5), mood(5, 5, 2.0, {"sad": 1.0}, -0.5)]
    )
    store.finish_session(sid, {"faces": 2, "tracks": 2})
    return sid


def test_every_store_read_of_a_student_class_holds_its_floor(db: str, tmp_path: Path) -> None:
    store = open_store(db)
    sid, other = student_class(store), recording(store)
    assert store.session(sid)["k_floor"] == FLOOR and store.session(other)["k_floor"] is None
    k, note = store.read_k(sid, 1)
    assert k == FLOOR and note is not None and "raised from 1 to 5" in note
    assert store.read_k(sid, 7) == (7, None)  # above the floor: as asked
    assert store.read_k(other, 1) == (1, None)  # a recording has no floor

    for asked in (None, 1, 2, 4, FLOOR):
        bins = store.bins(sid, asked)
        assert bins["share_happy"].notna().tolist() == [True, False], asked
        assert store.class_summary(sid, asked)["min_faces"] == FLOOR
        assert store.summary(sid, asked)["class"]["bins_hidden"] == 1
    assert "k_note" in store.summary(sid, 1) and "k_note" not in store.summary(sid)
    assert store.bins(sid, 7)["share_happy"].isna().all()
    assert [b.shares is None for b in store.raw_mood_bins(sid)] == [False, True]  # no raw route either
    assert store.bins(other, 1)["share_sad"].tolist() == [0.0, 1.0]  # the recording: its analyst's k

    for fmt in ("csv", "parquet"):
        paths = store.export(sid, tmp_path / fmt, fmt, min_faces=1)
        table = pd.read_csv(paths[1]) if fmt == "csv" else pd.read_parquet(paths[1])
        assert table["share_happy"].notna().tolist() == [True, False] and table["valence"].notna().tolist() == [
            True,
            False,
        ]
        meta = json.loads(paths[2].read_text())
        assert meta["k_floor"] == FLOOR and meta["summary"]["class"]["min_faces"] == FLOOR
        assert "raised" in meta["summary"]["k_note"]

    diff = store.compare(sid, other, min_faces=1)
    assert list(diff.attrs["k_notes"]) == [sid]
    at_floor = store.compare(sid, other, min_faces=FLOOR)
    assert diff.loc["share_happy", "a"] == pytest.approx(at_floor.loc["share_happy", "a"])
    assert diff.loc["share_sad", "b"] > at_floor.loc["share_sad", "b"]  # the recording did read at k = 1

    with store.engine.connect() as conn:  # the database itself never held the 2-face bin's numbers
        stored = conn.execute(select(bins_table.c.share_happy).where(bins_table.c.session_id == sid)).scalars().all()
    assert stored[0] is not None and stored[1] is None
    store.close()


def test_a_class_saved_before_floors_were_stored_is_floored_too(db: str) -> None:
    """A student-side session from an earlier version: no k_floor column value, raw bins in the table."""
    store = open_store(db)
    sid = store.start_session("students", "student-side class OLD", {"min_faces": FLOOR})
    with store.engine.begin() as conn:
        conn.execute(update(sessions_table).where(sessions_table.c.id == sid).values(k_floor=None))
        rows = [
            {**mood(0, 5, 6.0, {"happy": 1.0}, 0.5), "session_id": sid},
            {**mood(5, 5, 2.0, {"sad": 1.0}, -0.5), "session_id": sid},
        ]
        conn.execute(bins_table.insert(), rows)
    assert store.session(sid)["k_floor"] == FLOOR
    assert store.bins(sid, 1)["share_sad"].isna().tolist() == [False, True]
    assert store.summary(sid, 1)["class"]["shares"]["sad"] == 0.0
    store.close()


def test_sessions_cli_never_reads_a_class_below_its_floor(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(db)
    sid, other = student_class(store), recording(store)
    store.close()
    assert main(["sessions", "show", str(sid), "--db", db, "--min-faces", "1"]) == 0
    out, err = capsys.readouterr()
    assert f"session {sid}: k raised from 1 to 5" in err and len(err.strip().splitlines()) == 1
    summary = json.loads(next(line for line in out.splitlines() if line.startswith("summary"))[12:])
    assert summary["class"]["min_faces"] == FLOOR and summary["class"]["bins_hidden"] == 1
    assert main(["sessions", "export", str(sid), "--db", db, "--min-faces", "1", "--out", str(tmp_path / "x")]) == 0
    assert "k raised" in capsys.readouterr().err
    with open(tmp_path / "x" / "class_mood.csv", newline="") as fh:
        assert [r["share_happy"] != "" for r in csv.DictReader(fh)] == [True, False]
    assert main(["sessions", "compare", str(sid), str(other), "--db", db, "--min-faces", "1"]) == 0
    assert f"session {sid}: k raised" in capsys.readouterr().err
    assert main(["sessions", "show", str(other), "--db", db, "--min-faces", "1"]) == 0
    assert capsys.readouterr().err == ""  # a recording is read at the k asked for, without a note


def test_list_with_an_open_class_and_one_a_crash_left_without_summary(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(db)
    done = student_class(store)
    open_now = student_class(store, finished=False)  # being saved right now: no summary yet
    crashed = student_class(store, finished=False)
    with store.engine.begin() as conn:  # its hub died: a dead owner, no summary, bins kept
        conn.execute(update(sessions_table).where(sessions_table.c.id == crashed).values(owner="gone-host:4242"))
    damaged = store.start_session("cli", "x.mp4")
    with store.engine.begin() as conn:
        conn.execute(update(sessions_table).where(sessions_table.c.id == damaged).values(summary="{not json"))
    table = store.list_sessions().set_index("id")
    assert table.loc[done, ["faces", "tracks"]].tolist() == [40, 6]  # from its summary
    # from its bins: 5 s x 6 faces + 5 s x 2 faces, and the most students in one bin
    assert table.loc[open_now, ["faces", "tracks", "bins"]].tolist() == [40, 3, 2]
    assert table.loc[crashed, "faces"] == 40 and table.loc[open_now, "status"] == "running"
    assert store.session(damaged)["summary"] == {} and table.loc[damaged, "faces"] == 0
    assert table["faces"].dtype == np.int64 and table["duration_s"].dtype == np.float64
    store.close()
    assert main(["sessions", "list", "--db", db]) == 0
    assert "student-side class ABC" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["sessions", "list", "--db", ""],
        ["sessions", "show", "1", "--db", "  "],
        ["analyze", "IN", "--out", "OUT", "--save", "--db", ""],
        ["analyze", "IN", "--out", "OUT", "--db", ""],
        ["batch", "IN", "--out", "OUT", "--save", "--db", ""],
        ["app", "--db", ""],
    ],
)
def test_an_empty_db_is_refused_not_the_default(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from classmood.app import server

    def started(*_: Any) -> int:
        raise AssertionError("the app was started with the default database")

    monkeypatch.setattr(server, "run_app", started)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    default = tmp_path / "default.db"
    monkeypatch.setenv("CLASSMOOD_DB", str(default))
    image = tmp_path / "in.png"
    import cv2

    cv2.imwrite(str(image), np.full((64, 64, 3), 90, np.uint8))
    given = [str(image) if a == "IN" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    assert main(given) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--db is empty" in err, err
    assert not default.exists() and not (tmp_path / "out").exists()  # nothing opened, nothing written


@pytest.mark.usefixtures("app_env")
def test_sessions_page_holds_the_floor_and_survives_open_and_crashed_classes() -> None:
    store = open_store()  # CLASSMOOD_DB from the fixture
    sid = student_class(store)
    student_class(store, finished=False)
    at = _app()
    at.session_state["min_faces"] = 1  # the sidebar's k, below the class's floor
    at.switch_page("views/sessions.py").run()
    assert not at.exception
    at.selectbox(key="open_id").set_value(sid).run()
    assert not at.exception
    # it opens at its own k (the floor), not the sidebar's 1, and says so with the moments it hides
    shown = at.number_input(key=f"view_k_open_{sid}_{FLOOR}")
    assert shown.label == f"k for this view (it ran with k = {FLOOR})" and shown.value == FLOOR
    assert "1 of 2 moments had fewer than 5 faces read" in _text(at)
    shown.set_value(1).run()  # below the floor: refused, still shown at the floor
    assert not at.exception
    assert at.number_input(key=f"view_k_open_{sid}_{FLOOR}").value == FLOOR
    assert "1 of 2 moments had fewer than 5 faces read" in _text(at)
    at.selectbox(key="export_id").set_value(sid).run()
    next(b for b in at.button if b.label == "Prepare files").click().run()
    files: dict[str, Any] = at.session_state["export"][3]
    rows = list(csv.DictReader(files["class_mood.csv"].decode().splitlines()))
    assert [r["share_happy"] != "" for r in rows] == [True, False]
    store.close()


@pytest.mark.usefixtures("app_env")
def test_sessions_page_shows_a_plain_message_instead_of_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store()
    student_class(store)
    store.close()

    def broken(self: SessionStore) -> pd.DataFrame:
        raise TypeError("the JSON object must be str, not float (/srv/classmood/store/store.py:288)")

    monkeypatch.setattr(SessionStore, "list_sessions", broken)
    at = _app("views/sessions.py")
    errors = [str(e.value) for e in at.error]
    assert errors == ["The sessions could not be shown (TypeError); the details are in the server's log."]
    assert not at.exception


def test_the_app_server_hides_error_details() -> None:
    from classmood.app import server

    cmd = server.build_command("127.0.0.1", 8765, 7)
    assert dict(zip(cmd[5::2], cmd[6::2], strict=True))["--client.showErrorDetails"] == "none"
