"""``classmood batch`` on a real local Ray: the same files as ``analyze``, resume, a failing input, a cluster
joined by address, and the local process pool without Ray."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from classmood.analysis.batch import find_recordings, output_names, run_batch
from classmood.cli import main
from classmood.pipeline import PipelineConfig
from tests.test_pipeline import write_video
from tests.test_vision import gallery

ray = pytest.importorskip("ray", reason="needs Ray (pip install 'classmood[cluster]')")
CONFIG = PipelineConfig(min_faces=2, bin_s=1.0, threads=1)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recordings")
    for n, cols in [(1, 2), (2, 3), (3, 4)]:
        frame, _ = gallery(rows=1, cols=cols, face_px=80)
        write_video(folder / f"lesson{n}.mp4", [np.roll(frame, i % 3, axis=1) for i in range(15 * n)])
    (folder / "broken.mp4").write_bytes(b"not a video" * 100)
    return folder


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One Ray instance shared by the tests of this module (2 CPUs, as on CI)."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def rows_by_name(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "batch_summary.csv", newline="") as fh:
        return {Path(r["recording"]).name: r for r in csv.DictReader(fh)}


def test_batch_gives_what_analyze_gives_and_lists_failures(recordings: Path, local_ray: None, tmp_path: Path) -> None:
    out = tmp_path / "batch"
    rows = run_batch([str(recordings)], out, CONFIG, workers=2)
    assert [Path(r["recording"]).name for r in rows] == ["broken.mp4", "lesson1.mp4", "lesson2.mp4", "lesson3.mp4"]
    table = rows_by_name(out)
    assert table["broken.mp4"]["status"] == "failed" and "not a video" in table["broken.mp4"]["error"]
    assert {table[f"lesson{n}.mp4"]["status"] for n in (1, 2, 3)} == {"done"}
    assert table["lesson3.mp4"]["tracks"] == "4" and table["lesson3.mp4"]["share_happy"] != ""
    for n in (1, 2, 3):  # exactly what `classmood analyze` writes for the recording alone
        alone = tmp_path / f"alone{n}"
        args = ["analyze", str(recordings / f"lesson{n}.mp4"), "--out", str(alone), "--min-faces", "2", "--bin", "1"]
        assert main(args) == 0
        for name in ("faces.csv", "class_mood.csv"):
            assert (out / f"lesson{n}" / name).read_bytes() == (alone / name).read_bytes(), name


def test_batch_resumes_and_skips_finished_recordings(recordings: Path, local_ray: None, tmp_path: Path) -> None:
    out = tmp_path / "batch"
    run_batch([str(recordings / "lesson1.mp4"), str(recordings / "lesson2.mp4")], out, CONFIG, workers=2)
    before = {p: p.stat().st_mtime_ns for p in (out / "lesson1").iterdir()}
    rows = run_batch([str(recordings / "*.mp4")], out, CONFIG, workers=2)  # a glob, now with every recording
    status = {Path(r["recording"]).name: r["status"] for r in rows}
    assert status["lesson1.mp4"].startswith("skipped") and status["lesson2.mp4"].startswith("skipped")
    assert status["lesson3.mp4"] == "done" and status["broken.mp4"] == "failed"
    assert {p: p.stat().st_mtime_ns for p in (out / "lesson1").iterdir()} == before  # not analysed again
    assert rows_by_name(out)["lesson1.mp4"]["faces"] != ""  # its earlier row is kept in the summary


def test_batch_without_ray_runs_a_local_pool(recordings: Path, tmp_path: Path) -> None:
    notes: list[str] = []
    out = tmp_path / "pool"
    rows = run_batch([str(recordings / "lesson2.mp4")], out, CONFIG, workers=1, use_ray=False, notice=notes.append)
    assert rows[0]["status"] == "done" and (out / "lesson2" / "faces.csv").is_file()


def test_batch_joins_a_cluster_by_address(recordings: Path, tmp_path: Path) -> None:
    """`ray start --head` as an admin would, then `classmood batch --address` from another process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_bin = Path(sys.executable).parent / "ray"
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", "--block"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out = tmp_path / "cluster"
        deadline = time.monotonic() + 120
        cmd = [sys.executable, "-m", "classmood.cli", "batch", str(recordings / "lesson1.mp4"), "--out", str(out)]
        cmd += ["--address", f"127.0.0.1:{port}", "--workers", "1", "--min-faces", "2"]
        while True:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if proc.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)  # the head node may still be starting
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert rows_by_name(out)["lesson1.mp4"]["status"] == "done"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(60)


