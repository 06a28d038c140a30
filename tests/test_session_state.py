"""Sessions never left in a false state: SIGTERM stops cleanly, a killed process shows as interrupted,
a failed input leaves no session row, and concurrent first use of a new SQLite file does not race."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from classmood.cli import main
from classmood.store import open_store
from tests.test_pipeline import write_video
from tests.test_vision import gallery


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    frames = [np.roll(frame, i % 5, axis=1) for i in range(600)]  # 60 s at 10 fps: longer than the tests wait
    return write_video(tmp_path_factory.mktemp("long") / "lecture.mp4", frames)


def start_analysis(video: Path, out: Path, db: Path) -> subprocess.Popen[bytes]:
    args = ["analyze", str(video), "--out", str(out), "--save", "--db", str(db), "--min-faces", "1", "--bin", "1"]
    return subprocess.Popen(
        [sys.executable, "-m", "classmood.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_for_faces(db: Path, at_least: int = 12, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            store = open_store(str(db))
            try:
                table = store.list_sessions()
                if len(table) and int(table["faces"].iloc[0]) >= at_least:
                    return
            finally:
                store.close()
        time.sleep(0.3)
    raise AssertionError("the analysis never saved faces")


def test_sigterm_stops_like_ctrl_c_and_keeps_files_and_session(long_video: Path, tmp_path: Path) -> None:
    db, out = tmp_path / "s.db", tmp_path / "out"
    proc = start_analysis(long_video, out, db)
    wait_for_faces(db)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    assert b"Traceback" not in err and b"stopped" in err
    store = open_store(str(db))
    session = store.list_sessions().iloc[0]
    assert session["status"] == "stopped"
    with open(out / "class_mood.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    bins = store.bins(int(session["id"]))
    assert len(rows) == len(bins) > 0  # the last, partial bin is in the files and in the database
    assert json.loads((out / "summary.json").read_text())["frames_analysed"] > 0
    with open(out / "faces.csv", newline="") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == int(session["faces"])  # no frame lost
    store.close()


def test_a_killed_analysis_is_shown_as_interrupted(
    long_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    db, out = tmp_path / "s.db", tmp_path / "out"
    proc = start_analysis(long_video, out, db)
    wait_for_faces(db)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait(timeout=30)
    store = open_store(str(db))
    table = store.list_sessions()
    assert table["status"].tolist() == ["interrupted"] and int(table["faces"].iloc[0]) >= 12  # rows kept
    assert store.session(int(table["id"].iloc[0]))["status"] == "interrupted"
    store.close()
    assert main(["sessions", "list", "--db", str(db)]) == 0
    assert "interrupted" in capsys.readouterr().out
    # a session whose process is alive stays "running"
    store = open_store(str(db))
    sid = store.start_session("cli", "here.mp4")
    assert store.session(sid)["status"] == "running"
    store.close()


def test_a_failed_input_creates_no_session(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    for _ in range(2):
        assert main(["analyze", str(bad), "--out", str(tmp_path / "o"), "--save", "--db", str(db)]) == 2
    if db.exists():
        store = open_store(str(db))
        assert len(store.list_sessions()) == 0
        store.close()


def test_concurrent_first_use_of_a_new_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    code = (
        "import sys, time; from classmood.store import open_store\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "s = open_store(sys.argv[1]); s.start_session('cli', 'x'); s.close()"
    )
    at = time.time() + 3.0  # every process opens the file at the same moment
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db), str(at)], stderr=subprocess.PIPE) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    store = open_store(str(db))
    assert len(store.list_sessions()) == 6
    store.close()


def test_sessions_accepts_a_plain_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "sub" / "plain.db"
    store = open_store(str(db))
    store.start_session("cli", "a.mp4")
    store.close()
    assert main(["sessions", "list", "--db", str(db)]) == 0
    assert "a.mp4" in capsys.readouterr().out
    assert not (Path(os.getcwd()) / "plain.db").exists()
