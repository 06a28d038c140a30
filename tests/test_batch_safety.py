"""Nothing written or deleted outside --out, nothing left behind by a killed run, no worker outliving its
batch, and no session said to be whole when it is not (issue 22: data and state). The local process pool
only: tests/test_batch.py covers Ray."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classmood.analysis.analyze import OWNER_FILE, WORK_PREFIX, remove_stale_work
from classmood.analysis.batch import DONE_FILE, RESERVED, RecordingWorker, output_names, run_batch, safe_name
from classmood.cli import main
from classmood.pipeline import PipelineConfig
from classmood.store import SessionRecorder, liveness, open_store
from classmood.store import recorder as store_recorder
from tests.test_pipeline import write_video
from tests.test_session_liveness import _as_pid_1, locked, needs_pid_namespace, quick  # noqa: F401
from tests.test_vision import gallery

CONFIG = PipelineConfig(min_faces=2, bin_s=1.0, threads=1)


@pytest.fixture(scope="module")
def short_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = gallery(rows=1, cols=3, face_px=80)
    return write_video(tmp_path_factory.mktemp("short") / "lesson.mp4", [frame] * 10)  # 1 s at 10 fps


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    frames = [np.roll(frame, i % 5, axis=1) for i in range(600)]  # 60 s at 10 fps: longer than the tests wait
    return write_video(tmp_path_factory.mktemp("long") / "lecture.mp4", frames)


def tree(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size (symlinks as they are, not followed)."""
    return {str(p.relative_to(root)): p.lstat().st_size for p in sorted(root.rglob("*"))}


ODD = ["...mp4", "..mp4", "batch_summary.csv.mp4", "BATCH_SUMMARY.CSV.mp4", ".batch_summary.csv.tmp.mp4", "con.mp4"]
ODD += ["we:ird\\name\n?.mp4", "é" * 200 + ".mp4", " .mp4", ".mp4"]


def test_output_names_stay_inside_out_and_never_collide(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "taken").write_text("a file of the user's")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (out / "linked").symlink_to(outside)
    paths = [tmp_path / "in" / name for name in ODD]
    paths += [tmp_path / "a" / "lesson.mp4", tmp_path / "b" / "lesson.mp4", tmp_path / "c" / "Lesson.mkv"]
    paths += [tmp_path / "taken.mp4", tmp_path / "linked.mp4", tmp_path / "lesson-2.mp4"]
    names = output_names(paths, out)
    values = list(names.values())
    assert len({v.casefold() for v in values}) == len(paths)  # unique, also on a case-insensitive disk
    for name in values:
        assert name not in (".", "..", "") and not name.startswith(".") and "/" not in name and "\\" not in name
        assert name.casefold() not in {r.casefold() for r in RESERVED} and len(name.encode()) <= 130
        assert (out / name).resolve().parent == out.resolve()
        assert all(c.isprintable() for c in name)
    assert names[tmp_path / "taken.mp4"] != "taken" and names[tmp_path / "linked.mp4"] != "linked"
    assert [names[tmp_path / d / n] for d, n in (("a", "lesson.mp4"), ("b", "lesson.mp4"))] == ["lesson", "lesson-2"]
    assert names[tmp_path / "lesson-2.mp4"] not in ("lesson", "lesson-2")
    assert safe_name("..") == safe_name(".") == "recording" and safe_name("Leçon 1") == "Leçon 1"


