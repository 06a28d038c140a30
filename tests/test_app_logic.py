"""The web app without a browser: live worker, password rules, upload checks, and pages via AppTest."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from classmood import words
from classmood.app import auth, server
from classmood.app.screenshare import decode_frame
from classmood.app.uploads import analyze_upload, check_upload, looks_like_video, max_upload_mb, save_upload
from classmood.cli import main
from classmood.containers import Frame
from classmood.errors import ClassmoodError
from classmood.expression.predict import sample_face_path
from classmood.imageio import read_image
from classmood.labels import EMOTIONS, FACE_COLUMNS
from classmood.live import LatestFrame, LiveSession
from classmood.pipeline import Analyzer, PipelineConfig
from classmood.store import open_store
from classmood.vision.detectors import create_detector
from tests.test_pipeline import write_video
from tests.test_vision import gallery

APP = Path(__file__).resolve().parents[1] / "classmood" / "app" / "main.py"


def camera_frame() -> np.ndarray:
    """A 640x480 webcam-like frame with the sample face large in the middle."""
    frame = np.full((480, 640, 3), 60, np.uint8)
    frame[120:360, 200:440] = cv2.resize(read_image(sample_face_path()), (240, 240))
    return frame


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = open_store(f"sqlite:///{tmp_path / 'sessions.db'}")
    yield s
    s.close()


def wait_until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- the live worker ----------------------------------------------------------------------------


def test_latest_frame_keeps_only_the_newest() -> None:
    box = LatestFrame()
    assert box.take(timeout=0.01) is None
    for i in range(3):
        box.put(Frame(i, i / 10, np.zeros((2, 2, 3), np.uint8)))
    taken = box.take(timeout=0.01)
    assert taken is not None and taken.index == 2 and box.dropped == 2 and box.put_count == 3
    assert box.take(timeout=0.01) is None


def test_worker_analyses_frames_and_saves_every_update(store: Any) -> None:
    live = LiveSession("camera", "test webcam", PipelineConfig(rate_hz=0, min_faces=1), store).start()
    frame = camera_frame()
    for n in range(1, 5):
        assert live.submit(frame)
        wait_until(lambda n=n: live.snapshot().analysed >= n)
    snap = live.snapshot()
    assert snap.running and snap.status == "running" and snap.faces_now == 1
    assert [t[:2] for t in snap.tracks] == [(1, snap.tracks[0][1])] and snap.tracks[0][1] in EMOTIONS
    assert snap.tracks[0][2] in ("toward", "away", "unclear")
    assert snap.delay_s is not None and 0 < snap.delay_s < 10  # the newest numbers: seconds after their frame
    assert snap.shares is not None and sum(snap.shares.values()) == pytest.approx(1)
    assert len(snap.series) == 4 and all(p["faces"] == 1 and p["valence"] is not None for p in snap.series)
    box = live.latest_detections()
    assert len(box) == 1 and 200 <= box.xyxy[0, 0] <= 280  # in the submitted frame's pixels
    final = live.stop()
    assert not final.running and final.status == "stopped"
    assert not live.submit(frame)  # a stopped session takes no more frames

    listed = store.list_sessions().set_index("id").loc[live.session_id]
    assert (listed["kind"], listed["status"], listed["faces"], listed["tracks"]) == ("camera", "stopped", 4, 1)
    faces = store.faces(live.session_id)
    assert list(faces.columns) == FACE_COLUMNS and faces["frame"].tolist() == [0, 1, 2, 3]
    assert len(store.bins(live.session_id)) == 1  # the open bin is closed at stop
    summary = store.session(live.session_id)["summary"]
    assert summary["frames_analysed"] == 4 and summary["faces"] == 4 and "apparent" in summary["note"]


class SlowDetector:
    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.inner, self.seconds = create_detector("libface"), seconds

    def detect(self, frame: np.ndarray) -> Any:
        time.sleep(self.seconds)
        return self.inner.detect(frame)


def test_worker_drops_frames_instead_of_lagging() -> None:
    config = PipelineConfig(rate_hz=0, min_faces=1)
    live = LiveSession("camera", "busy", config, analyzer_factory=lambda c: Analyzer(c, SlowDetector(0.3))).start()
    wait_until(lambda: live.snapshot().status == "running")
    frame = camera_frame()
    started = time.perf_counter()
    for _ in range(10):
        live.submit(frame)
        time.sleep(0.03)
    submitting = time.perf_counter() - started
    assert submitting < 0.3 + 0.5  # submit never waits for the analysis (0.3 s per frame)
    wait_until(lambda: live.snapshot().analysed >= 2)
    time.sleep(0.4)
    snap = live.stop()
    assert snap.received == 10
    assert snap.analysed <= 3 and snap.dropped >= 6
    assert snap.analysed + snap.dropped == 10  # each frame was either analysed or replaced by a newer one
    assert snap.series[-1]["time_s"] == pytest.approx(snap.elapsed_s, abs=10)  # sanity: times are session-relative


def test_class_numbers_hidden_below_k_faces() -> None:
    live = LiveSession("camera", "k", PipelineConfig(rate_hz=0, min_faces=5)).start()
    live.submit(camera_frame())
    wait_until(lambda: live.snapshot().analysed == 1)
    snap = live.snapshot()
    assert snap.faces_now == 1 and snap.suppressed
    assert snap.shares is None and snap.series[0]["valence"] is None
    assert live.snapshot(min_faces=1).shares is not None  # a lower k re-applies at once ...
    assert live.snapshot(min_faces=1).series[0]["valence"] is not None
    snap = live.stop()
    assert snap.faces_now == 0  # stopped: nothing is "now"
    assert snap.bins[0].suppressed and snap.bins[0].shares is None
    assert live.stop().bins[0].suppressed and not live.snapshot(min_faces=1).bins[0].suppressed  # ... after the end too
    assert "shares" not in live.summary() and live.summary()["class"]["shares"] is None

    frame, _ = gallery(rows=2, cols=3, face_px=80)
    live = LiveSession("gallery", "k", PipelineConfig(rate_hz=0, min_faces=5)).start()
    live.submit(frame)
    wait_until(lambda: live.snapshot().analysed == 1)
    snap = live.snapshot()
    live.stop()
    assert snap.faces_now == 6 and not snap.suppressed and snap.shares is not None
    assert [t for t, *_ in snap.tracks] == [1, 2, 3, 4, 5, 6]


def test_idle_session_stops_itself_and_is_saved_as_stopped(store: Any) -> None:
    live = LiveSession("gallery", "idle", PipelineConfig(rate_hz=0), store, idle_timeout_s=0.5).start()
    live.submit(camera_frame())
    assert live.wait(10)
    assert live.snapshot().status == "stopped"
    assert live.session_id is not None and store.session(live.session_id)["status"] == "stopped"


def test_a_live_session_without_a_face_leaves_no_empty_session(store: Any) -> None:
    """A camera started and stopped with nobody in view (or frames without a face) saves nothing."""
    live = LiveSession("camera", "nobody", PipelineConfig(rate_hz=0), store).start()
    live.submit(np.zeros((480, 640, 3), np.uint8))
    wait_until(lambda: live.snapshot().analysed == 1)
    live.stop()
    assert live.session_id is None and len(store.list_sessions()) == 0


def test_failing_analysis_is_reported_and_saved_as_failed(store: Any) -> None:
    class BreaksAfterOneFrame:
        name = "breaks"

        def __init__(self) -> None:
            self.inner, self.calls = create_detector("libface"), 0

        def detect(self, frame: np.ndarray) -> Any:
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("detector exploded")
            return self.inner.detect(frame)

    live = LiveSession(
        "camera",
        "broken",
        PipelineConfig(rate_hz=0),
        store,
        analyzer_factory=lambda c: Analyzer(c, BreaksAfterOneFrame()),
    ).start()
    live.submit(camera_frame())
    wait_until(lambda: live.snapshot().analysed == 1)
    live.submit(camera_frame())
    assert live.wait(10)
    snap = live.snapshot()
    assert snap.status == "failed" and snap.error == "analysis failed: detector exploded"
    assert live.session_id is not None and store.session(live.session_id)["status"] == "failed"


def test_feed_pulls_frames_from_a_server_side_source() -> None:
    frames = [Frame(i, i / 10, camera_frame()) for i in range(6)]
    live = LiveSession("gallery", "frames", PipelineConfig(rate_hz=0, min_faces=1)).start()
    live.feed(frames, max_hz=20)
    assert live.wait(10)  # the source ended: the session stops by itself
    snap = live.snapshot()
    assert snap.received == 6 and snap.analysed >= 1 and snap.error is None


def test_screen_share_frames_decode() -> None:
    import base64

    _, jpeg = cv2.imencode(".jpg", camera_frame())
    image = decode_frame("data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode())
    assert image is not None and image.shape == (480, 640, 3)
    assert decode_frame(None) is None and decode_frame("data:text/plain;base64,aGk=") is None
    assert decode_frame("data:image/jpeg;base64,not base64!") is None
    assert decode_frame("data:image/jpeg;base64," + base64.b64encode(b"not a jpeg").decode()) is None


# --- who may open the app -----------------------------------------------------------------------


def test_password_hash_and_verify() -> None:
    stored = auth.hash_password("correct horse")
    assert stored.startswith("scrypt$") and stored.count("$") == 2 and "correct horse" not in stored
    assert auth.verify_password("correct horse", stored)
    assert not auth.verify_password("correct hors", stored)
    assert not auth.verify_password("", stored)
    assert auth.hash_password("correct horse") != stored  # a fresh salt each time
    assert not auth.verify_password("correct horse", "scrypt$zz$00")
    assert not auth.verify_password("correct horse", "plain")
    with pytest.raises(ClassmoodError):
        auth.hash_password("")


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_loopback_addresses(host: str, local: bool) -> None:
    assert auth.is_loopback(host) is local


def test_non_local_host_needs_a_password() -> None:
    assert auth.check_bind("127.0.0.1", {}) is None
    with pytest.raises(ClassmoodError, match=r"refusing to listen on 0\.0\.0\.0 without a password"):
        auth.check_bind("0.0.0.0", {})
    stored = auth.check_bind("0.0.0.0", {auth.PLAIN_ENV: "s3cret"})
    assert stored is not None and auth.verify_password("s3cret", stored)
    made = auth.hash_password("other")
    assert auth.check_bind("10.0.0.1", {auth.HASH_ENV: made}) == made
    with pytest.raises(ClassmoodError, match="not a 'scrypt"):
        auth.check_bind("127.0.0.1", {auth.HASH_ENV: "sha1$abc"})


def test_cli_refuses_a_public_address_without_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(auth.HASH_ENV, raising=False)
    monkeypatch.delenv(auth.PLAIN_ENV, raising=False)
    monkeypatch.setattr(server.os, "execve", lambda *a: pytest.fail("the server must not start"))
    assert main(["app", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("classmood: error: refusing to listen on 0.0.0.0") and "\n" not in err


def test_cli_hash_password_reads_stdin() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "classmood.cli", "app", "--hash-password"],
        input="pa55word\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert auth.verify_password("pa55word", proc.stdout.strip())


def test_server_gets_only_the_hash_and_the_database(tmp_path: Path) -> None:
    env = {auth.PLAIN_ENV: "s3cret", "DATABASE_URL": "postgresql://elsewhere/db", "PATH": "/bin"}
    stored = auth.hash_password("s3cret")
    out = server.server_env(env, stored, str(tmp_path / "s.db"), 7)
    assert auth.PLAIN_ENV not in out and out[auth.HASH_ENV] == stored and "DATABASE_URL" not in out
    assert out["CLASSMOOD_DB"] == str(tmp_path / "s.db") and out["CLASSMOOD_MAX_UPLOAD_MB"] == "7"
    assert server.server_env({}, None, "sqlite:///x.db", 1)["DATABASE_URL"] == "sqlite:///x.db"
    cmd = server.build_command("127.0.0.1", 8765, 7)
    assert cmd[1:5] == ["-m", "streamlit", "run", str(server.MAIN)]
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.maxUploadSize"] == "7"
    assert flags["--logger.hideWelcomeMessage"] == "true"  # its external-IP lookup would reach the internet


# --- uploads ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def class_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    return write_video(tmp_path_factory.mktemp("upload") / "class.mp4", [frame] * 20)  # 2 s at 10 fps


@pytest.mark.parametrize(
    ("name", "size", "head", "message"),
    [
        ("class.mp4", 0, b"", "class.mp4: empty file (0 bytes)"),
        ("class.mp4", 600 * 2**20, b"\x00\x00\x00\x18ftypmp42", "class.mp4: 600 MB is over the 500 MB upload limit"),
        ("notes.txt", 100, b"hello", "notes.txt: not a video file (use "),
        ("class.mp4", 100, b"This is plain text, renamed", "class.mp4: not a video (the content does not start"),
    ],
)
def test_bad_uploads_get_one_line(name: str, size: int, head: bytes, message: str) -> None:
    problem = check_upload(name, size, head, 500)
    assert problem is not None and problem.startswith(message) and "\n" not in problem


def test_real_video_passes_the_check(class_video: Path) -> None:
    data = class_video.read_bytes()
    assert looks_like_video(data[:64])
    assert check_upload("class.MP4", len(data), data[:64], 1) is None


def test_upload_limit_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert max_upload_mb({}) == 500
    assert max_upload_mb({"CLASSMOOD_MAX_UPLOAD_MB": "20"}) == 20
    assert max_upload_mb({"CLASSMOOD_MAX_UPLOAD_MB": "lots"}) == 500


def test_analyse_upload_outputs_progress_and_session(class_video: Path, store: Any) -> None:
    path = save_upload(io.BytesIO(class_video.read_bytes()), "Class.MP4")
    assert path.suffix == ".mp4"
    progress: list[float] = []
    try:
        done = analyze_upload(
            path, "Class.MP4", PipelineConfig(bin_s=1.0), store, on_progress=lambda f, _: progress.append(f)
        )
    finally:
        path.unlink()
    assert {"faces.csv", "class_mood.csv", "summary.json", "report.html"} <= set(done.files)
    lines = done.files["faces.csv"].decode().splitlines()
    assert lines[0].split(",") == FACE_COLUMNS and len(lines) == 1 + 6 * 4
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    listed = store.list_sessions().set_index("id").loc[done.session_id]
    assert (listed["kind"], listed["status"], listed["faces"], listed["bins"]) == ("upload", "finished", 24, 2)
    assert store.faces(done.session_id)["track_id"].nunique() == 6
    summary = json.loads(done.files["summary.json"])
    assert summary["input"] == "Class.MP4"  # the uploaded file's name, not the server's temporary copy
    assert "classmood-upload-" not in done.files["report.html"].decode()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "class.mp4"), (b"RIFF\x00\x00\x00\x00AVI junk", "class.mp4")],
)
def test_broken_upload_is_one_line_error(content: bytes, message: str, tmp_path: Path, store: Any) -> None:
    path = tmp_path / "class.mp4"
    path.write_bytes(content)
    with pytest.raises(ClassmoodError) as err:
        analyze_upload(path, "class.mp4", PipelineConfig(), store)
    assert "\n" not in str(err.value) and message in str(err.value)
    assert len(store.list_sessions()) == 0  # nothing saved for an upload that never started


def test_truncated_upload_keeps_what_was_read(class_video: Path, tmp_path: Path) -> None:
    data = class_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    try:
        done = analyze_upload(cut, "cut.mp4", PipelineConfig())
    except ClassmoodError as exc:  # an mp4 cut before its index cannot be opened at all
        assert "\n" not in str(exc) and "cut.mp4" in str(exc)
    else:
        assert done.files["faces.csv"].decode().splitlines()[0].split(",") == FACE_COLUMNS


# --- pages (Streamlit AppTest) --------------------------------------------------------------------


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    pytest.importorskip("streamlit", reason="the pages need the app extra (pip install 'classmood[app]')")
    from streamlit import config

    for name in ("DATABASE_URL", auth.HASH_ENV, auth.PLAIN_ENV, "CLASSMOOD_MAX_UPLOAD_MB"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "app.db"
    monkeypatch.setenv("CLASSMOOD_DB", str(db))
    previous = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield db
    config.set_option("server.address", previous)


def _app(page: str | None = None) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=30).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _text(at: Any) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "error", "warning", "info", "success", "title")
        for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_every_page_has_the_legal_notice_and_about_explains_the_model(app_env: Path) -> None:
    at = _app()  # the start page, at the root address
    assert "prohibited in the EU" in "\n".join(str(w.value) for w in at.sidebar.warning)
    assert "Start with one of these" in _text(at) and "faces people call neutral average 0" in _text(at)
    at = _app("views/camera.py")
    assert "prohibited in the EU" in "\n".join(str(w.value) for w in at.sidebar.warning)
    assert "Confirm consent" in _text(at)  # the camera page: nothing starts before consent
    at = _app("views/about.py")
    text = _text(at)
    assert "AI Act, Article 5(1)(f)" in text and "apparent facial expressions" in text
    assert "Disgust" in text and "48×48" in text
    recall = at.dataframe[1].value
    assert list(recall.index) == [words.expression(e) for e in EMOTIONS] and set(recall.columns) == {"accurate", "fast"}
    assert "*accurate* holds two networks" in text


def test_upload_page_shows_the_limit(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSMOOD_MAX_UPLOAD_MB", "42")
    at = _app("views/analyse.py")
    assert "Upload limit: **42 MB** per file" in _text(at)
    assert not at.button  # nothing to analyse without a file


def test_sessions_page_lists_and_deletes(app_env: Path) -> None:
    s = open_store()  # CLASSMOOD_DB from the fixture
    sid = s.start_session(kind="upload", source="lesson-1.mp4", config={})
    other = s.start_session(kind="camera", source="browser webcam", config={})
    analyzer = Analyzer(PipelineConfig(min_faces=1))
    update = analyzer.process(Frame(0, 0.0, camera_frame()))
    s.add_update(sid, update.face_rows(), [b.as_row() for b in analyzer.finish()])
    s.finish_session(sid, summary={"faces": 1}, status="finished")
    s.rename(sid, "Monday")
    at = _app("views/sessions.py")
    listed = at.dataframe[0].value
    # newest first; a session without a name shows its source
    assert listed["Session"].tolist() == [f"#{other}", f"#{sid}"]
    assert listed["Name"].tolist() == ["browser webcam", "Monday"]
    assert set(listed["Model"]) == {"—"} and "None" not in listed.to_string()
    labels = at.selectbox(key="manage_id").options  # as shown
    assert any("Monday" in x for x in labels) and not any(
        "nan" in x for x in labels
    )  # a session without a name shows its source
    at.selectbox(key="manage_id").set_value(other).run()
    assert at.text_input(key=f"rename_{other}").value == ""  # not the other session's "Monday"
    at.selectbox(key="manage_id").set_value(sid).run()
    assert at.text_input(key=f"rename_{sid}").value == "Monday"
    assert at.button[-1].disabled  # delete needs the confirmation first
    at.checkbox(key=f"delete_confirm_{sid}").check().run()
    at.button[-1].click().run()
    assert not at.exception
    assert not at.checkbox(key=f"delete_confirm_{other}").value  # the next session is not pre-confirmed
    assert s.list_sessions()["id"].tolist() == [other]
    assert at.dataframe[0].value["Session"].tolist() == [f"#{other}"]
    with s.engine.connect() as conn:  # its faces and bins went with it
        assert conn.exec_driver_sql("select count(*) from faces").scalar() == 0
        assert conn.exec_driver_sql("select count(*) from bins").scalar() == 0


def test_sessions_page_opens_compares_and_exports(app_env: Path) -> None:
    s = open_store()
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    ids = []
    for n in range(2):
        sid = s.start_session(kind="gallery", source=f"lesson {n}", config={})
        analyzer = Analyzer(PipelineConfig(min_faces=5, bin_s=1.0))
        for i in range(3):
            update = analyzer.process(Frame(i, float(i), frame))
            s.add_update(sid, update.face_rows(), [b.as_row() for b in update.bins])
        s.add_update(sid, [], [b.as_row() for b in analyzer.finish()])
        s.finish_session(sid, status="finished")
        ids.append(sid)
    at = _app("views/sessions.py")
    assert not at.exception
    compare = _compare_table(at)
    assert list(compare.columns) == ["", f"#{ids[0]}", f"#{ids[1]}", "difference"]
    happy = compare.set_index("").loc["looking happy"]
    assert "—" not in happy.iloc[:2].tolist()  # 6 faces read >= k = 5: both sessions have class numbers
    prepare = next(b for b in at.button if b.label == "Prepare files")
    prepare.click().run()
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download faces.csv", "Download class_mood.csv", "Download session.json"]
    at.session_state["min_faces"] = 7  # the sidebar's k is for new analyses: a saved session keeps its own
    at.run()
    assert "—" not in _compare_table(at).set_index("").loc["looking happy"].iloc[:2].tolist()
    for which, sid in (("cmp_a", ids[0]), ("cmp_b", ids[1]), ("open", ids[1])):
        at.number_input(key=f"view_k_{which}_{sid}_5").set_value(7).run()  # raised on the result: at once
    assert _compare_table(at).set_index("").loc["looking happy"].iloc[:2].tolist() == ["—", "—"]
    assert any("Class numbers hidden" in str(i.value) for i in at.info)


def _compare_table(at: Any) -> Any:
    """The Compare tab's table (the one with a difference column)."""
    return next(d.value for d in at.dataframe if "difference" in d.value.columns)


