"""The web app in a real browser: ``classmood app`` started as a user would, driven by headless Chromium.

Chromium's fake camera plays a generated .y4m clip showing the bundled sample face; the test goes
through the consent gate, starts the WebRTC stream (no STUN/TURN: browser and server talk over
the local interface), waits for the live panel to report the face and a growing mood series,
stops, checks the session the server saved, then uploads a small gallery video on the Analyse
page and downloads faces.csv. Only the system Chromium is used (no browser download).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest

from classmood.benchmarks.students import chromium_args
from classmood.labels import FACE_COLUMNS
from tests.test_app_logic import camera_frame
from tests.test_pipeline import write_video
from tests.test_screen_source import start_xvfb
from tests.test_vision import gallery

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and os.environ.get("CLASSMOOD_REQUIRE_BROWSER"):  # CI installs it: never skip there
    raise RuntimeError(f"CLASSMOOD_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs the system Chromium at {CHROMIUM}")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install 'classmood[dev]')")
pytest.importorskip("streamlit_webrtc", reason="needs the app extra (pip install 'classmood[app]')")


def write_y4m(path: Path, frame: np.ndarray, frames: int = 30, fps: int = 10) -> Path:
    """A YUV4MPEG2 clip (what Chromium's fake camera plays in a loop) of ``frame`` repeated."""
    h, w = frame.shape[:2]
    planes = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            fh.write(b"FRAME\n" + planes)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_app(tmp: Path, *args: str, env_extra: dict[str, str] | None = None) -> Iterator[str]:
    """``classmood app ARGS`` started as a user would, with a fresh HOME that must stay empty; yields its URL."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CLASSMOOD_PASSWORD", "CLASSMOOD_PASSWORD_HASH")
    }
    home = tmp / "home"  # a fresh HOME: the app must write nothing there (the database is given with --db)
    home.mkdir()
    env.update(HOME=str(home), **(env_extra or {}))
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "classmood.cli", "app", "--port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start: {(tmp / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        with_group = os.getpgid(proc.pid) if proc.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
    assert list(home.iterdir()) == [], "the app wrote into HOME"


@pytest.fixture(scope="module")
def screen() -> Iterator[str | None]:
    """The server's own screen (an Xvfb display, None without Xvfb), for a capture of the server's screen."""
    xvfb, display = start_xvfb("640x480x24") if shutil.which("Xvfb") else (None, None)
    try:
        yield display
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, screen: str | None) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("app")
    db = tmp / "sessions.db"
    with running_app(tmp, "--db", str(db), env_extra={"DISPLAY": screen} if screen else None) as url:
        yield url, db


@contextlib.contextmanager
def face_on_screen(page: Page, display: str) -> Iterator[None]:
    """A real window on the server's screen showing the sample face (a second, headed Chromium on the
    Xvfb display), as a call window would be: a capture with nobody in view saves no session."""
    import base64

    from classmood.expression.predict import sample_face_path
    from classmood.imageio import read_image

    png = base64.b64encode(cv2.imencode(".png", cv2.resize(read_image(sample_face_path()), (240, 240)))[1]).decode()
    browser_type = page.context.browser.browser_type  # type: ignore[union-attr]
    window = browser_type.launch(
        executable_path=str(CHROMIUM),
        headless=False,
        env={**os.environ, "DISPLAY": display},
        args=["--window-position=0,0", "--window-size=640,480", "--disable-gpu", "--no-first-run"],
    )
    try:
        shown = window.new_page()
        shown.set_content(
            '<body style="margin:0;background:#3c3c3c"><img src="data:image/png;base64,'
            f'{png}" style="position:fixed;left:40px;top:40px;width:240px;height:240px"></body>'
        )
        yield
    finally:
        window.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    y4m = write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", camera_frame())
    args = chromium_args(y4m)  # a fake webcam; the outside network does not exist for this browser
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        yield watched_page(context, 30_000)
        context.close()
        browser.close()


OUTSIDE: list[str] = []  # every request the app made to anything but this machine


def watched_page(context: Any, timeout_ms: int) -> Any:
    """A new page of ``context`` whose requests outside this machine and Content-Security-Policy
    refusals are noted in OUTSIDE and BLOCKED (asserted empty by the tests)."""
    context.on("request", lambda request: _note_outside(request.url))
    page = context.new_page()
    page.on("console", lambda message: _note_blocked(message.text))
    page.set_default_timeout(timeout_ms)
    return page


def _note_outside(url: str) -> None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "chrome", "chrome-extension"):
        return
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        OUTSIDE.append(url)


BLOCKED: list[str] = []  # what the app's Content-Security-Policy refused in the browser


def _note_blocked(text: str) -> None:
    if "Content Security Policy" in text:
        BLOCKED.append(text)


@pytest.fixture(autouse=True)
def nothing_fetched_from_outside() -> Iterator[None]:
    """Fail any test during which the app asked the browser for anything outside this machine, or its
    own Content-Security-Policy blocked something of the app's (the policy must not break a page)."""
    OUTSIDE.clear()
    BLOCKED.clear()
    yield
    assert OUTSIDE == [], f"the app fetched from outside: {OUTSIDE[:5]}"
    assert BLOCKED == [], f"the app's Content-Security-Policy blocked: {BLOCKED[:3]}"