def test_batch_of_odd_names_writes_only_inside_out(short_video: Path, tmp_path: Path) -> None:
    """``...mp4`` stemmed to ``..``: batch wrote into (and deleted from) the parent of --out."""
    inputs = tmp_path / "inputs"
    for rel in ["...mp4", "batch_summary.csv.mp4", "a/lesson.mp4", "b/lesson.mp4", "we:ird\nname?.mp4"]:
        (inputs / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(short_video, inputs / rel)
    parent = tmp_path / "parent"
    parent.mkdir()
    for name in ("faces.csv", "summary.json", "class_mood.csv"):
        (parent / name).write_text("the user's own file, not to be touched\n")
    before_parent, before_inputs = tree(parent), tree(inputs)
    out = parent / "out"
    rows = run_batch([str(inputs)], out, CONFIG, workers=1, use_ray=False, notice=lambda _: None)
    assert [r["status"] for r in rows] == ["done"] * 5, [r["error"] for r in rows]
    assert {k: v for k, v in tree(parent).items() if not k.startswith("out")} == before_parent
    assert tree(inputs) == before_inputs
    assert (out / "batch_summary.csv").is_file()
    folders = {Path(r["output"]) for r in rows}
    assert len(folders) == 5 and all(f.parent == out and (f / "faces.csv").is_file() for f in folders)
    with open(out / "batch_summary.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 5
    again = run_batch([str(inputs)], out, CONFIG, workers=1, use_ray=False, notice=lambda _: None)
    assert all(r["status"].startswith("skipped") for r in again)  # the same names on the next run: resumed


def test_stale_work_folders_go_and_live_ones_stay(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    folders: dict[str, tuple[str | None, float]] = {
        "dead": (f"{host}:{gone.pid}:x/1", 0),
        "earlier container": (f"{host}:1:another-boot/5", 0),
        "alive": (str(liveness.stamp()), 0),
        "unstamped, old": (None, 2 * 3600),
        "unstamped, fresh": (None, 0),
        "other host, old": ("far-away:77:b/9", 2 * 3600),
        "other host, fresh": ("far-away:77:b/9", 0),
    }
    made = {}
    for what, (owner, age) in folders.items():
        work = out / f"{WORK_PREFIX}{len(made)}"
        work.mkdir()
        (work / "faces.csv").write_text("frame,time_s,track_id\n0,0.0,1\n")
        if owner:
            (work / OWNER_FILE).write_text(owner)
        for p in (*work.iterdir(), work):
            os.utime(p, (time.time() - age, time.time() - age))
        made[what] = work
    victim = tmp_path / "not-ours"
    victim.mkdir()
    (victim / "keep.txt").write_text("x")
    (out / f"{WORK_PREFIX}link").symlink_to(victim)
    removed = remove_stale_work(out)
    expect_gone = {"dead", "earlier container", "unstamped, old", "other host, old"}
    assert {p.name for p in removed} == {made[w].name for w in expect_gone}
    assert all(made[w].exists() != (w in expect_gone) for w in made)
    assert (victim / "keep.txt").exists() and (out / f"{WORK_PREFIX}link").is_symlink()


def test_the_next_run_removes_what_a_killed_run_left(long_video: Path, short_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "classmood.cli", "analyze", str(long_video), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    work: list[Path] = []
    while time.monotonic() < deadline and not any(p.stat().st_size > 200 for p in work):
        work = [w / "faces.csv" for w in out.glob(f"{WORK_PREFIX}*") if (w / "faces.csv").exists()]
        time.sleep(0.2)
    assert work, "the analysis never wrote faces"
    proc.kill()  # kill -9: no clean-up
    proc.wait(30)
    assert list(out.glob(f"{WORK_PREFIX}*"))  # left behind, with per-face rows
    assert main(["analyze", str(short_video), "--out", str(out)]) == 0  # any later run into the same folder
    assert not list(out.glob(f"{WORK_PREFIX}*")) and (out / "faces.csv").is_file()


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` with its start id (to tell it from a later process with its pid)."""
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        here = todo.pop()
        try:
            kids = [int(k) for k in Path(f"/proc/{here}/task/{here}/children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            start = liveness.start_id(kid)
            if start:
                found[kid] = start
                todo.append(kid)
    return found


def wait_for_work(out: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any((w / "faces.csv").exists() for w in out.glob(f"*/{WORK_PREFIX}*")):
            return
        time.sleep(0.2)
    raise AssertionError("no worker started analysing")


def survivors(procs: dict[int, str], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid, start in procs.items() if liveness.start_id(pid) == start]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_pool_workers_do_not_outlive_a_killed_batch(long_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "classmood.cli", "batch", str(long_video), "--out", str(out), "--local"]
    proc = subprocess.Popen([*cmd, "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_work(out)
        workers = descendants(proc.pid)
        assert workers
        proc.kill()  # SIGKILL: the batch gets no chance to stop anything
        proc.wait(30)
        left = survivors(workers)
    finally:
        for pid in descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers still running after the batch was killed: {left}"


@needs_pid_namespace
def test_batch_as_pid_1_stops_on_sigterm(long_video: Path, tmp_path: Path) -> None:
    """A container's ``classmood batch``: SIGTERM (docker stop) was dropped by the kernel for pid 1."""
    out = tmp_path / "out"
    proc, pid = _as_pid_1(["batch", str(long_video), "--out", str(out), "--local", "--workers", "1"])
    try:
        wait_for_work(out)
        workers = descendants(pid)
        os.kill(pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143 and b"Traceback" not in err, err.decode()
    assert (out / "batch_summary.csv").is_file() and not survivors(workers, 5)


@pytest.mark.usefixtures("quick")
def test_a_recording_whose_session_is_incomplete_is_failed_not_done(
    short_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is locked from the session's start until it closes; 4 face rows fit in memory."""
    monkeypatch.setattr(store_recorder, "MAX_PENDING_FACES", 4)
    db = tmp_path / "s.db"
    holder: dict[str, Any] = {}
    enter, close = SessionRecorder.__enter__, SessionRecorder.close

    def enter_then_lock(self: SessionRecorder) -> SessionRecorder:
        entered = enter(self)
        holder["lock"] = locked(db)
        holder["lock"].__enter__()
        return entered

    def unlock_then_close(self: SessionRecorder, *args: Any, **kwargs: Any) -> None:
        if "lock" in holder:
            holder.pop("lock").__exit__(None, None, None)
        close(self, *args, **kwargs)

    monkeypatch.setattr(SessionRecorder, "__enter__", enter_then_lock)
    monkeypatch.setattr(SessionRecorder, "close", unlock_then_close)
    config = PipelineConfig(min_faces=2, bin_s=1.0, threads=1, rate_hz=0)
    worker = RecordingWorker(asdict(config), f"sqlite:///{db}")
    row = worker.run(str(short_video), str(tmp_path / "out"))
    assert row["status"] == "failed" and "incomplete" in row["error"] and "could not be saved" in row["error"]
    assert not (tmp_path / "out" / DONE_FILE).exists()  # run again next time
    with open(tmp_path / "out" / "faces.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 30  # the files are whole: 10 frames x 3 faces
    store = open_store(str(db))
    assert store.session(1)["status"] == "incomplete"
    store.close()
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["faces"] == 30


def test_a_folder_where_an_output_file_goes_is_refused_before_the_run(short_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "summary.json").mkdir(parents=True)
    (out / "faces.csv").write_text("earlier\n")
    assert main(["analyze", str(short_video), "--out", str(out)]) == 2
    assert (out / "faces.csv").read_text() == "earlier\n"  # nothing analysed, nothing replaced
    assert not list(out.glob(f"{WORK_PREFIX}*"))


def test_run_batch_refuses_an_empty_database_url(short_video: Path, tmp_path: Path) -> None:
    from classmood.errors import ClassmoodError

    with pytest.raises(ClassmoodError, match="--db is empty"):
        run_batch([str(short_video)], tmp_path / "out", CONFIG, db_url="", use_ray=False)
    assert not (tmp_path / "out" / "lesson").exists()  # refused before any work