def test_recordings_from_files_folders_and_globs(recordings: Path, capsys: pytest.CaptureFixture) -> None:
    found = find_recordings([str(recordings), str(recordings / "lesson1.mp4"), str(recordings / "lesson*.mp4")])
    assert sorted(p.name for p in found) == ["broken.mp4", "lesson1.mp4", "lesson2.mp4", "lesson3.mp4"]  # each once
    assert output_names([Path("/a/x.mp4"), Path("/b/x.mkv")]) == {Path("/a/x.mp4"): "x", Path("/b/x.mkv"): "x-2"}
    assert main(["batch", "/no/such/*.mp4", "--out", "/tmp/never"]) == 2
    assert "matches no file" in capsys.readouterr().err
    assert main(["batch", str(recordings), "--out", "/tmp/never", "--workers", "0"]) == 2


def test_a_long_recording_is_split_across_workers_and_stitched(local_ray: None, tmp_path: Path) -> None:
    """Chunks of 10 s with a 3-s overlap give the ids, boxes and bins of the unsplit run."""
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    video = write_video(tmp_path / "lecture.mp4", [np.roll(frame, (i // 5) % 7, axis=1) for i in range(300)])
    config = PipelineConfig(min_faces=2, bin_s=5.0, threads=1)
    rows = run_batch([str(video)], tmp_path / "out", config, workers=2, chunk_s=10.0, overlap_s=3.0)
    assert rows[0]["status"] == "done" and rows[0]["worker"] == "3 chunks"
    assert main(["analyze", str(video), "--out", str(tmp_path / "alone"), "--min-faces", "2"]) == 0

    def read(path: Path) -> list[dict[str, str]]:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))

    split, alone = read(tmp_path / "out" / "lecture" / "faces.csv"), read(tmp_path / "alone" / "faces.csv")
    assert [(r["frame"], r["track_id"], r["x"], r["y"]) for r in split] == [
        (r["frame"], r["track_id"], r["x"], r["y"]) for r in alone
    ]  # every face, its box and its id, across both boundaries
    bins_split, bins_alone = (
        read(tmp_path / "out" / "lecture" / "class_mood.csv"),
        read(tmp_path / "alone" / "class_mood.csv"),
    )
    assert [(b["start_s"], b["faces"], b["tracks"]) for b in bins_split] == [
        (b["start_s"], b["faces"], b["tracks"]) for b in bins_alone
    ]


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_ray_workers_do_not_outlive_a_killed_batch(tmp_path: Path) -> None:
    """SIGKILL of the batch (the Ray driver): its actors, and the raylet and GCS of the local Ray it started,
    end with it. (Ray's own dashboard and runtime-env agents notice the raylet's end by themselves, about a
    minute later: they do no work and are not checked here.)"""
    from tests.test_batch_safety import descendants, survivors, wait_for_work

    frame, _ = gallery(rows=2, cols=3, face_px=80)
    video = write_video(tmp_path / "lecture.mp4", [np.roll(frame, i % 5, axis=1) for i in range(600)])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "classmood.cli", "batch", str(video), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_work(out, timeout=240)
        started = {
            pid: start
            for pid, start in descendants(proc.pid).items()
            if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith((b"ray::DashboardAgent", b"ray::RuntimeEnv"))
        }
        assert any(Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"ray::RecordingWorker") for p in started)
        proc.kill()
        proc.wait(30)
        left = survivors(started, timeout=15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in left]