def _number(page: Page, label: str) -> int | None:
    """A headline figure ("Faces now" then its value on the next line) or "Analysed N of ..."."""
    text = page.locator("[data-testid=stMain]").inner_text()
    found = re.search(rf"{label}(?:\s*\n\s*| )(\d+)", text)
    return int(found.group(1)) if found else None


def _wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


def _sessions_of(db: Path, kind: str) -> int:
    from classmood.store import open_store

    store = open_store(f"sqlite:///{db}")
    try:
        sessions = store.list_sessions()
        return int((sessions["kind"] == kind).sum()) if len(sessions) else 0
    finally:
        store.close()


def _newest_session(db: Path, kind: str) -> tuple[Any, Any]:
    """The newest session of ``kind`` the app saved (its row in the session list) and its face rows."""
    from classmood.store import open_store

    store = open_store(f"sqlite:///{db}")
    try:
        sessions = store.list_sessions()
        row = sessions[sessions["kind"] == kind].iloc[-1]
        return row, store.faces(int(row["id"]))
    finally:
        store.close()


def test_live_camera_shows_faces_and_saves_the_session(server: tuple[str, Path], page: Page) -> None:
    url, db = server
    page.goto(f"{url}/camera")  # its own address: the start page is the default one
    page.get_by_text("Confirm consent above").wait_for()
    assert page.locator("iframe[title*='streamlit_webrtc']").count() == 0
    page.get_by_text("Everyone whose face will be analysed").click()
    webrtc = page.frame_locator("iframe[title*='streamlit_webrtc']")
    webrtc.get_by_role("button", name="START").click()
    page.get_by_text("Analysing", exact=True).wait_for()
    _wait_for("a face in the live panel", lambda: (_number(page, "Faces now") or 0) >= 1)
    first = _number(page, "Analysed") or 0
    _wait_for("the analysis to go on", lambda: (_number(page, "Analysed") or 0) >= first + 2)
    assert "prohibited in the EU" in page.locator("[data-testid=stSidebar]").inner_text()
    size = re.search(r"picture (\d+)×(\d+)", page.locator("[data-testid=stMain]").inner_text())
    assert size is not None and size.groups() == ("640", "480"), size  # the camera's own resolution arrives
    shown = page.locator("[data-testid=stMain]").inner_text()
    assert re.search(r"Facing the screen\s*\n\s*—\s*\n\s*needs at least k = 5 faces clearly oriented", shown), shown
    assert page.get_by_role("button", name="Stop analysis").count() == 0  # one stop: the video's own STOP
    webrtc.get_by_role("button", name="STOP").click()
    page.get_by_text("Not analysing").wait_for()

    camera, faces = _newest_session(db, "camera")
    assert camera["status"] == "stopped" and camera["faces"] >= 2 and camera["tracks"] >= 1
    assert list(faces.columns) == FACE_COLUMNS and (faces["w"] > 100).all()  # the big sample face, not noise
    assert faces["yaw"].notna().all() and set(faces["facing"]) <= {"toward", "away", "unclear"}