def test_gallery_server_capture_error_is_shown(app_env: Path) -> None:
    at = _app("views/gallery.py")
    at.checkbox(key="consent_gallery").check().run()
    at.radio(key="gallery_source").set_value("Capture this server's screen").run()
    at.text_input[0].input("screen:99").run()
    next(b for b in at.button if b.label == "Start capture").click().run()
    errors = [str(e.value) for e in at.error]
    # no display here (or no monitor 99 where there is one): a one-line message, no capture
    assert len(errors) == 1 and ("no display" in errors[0] or "no monitor 99" in errors[0]), errors
    assert "\n" not in errors[0] and "○ Not analysing" in _text(at)


def test_no_sessions_yet(app_env: Path) -> None:
    at = _app("views/sessions.py")
    assert "No sessions yet" in _text(at)


def test_password_gate(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.HASH_ENV, auth.hash_password("s3cret"))
    at = _app()
    assert at.text_input[0].label == "Password" and "Confirm consent" not in _text(at)
    assert "prohibited in the EU" in "\n".join(str(w.value) for w in at.sidebar.warning)
    at.text_input[0].input("wrong")
    at.button[0].click().run()  # the form submits the typed value with the button
    assert "Wrong password." in _text(at) and "Start with one of these" not in _text(at)
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert "Start with one of these" in _text(at)  # in: the start page


