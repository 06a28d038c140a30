"""Sessions never left in a false state (issue 22): a database locked mid-run is retried and, when rows
are still missing, the session says "incomplete" and the command exits non-zero; a killed process's
session is "interrupted" even when it was pid 1 of a container whose successor is pid 1 again."""

from __future__ import annotations

import csv
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update

from classmood.cli import main
from classmood.store import SessionRecorder, liveness, open_store
from classmood.store import engine as store_engine
from classmood.store import recorder as store_recorder
from classmood.store.schema import sessions_table
from tests.test_pipeline import write_video
from tests.test_store import FakeUpdate
from tests.test_vision import gallery


@contextmanager
def locked(db: Path) -> Iterator[threading.Event]:
    """Another writer holding the SQLite file's write lock until the yielded event is set."""
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, timeout=5, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        ready.set()
        release.wait(60)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert ready.wait(10)
    try:
        yield release
    finally:
        release.set()
        thread.join(30)


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lock that outlasts one statement in a fraction of a second, retries a tenth of a second apart."""
    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(store_recorder, "RETRY_FIRST_S", 0.02)
    monkeypatch.setattr(store_recorder, "RETRY_MAX_S", 0.1)
    monkeypatch.setattr(store_recorder, "CLOSE_BUDGET_S", 3.0)


@pytest.mark.usefixtures("quick")
def test_a_lock_that_ends_mid_run_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = open_store(str(db))
    with SessionRecorder(store, "cli", "a.mp4", {}) as rec:
        rec.add(FakeUpdate(0))  # type: ignore[arg-type]
        with locked(db) as release:
            for i in range(1, 360):  # 2 faces per update: 718 rows while the database is locked
                rec.add(FakeUpdate(i))  # type: ignore[arg-type]
            assert rec.pending > 0 and rec.error is None  # held for the next write, not dropped
            release.set()
        time.sleep(0.15)
        rec.add(FakeUpdate(360))  # type: ignore[arg-type]
        rec.finish({"faces": 722})
    assert rec.error is None
    assert len(store.faces(rec.session_id or 0)) == 722 and store.session(rec.session_id or 0)["status"] == "finished"
    store.close()


@pytest.mark.usefixtures("quick")
def test_rows_that_could_not_be_written_make_the_session_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_recorder, "MAX_PENDING_FACES", 100)
    db = tmp_path / "s.db"
    store = open_store(str(db))
    with SessionRecorder(store, "cli", "a.mp4", {}) as rec, locked(db) as release:
        for i in range(360):
            rec.add(FakeUpdate(i))  # type: ignore[arg-type]
        rec.finish({"faces": 720})
        release.set()  # free again by the time the session closes: what was kept goes in
    assert rec.error is not None and "incomplete: 620 of 720 face rows could not be saved" in rec.error
    assert "database is locked" in rec.error and "\n" not in rec.error
    meta = store.session(rec.session_id or 0)
    assert meta["status"] == "incomplete" and meta["summary"]["faces"] == 720
    assert meta["summary"]["incomplete"]["face_rows_lost"] == 620
    assert len(store.faces(rec.session_id or 0)) == 100
    store.close()


@pytest.mark.usefixtures("quick")
def test_analyze_says_so_and_exits_non_zero_when_the_session_is_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``analyze --save`` against a database locked from the session's start until it closes."""
    monkeypatch.setattr(store_recorder, "MAX_PENDING_FACES", 4)
    frame, _ = gallery(rows=1, cols=3, face_px=80)
    video = write_video(tmp_path / "v.mp4", [frame] * 20)
    db, out = tmp_path / "s.db", tmp_path / "out"
    holder: dict[str, Any] = {}
    enter, close = SessionRecorder.__enter__, SessionRecorder.close

    def enter_then_lock(self: SessionRecorder) -> SessionRecorder:
        entered = enter(self)
        holder["lock"] = locked(db)
        holder["release"] = holder["lock"].__enter__()
        return entered

    def unlock_then_close(self: SessionRecorder, *args: Any, **kwargs: Any) -> None:
        if "lock" in holder:
            holder.pop("lock").__exit__(None, None, None)
        close(self, *args, **kwargs)

    monkeypatch.setattr(SessionRecorder, "__enter__", enter_then_lock)
    monkeypatch.setattr(SessionRecorder, "close", unlock_then_close)
    code = main(["analyze", str(video), "--out", str(out), "--save", "--db", str(db), "--rate", "0"])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("classmood: error")]
    assert len(lines) == 1 and "session 1 is incomplete" in lines[0] and "could not be saved" in lines[0]
    with open(out / "faces.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 60  # the files in --out are whole: 20 frames x 3 faces
    store = open_store(str(db))
    assert store.session(1)["status"] == "incomplete" and len(store.faces(1)) == 4
    store.close()


def test_a_stamp_names_one_run_of_one_process() -> None:
    me = liveness.stamp()
    assert liveness.parse(str(me)) == me and me.alive() is True
    host = socket.gethostname()
    assert liveness.Stamp(host, os.getpid(), "another-boot/1").alive() is False  # a pid reused since
    assert liveness.Stamp(host, 1, "another-boot/1").alive() is False  # an earlier container's command
    assert liveness.parse(f"{host}:1").alive() is None  # an old stamp of pid 1: judged by its heartbeat
    assert liveness.parse(f"{host}:{os.getpid()}").alive() is True  # an old stamp of a live pid
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert liveness.Stamp(host, dead.pid, None).alive() is False
    assert liveness.parse("elsewhere:12:abc/3").alive() is None and liveness.parse("garbage") is None


def test_a_session_of_a_dead_pid_1_is_interrupted(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    host = socket.gethostname()
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    owners = {
        "earlier container": (f"{host}:1:another-boot/12345", None),
        "old stamp, silent for an hour": (f"{host}:1", old),
        "old stamp, just wrote": (f"{host}:1", datetime.now(UTC).isoformat(timespec="seconds")),
    }
    ids = {}
    for what, (owner, beat) in owners.items():
        ids[what] = store.start_session("cli", what)
        values = {"owner": owner} | ({"heartbeat_at": beat} if beat else {})
        with store.engine.begin() as conn:
            conn.execute(update(sessions_table).where(sessions_table.c.id == ids[what]).values(**values))
    status = store.list_sessions().set_index("id")["status"]
    assert status[ids["earlier container"]] == "interrupted"
    assert status[ids["old stamp, silent for an hour"]] == "interrupted"
    assert status[ids["old stamp, just wrote"]] == "running"
    store.close()


def _pid_namespaces() -> bool:
    try:
        done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


needs_pid_namespace = pytest.mark.skipif(
    sys.platform != "linux" or not _pid_namespaces(), reason="needs unshare --pid (root or user namespaces)"
)


def _as_pid_1(args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    """``classmood ARGS`` as pid 1 of a new pid namespace (a container's command); returns it and its pid here."""
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "classmood.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        found = children.read_text().split() if children.exists() else []
        if found:
            return proc, int(found[0])
        time.sleep(0.05)
    raise AssertionError("the command never started")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    frames = [np.roll(frame, i % 5, axis=1) for i in range(600)]  # 60 s at 10 fps: longer than the tests wait
    return write_video(tmp_path_factory.mktemp("long") / "lecture.mp4", frames)


@needs_pid_namespace
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_analyze_as_pid_1_stops_on_a_signal(sig: signal.Signals, long_video: Path, tmp_path: Path) -> None:
    from tests.test_session_state import wait_for_faces

    db = tmp_path / "s.db"
    args = ["analyze", str(long_video), "--out", str(tmp_path / "out"), "--save", "--db", str(db), "--bin", "1"]
    proc, pid = _as_pid_1(args)
    try:
        wait_for_faces(db)
        os.kill(pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert b"Traceback" not in err and proc.returncode in (130, 143), err.decode()
    store = open_store(str(db))
    assert store.list_sessions()["status"].tolist() == ["stopped"]
    store.close()


@needs_pid_namespace
def test_a_killed_pid_1_is_interrupted_not_running_forever(long_video: Path, tmp_path: Path) -> None:
    """After kill -9 the next container's pid 1 exists again: the session must not look alive."""
    from tests.test_session_state import wait_for_faces

    db = tmp_path / "s.db"
    args = ["analyze", str(long_video), "--out", str(tmp_path / "out"), "--save", "--db", str(db), "--bin", "1"]
    proc, pid = _as_pid_1(args)
    try:
        wait_for_faces(db)
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    store = open_store(str(db))  # here pid 1 is alive: this machine's init, as in the next container
    assert store.list_sessions()["status"].tolist() == ["interrupted"]
    store.close()


@pytest.mark.usefixtures("quick")
def test_a_database_locked_past_closing_is_said_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_recorder, "CLOSE_BUDGET_S", 0.3)
    db = tmp_path / "s.db"
    store = open_store(str(db))
    rec = SessionRecorder(store, "cli", "a.mp4", {}).open()
    with locked(db):  # from after the start until after the close
        rec.add(FakeUpdate(0))  # type: ignore[arg-type]
        rec.close("finished", {"faces": 2})
    assert rec.error is not None and "\n" not in rec.error
    assert "could not be closed either (it shows as interrupted once this process ends)" in rec.error
    assert "2 of 2 face rows could not be saved" in rec.error
    assert store.session(rec.session_id or 0)["status"] == "running"  # this process lives: not a false "finished"
    store.close()


def test_a_session_deleted_while_saved_says_so(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    with SessionRecorder(store, "cli", "a.mp4", {}) as rec:
        store.delete(rec.session_id or 0)
        rec.add(FakeUpdate(0))  # type: ignore[arg-type]
    assert rec.error is not None and "no session" in rec.error and "interrupted" not in rec.error
    store.close()


def test_a_second_sigterm_stops_an_analysis_whose_input_blocks() -> None:
    """The first SIGTERM asks ``analyze`` to stop between two frames; a camera that sends no frame never
    reaches the next one, so a second SIGTERM stops it at once."""
    from classmood.cli import _stop_on_sigterm
    from classmood.errors import Stopped

    stop = threading.Event()
    previous = _stop_on_sigterm("analyze", stop)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.is_set()
        with pytest.raises(Stopped):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs here, between two bytecodes
    finally:
        signal.signal(signal.SIGTERM, previous)