def test_gallery_browser_screen_share_feeds_the_worker(server: tuple[str, Path], page: Page) -> None:
    """The getDisplayMedia path (Chromium's fake screen: no faces, but frames must arrive and be analysed)."""
    url, db = server
    page.goto(f"{url}/gallery")
    assert page.get_by_role("button", name="Share screen").is_disabled()  # consent first
    page.get_by_text("Everyone whose face will be analysed").click()
    page.get_by_role("button", name="Share screen").click()
    page.get_by_text("Analysing", exact=True).wait_for()
    _wait_for("screen frames to be analysed", lambda: (_number(page, "Analysed") or 0) >= 3)
    shown = page.locator("[data-testid=stMain]").inner_text()
    assert "class numbers need at least 5 faces read" in shown and "Per-face view" not in shown  # off by default
    assert page.get_by_role("button", name="Stop analysis").count() == 0  # one stop button: the share's own
    page.get_by_role("button", name="Stop sharing").click()
    page.get_by_text("Not analysing").wait_for()

    _wait_for("the share to end", lambda: page.get_by_text("Not analysing").count() == 1)
    assert _sessions_of(db, "gallery") == 0  # Chromium's fake screen has no face: no empty session is saved


def test_upload_a_recording_and_download_faces_csv(server: tuple[str, Path], page: Page, tmp_path: Path) -> None:
    url, _ = server
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    video = write_video(tmp_path / "class.mp4", [frame] * 20)  # 2 s at 10 fps, 6 faces
    page.goto(f"{url}/analyse")
    page.get_by_text("Upload limit:").wait_for()
    page.locator("input[type=file]").set_input_files(str(video))
    page.get_by_role("button", name="Analyse", exact=True).click()
    button = page.get_by_role("button", name="faces.csv")
    button.wait_for(timeout=90_000)
    with page.expect_download() as info:
        button.click()
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    assert rows[0] == FACE_COLUMNS
    assert len(rows) - 1 == 6 * 4  # 6 faces in each of the 4 analysed frames (2 per second)
    assert page.get_by_role("button", name="report.html").count() == 1


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb for the server's screen")
def test_server_capture_stops_when_its_tab_is_closed(server: tuple[str, Path], screen: str, page: Page) -> None:
    """A capture of the server's own screen (a window with a face on it) must not outlive the browser tab
    that started it."""
    url, db = server
    with face_on_screen(page, screen):
        tab = page.context.new_page()
        tab.goto(f"{url}/gallery")
        tab.get_by_text("Everyone whose face will be analysed").click()
        tab.get_by_text("Capture this server's screen").click()
        tab.get_by_role("button", name="Start capture").click()
        tab.get_by_text("Analysing", exact=True).wait_for()
        _wait_for("the capture to be saved as running", lambda: _screen_session(db)["status"] == "running")
        closed = time.monotonic()
        tab.close()
        _wait_for("the capture to stop", lambda: _screen_session(db)["status"] == "stopped", timeout=30)
        assert time.monotonic() - closed < 20  # within seconds, not when the process ends


def _screen_session(db: Path) -> Any:
    from classmood.store import open_store

    store = open_store(str(db))
    try:
        sessions = store.list_sessions()
        found = sessions[sessions["source"].str.startswith("screen")]
        return found.iloc[0] if len(found) else {"status": None}
    finally:
        store.close()


def test_the_app_wrote_nothing_outside_its_database(server: tuple[str, Path]) -> None:
    """After every page above was used: the server's fresh HOME is still empty, and next to the session
    database there is only the database itself (with SQLite's WAL files) and the server's log."""
    _, db = server
    home = db.parent / "home"
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []
    beside = {p.name for p in db.parent.iterdir()} - {"home", "server.log"}
    assert beside <= {db.name, f"{db.name}-wal", f"{db.name}-shm"}, beside