def test_open_bind_without_password_shows_nothing(app_env: Path) -> None:
    from streamlit import config

    config.set_option("server.address", "0.0.0.0")
    at = _app()
    assert "without a password" in _text(at) and "Start with one of these" not in _text(at)


def test_worker_threads_end(store: Any) -> None:
    """Sessions of the tests above leave no analysis thread running."""
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name.startswith("classmood-live")]


def test_upload_left_mid_analysis_is_saved_as_stopped(class_video: Path, store: Any) -> None:
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    def leave(done: float, note: str) -> None:
        if note != "starting":
            raise StopException  # what Streamlit raises in the script thread when the user navigates away

    with pytest.raises(StopException):
        analyze_upload(class_video, "class.mp4", PipelineConfig(), store, on_progress=leave, poll_s=0.0)
    session = store.list_sessions().iloc[0]
    assert session["status"] == "stopped"
    assert 0 < session["faces"] < 6 * 4  # the frames analysed before leaving are kept; the rest never ran


def test_model_picker_help_describes_each_shipped_models_tta_and_accuracy() -> None:
    from classmood.app.ui import model_help
    from classmood.weights.manifest import read_manifest

    text = model_help()
    for name in ("fast", "accurate"):
        entry = read_manifest()[name]
        tta = f" with {entry['tta']} TTA" if entry.get("tta", "none") != "none" else ""
        agreed = f"{entry['val']['ferplus']['accuracy']:.0%} agreement with FER+'s annotators"
        # the help names the TTA each model really runs (and none when it has none) next to its accuracy
        assert f"{name}: {entry['params'] / 1e6:.1f} M parameters{tta}, {agreed}" in text
