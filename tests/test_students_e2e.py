"""Student-side mode in real headless Chromium: consent, the reading in WASM, what leaves the page, k, the teacher.

Each student is its own browser context whose fake webcam plays a .y4m of a real face. The hub
runs in this process (port 0) for the student tests; the teacher test starts ``classmood app``
as a user would and drives its "Live — students' browsers" page. Every page's requests and
WebSocket frames are recorded: only small JSON text messages with the protocol's keys may leave.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from classmood.benchmarks.students import chromium_args, webcam_scene, write_y4m
from classmood.classroom import vendor
from classmood.classroom.protocol import MAX_MESSAGE_BYTES, UPDATE_KEYS
from classmood.containers import Frame
from classmood.expression.model import load_model
from classmood.pipeline import Analyzer, PipelineConfig
from classmood.vision.crops import face_crops
from classmood.vision.detectors import LibFaceDetector
from tests.test_app_e2e import CHROMIUM, free_port, running_app
from tests.test_app_logic import camera_frame

if not vendor.installed() and os.environ.get("CLASSMOOD_REQUIRE_BROWSER"):  # CI: never skip these
    raise RuntimeError("CLASSMOOD_REQUIRE_BROWSER is set but onnxruntime-web is missing (make installs it)")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs the system Chromium at {CHROMIUM}"),
    pytest.mark.skipif(
        not vendor.installed(), reason="onnxruntime-web not installed (python -m classmood.classroom.vendor)"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install 'classmood[dev]')")


@dataclass
class Traffic:
    """What one page asked for and sent."""

    requests: list[tuple[str, str, bytes | None]] = field(default_factory=list)  # method, url, body
    frames: list[str | bytes] = field(default_factory=list)  # WebSocket frames the page sent
    sockets: list[str] = field(default_factory=list)


@dataclass
class Student:
    page: Any
    traffic: Traffic

    def state(self) -> dict[str, Any]:
        return dict(self.page.evaluate("() => ({phase: classmood.state.phase, sent: classmood.state.sent})"))


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    y4m = write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", [camera_frame()] * 20)
    args = chromium_args(y4m)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def hub() -> Iterator[Any]:
    from classmood.classroom.hub import Hub

    h = Hub(port=0).start()
    yield h
    h.stop()


def open_student(chromium: Any, url: str) -> Student:
    traffic = Traffic()
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("request", lambda r: traffic.requests.append((r.method, r.url, r.post_data_buffer)))

    def on_socket(ws: Any) -> None:
        traffic.sockets.append(ws.url)
        ws.on("framesent", lambda payload: traffic.frames.append(payload))

    page.on("websocket", on_socket)
    page.goto(url)
    return Student(page, traffic)


def start(student: Student) -> None:
    student.page.check("#consent")
    student.page.click("#start")
    wait_for("the student to run", lambda: student.state()["phase"] == "running" and student.state()["sent"] >= 1)


def join_class(chromium: Any, hub: Any, k: int = 1) -> tuple[Any, Student]:
    """A new class with one student running, whose face the class already counts."""
    room = hub.open_room(k)
    student = open_student(chromium, hub.join_url(room.code))
    start(student)
    wait_for("a face present", lambda: room.now_view()["faces"] == 1)
    return room, student


def wait_for(what: str, check: Callable[[], bool], timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def only_numbers_left(student: Student, origin: str) -> None:
    """Every request went to the hub, none carried a body; every frame sent is a small protocol message."""
    for method, url, body in student.traffic.requests:
        parsed = urllib.parse.urlparse(url)
        assert f"{parsed.scheme}://{parsed.netloc}" == origin or parsed.scheme in ("data", "blob"), url
        assert method == "GET" and not body, (method, url)
    assert student.traffic.frames, "the page sent nothing"
    for frame in student.traffic.frames:
        assert isinstance(frame, str), "a binary WebSocket frame left the page"
        assert len(frame.encode()) <= MAX_MESSAGE_BYTES
        msg = json.loads(frame)
        assert set(msg) == UPDATE_KEYS or set(msg) == {"type"}, msg
        if msg["type"] == "update" and msg["probs"] is not None:
            assert len(msg["probs"]) == 7 and all(isinstance(p, int | float) for p in msg["probs"])


def test_nothing_starts_before_consent_then_only_numbers_leave(chromium: Any, hub: Any) -> None:
    room = hub.open_room(1)
    origin = f"http://localhost:{hub.port}"
    student = open_student(chromium, hub.join_url(room.code))
    page = student.page
    assert "AI Act" in page.inner_text("#notice") and page.input_value("#code") == room.code
    assert page.is_disabled("#start")
    time.sleep(1.5)
    assert student.state()["phase"] == "consent" and student.traffic.sockets == []
    assert page.evaluate("() => document.getElementById('video').srcObject") is None  # camera never opened
    assert not [u for _, u, _ in student.traffic.requests if "/models/" in u]  # models load only after consent
    assert room.now_view()["students"] == 0

    start(student)
    wait_for("the class to see a face", lambda: room.now_view()["faces"] == 1 and not room.now_view()["hidden"])
    wait_for("three updates", lambda: student.state()["sent"] >= 3)
    view = room.now_view()
    assert view["students"] == 1 and max(view["shares"], key=view["shares"].get) == "happy"  # the smiling sample
    last = page.evaluate("() => classmood.state.lastMessage")
    assert json.loads(page.inner_text("#sent")) == json.loads(last)  # the student sees exactly what was sent
    assert last in student.traffic.frames
    only_numbers_left(student, origin)
    page.context.close()
    wait_for("a closed tab to leave the class", lambda: room.now_view()["students"] == 0, timeout=20)
    hub.close_room(room.code)


def test_a_wrong_code_or_a_refused_connection_never_turns_the_camera_on(chromium: Any, hub: Any) -> None:
    room = hub.open_room(3)
    student = open_student(chromium, f"http://localhost:{hub.port}/join/WRONG1")
    student.page.wait_for_function("() => document.getElementById('classinfo').textContent.length > 0")
    assert "No open class" in student.page.inner_text("#classinfo")
    student.page.check("#consent")
    student.page.click("#start")
    wait_for("the refusal", lambda: "no open class" in student.page.inner_text("#status").lower())
    assert student.state()["phase"] == "consent" and not student.page.is_checked("#consent")
    assert student.traffic.sockets == [] and not [u for _, u, _ in student.traffic.requests if "/models/" in u]
    assert student.page.evaluate("() => document.getElementById('video').srcObject") is None
    # the right code: the class's k and saving are shown before consent
    student.page.fill("#code", room.code)
    student.page.dispatch_event("#code", "change")
    wait_for("the class's terms", lambda: "k = 3" in student.page.inner_text("#classinfo"))
    assert "not saved" in student.page.inner_text("#classinfo")
    # a proxy that refuses WebSockets: back to the consent box with the camera off
    student.page.route_web_socket(re.compile(".*/ws/student.*"), lambda ws: ws.close())
    student.page.check("#consent")
    student.page.click("#start")
    wait_for("the failed connection", lambda: "could not connect" in student.page.inner_text("#status").lower())
    assert student.state()["phase"] == "consent"
    live = "() => { const v = document.getElementById('video'); return v.srcObject !== null; }"
    assert not student.page.evaluate(live)
    student.page.context.close()
    hub.close_room(room.code)


def test_unticking_consent_leaves_and_a_student_can_join_again(chromium: Any, hub: Any) -> None:
    room, student = join_class(chromium, hub)
    student.page.uncheck("#consent")
    wait_for("withdrawn consent to leave", lambda: room.now_view()["students"] == 0)
    assert student.state()["phase"] == "left"
    start(student)  # consent again, Start again
    wait_for("the student back", lambda: room.now_view()["faces"] == 1)
    labels = student.page.inner_text("#sentProbs")
    assert "happy" in labels and "neutral" in labels  # the seven numbers, labelled for the student
    student.page.context.close()
    hub.close_room(room.code)


def test_pause_resume_and_leave(chromium: Any, hub: Any) -> None:
    room, student = join_class(chromium, hub)
    student.page.click("#pause")
    wait_for("the pause to count", lambda: room.now_view()["paused"] == 1 and room.now_view()["faces"] == 0)
    sent = student.state()["sent"]
    time.sleep(2.5)
    assert student.state()["sent"] == sent  # nothing read or sent while paused
    student.page.click("#pause")  # Resume
    assert json.loads(student.page.inner_text("#sent")) == {"type": "resume"}
    wait_for("the face back", lambda: room.now_view()["faces"] == 1 and room.now_view()["paused"] == 0)
    student.page.click("#leave")
    wait_for("leaving to remove the student", lambda: room.now_view()["students"] == 0)
    assert student.state()["phase"] == "left"
    assert student.page.evaluate("() => document.getElementById('video').srcObject") is None  # camera off
    only_numbers_left(student, f"http://localhost:{hub.port}")
    student.page.context.close()
    hub.close_room(room.code)


def test_class_numbers_appear_only_with_k_students(chromium: Any, hub: Any) -> None:
    room, first = join_class(chromium, hub, k=2)
    time.sleep(1.5)
    assert room.now_view()["hidden"] and room.now_view()["shares"] is None
    second = open_student(chromium, hub.join_url(room.code))
    start(second)
    wait_for("two faces and class numbers", lambda: room.now_view()["faces"] == 2 and not room.now_view()["hidden"])
    second.page.click("#leave")
    wait_for("numbers hidden again", lambda: room.now_view()["hidden"] and room.now_view()["students"] == 1)
    hub.close_room(room.code)
    wait_for("the first student to be told", lambda: first.state()["phase"] == "closed")
    assert "ended the class" in first.page.inner_text("#status")
    first.page.context.close()
    second.page.context.close()


def test_the_browser_reads_faces_as_the_python_pipeline_does(chromium: Any, hub: Any) -> None:
    """Same frames, same probabilities: the browser against the Python pipeline run with the browser's detector.

    ``classmood analyze --detector yunet`` is that pipeline (detect -> gate -> track -> crop -> model ->
    readout). Against the server's default detector (libfacedetection, the same network compiled
    in C) the boxes move by a pixel or two, which the test bounds separately.
    """
    room = hub.open_room(1, "accurate")
    student = open_student(chromium, hub.join_url(room.code))
    student.page.wait_for_function("() => window.classmood !== undefined")
    model, server = load_model("accurate", precision="float"), LibFaceDetector()
    frames = [camera_frame()] + [s.image for s in map(webcam_scene, range(5002, 5014)) if len(s.faces)]
    same, default, turned = [], [], []
    for i, frame in enumerate(frames):
        rgba = cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA)
        got = student.page.evaluate(
            "([w, h, b]) => classmood.analyse(w, h, b)",
            [frame.shape[1], frame.shape[0], base64.b64encode(rgba.tobytes()).decode()],
        )
        assert got["face"], f"frame {i}: the browser found no face"
        browser = model.readout.calibrate(np.array([got["probs"]], np.float32))[0]  # as the hub reads it
        analyzer = Analyzer(PipelineConfig(detector="yunet", model="accurate", rate_hz=0), model=model)
        dets = analyzer.process(Frame(0, 0.0, frame)).detections
        largest = int(np.argmax((dets.xyxy[:, 2] - dets.xyxy[:, 0]) * (dets.xyxy[:, 3] - dets.xyxy[:, 1])))
        assert got["box"] == dets.xyxy[largest].tolist(), f"frame {i}: another box"
        assert got["readable"] == bool(dets.read[largest])
        # head pose: the server's SQPnP against the page's weak-perspective start refined on the reprojection
        turned.append((np.abs(np.array(got["pose"]) - dets.pose[largest]).max(), got["facing"], dets.pose[largest]))
        same.append(float(np.abs(browser - dets.probs[largest]).max()))
        ours = server.detect(frame)
        j = int(np.argmax((ours.xyxy[:, 2] - ours.xyxy[:, 0]) * (ours.xyxy[:, 3] - ours.xyxy[:, 1])))
        theirs = model.predict_proba(face_crops(frame, ours.xyxy[[j]]))[0]
        default.append((float(np.abs(browser - theirs).max()), browser.argmax() == theirs.argmax()))
    assert len(same) >= 10
    from classmood.vision.pose import facing, looking_down

    said = {"toward": 1, "away": 0, "unclear": None}
    server_facing = [
        -1 if looking_down(p[None])[0] and facing(p[None])[0] == "away" else said[facing(p[None])[0]]
        for _, _, p in turned
    ]
    assert sorted(d for d, _, _ in turned)[len(turned) // 2] <= 1.0, turned  # degrees
    assert sum(f == g for (_, f, _), g in zip(turned, server_facing, strict=True)) >= len(turned) - 1, turned
    assert max(same) <= 0.01, same  # the same pipeline: float rounding only (WASM vs native kernels)
    diffs = sorted(d for d, _ in default)
    assert diffs[len(diffs) // 2] <= 0.04 and sum(a for _, a in default) >= len(default) - 1, default
    student.page.context.close()
    hub.close_room(room.code)


def test_the_page_and_the_server_say_the_same_of_real_heads(chromium: Any, hub: Any) -> None:
    """Every real face of bench/realfaces that the browsers' detector finds: the page's head pose (weak
    perspective refined on the reprojection error) against the server's (OpenCV's SQPnP) on the same five
    landmarks and box, and the facing number each side would send."""
    from classmood.benchmarks.realfaces import DEFAULT_DIR, load_labels
    from classmood.imageio import read_image
    from classmood.vision.pose import AWAY, TOWARD, facing, head_pose, looking_down
    from classmood.vision.yunet import YuNetDetector

    room = hub.open_room(1)
    student = open_student(chromium, hub.join_url(room.code))
    student.page.wait_for_function("() => window.classmood !== undefined")
    detector, marks, boxes = YuNetDetector(), [], []
    for name in load_labels(DEFAULT_DIR).images:
        dets = detector.detect(read_image(Path(DEFAULT_DIR) / name))
        marks += dets.landmarks.tolist()
        boxes += dets.xyxy.tolist()
    assert len(boxes) >= 200
    page = student.page.evaluate(
        "async ([marks, boxes]) => Promise.all(marks.map((m, i) => classmood.facing(m, boxes[i])))", [marks, boxes]
    )
    server = head_pose(np.array(marks), np.array(boxes))
    words = facing(server)
    said = np.where(words == TOWARD, 1, np.where(words == AWAY, np.where(looking_down(server), -1, 0), 99))
    apart = np.abs(np.array([p["pose"] for p in page], np.float64) - server).max(axis=1)
    same = np.array([p["facing"] for p in page]) == said
    assert np.median(apart) <= 0.5 and same.mean() >= 0.95, (np.median(apart), same.mean())
    student.page.context.close()
    hub.close_room(room.code)


# --- the teacher's page in the app -------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    tmp = tmp_path_factory.mktemp("students_app")
    db, class_port = tmp / "sessions.db", free_port()
    with running_app(tmp, "--class-port", str(class_port), "--db", str(db)) as url:
        yield url, class_port, db


def _metric(page: Any, label: str) -> int | None:
    found = re.search(rf"{label}\s*\n\s*(\d+)", page.locator("[data-testid=stMain]").inner_text())
    return int(found.group(1)) if found else None


def _figure(page: Any, label: str) -> str:
    """The value of a headline figure, as shown."""
    found = re.search(rf"{label}\s*\n\s*([^\n]+)", page.locator("[data-testid=stMain]").inner_text())
    return found.group(1) if found else ""


def test_teacher_opens_a_class_sees_the_numbers_and_ends_it(chromium: Any, app: tuple[str, int, Path]) -> None:
    url, class_port, db = app
    teacher = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    teacher.set_default_timeout(30_000)
    teacher.goto(f"{url}/students")
    k = teacher.get_by_label("k for new analyses: hide class numbers below this many faces read", exact=True)
    k.fill("1")
    k.press("Enter")
    teacher.get_by_role("button", name="Open a class").click()
    teacher.get_by_text("Class code:").wait_for()
    code = re.search(r"Class code: ([A-Z0-9]{6})", teacher.locator("[data-testid=stMain]").inner_text())
    assert code is not None
    join = f"http://localhost:{class_port}/join/{code.group(1)}"
    assert teacher.get_by_role("link", name=join).count() == 1
    student = open_student(chromium, join)
    start(student)
    assert "k = 1" in student.page.inner_text("#classinfo") and "saves" in student.page.inner_text("#classinfo")
    wait_for("the dashboard to count the student", lambda: _metric(teacher, "Faces now") == 1, timeout=60)
    assert _metric(teacher, "Students connected") == 1
    teacher.get_by_text("Apparent expressions now").wait_for()
    wait_for("k = 1: the class numbers show", lambda: "happy" in _figure(teacher, "Mostly"), timeout=30)
    # what the page decided of the head (facing, one number) is what the class's share shows (k = 1)
    sent = json.loads(student.page.evaluate("() => document.getElementById('sent').textContent"))
    assert sent["facing"] in (1, 0, -1)
    share = "100 %" if sent["facing"] == 1 else "0 %"
    wait_for("facing the screen", lambda: _figure(teacher, "Facing the screen") == share, timeout=30)
    teacher.reload()  # a reload (or the bookmarked address) comes back to the running class
    teacher.get_by_text(f"Class code: {code.group(1)}").wait_for()
    wait_for("the dashboard after the reload", lambda: _metric(teacher, "Faces now") == 1, timeout=60)
    only_numbers_left(student, f"http://localhost:{class_port}")
    student.page.click("#leave")
    wait_for("the dashboard to drop the student", lambda: _metric(teacher, "Students connected") == 0, timeout=60)
    teacher.get_by_text("Hidden: class numbers need the faces of at least 1 student read").wait_for(timeout=30_000)
    teacher.get_by_role("button", name="End class").click()
    teacher.get_by_text(f"Class {code.group(1)} ended and was saved as session").wait_for()
    teacher.get_by_role("button", name="Open a class").wait_for()  # and a new class can be opened at once
    assert "Class code:" not in teacher.locator("[data-testid=stMain]").inner_text()  # the old class is gone
    assert teacher.get_by_role("button", name="End class").count() == 0
    from classmood.store import open_store

    store = open_store(f"sqlite:///{db}")
    sessions = store.list_sessions()
    store.close()
    assert list(sessions["kind"]) == ["students"] and list(sessions["status"]) == ["finished"]
    student.page.context.close()
    teacher.context.close()


def test_the_student_page_works_under_a_reverse_proxy_path(chromium: Any, hub: Any) -> None:
    """Behind ``handle_path /class/*`` (README's Caddy recipe) every address of the page must be relative."""
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[Mount("/class", app=hub.app())]), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for("the prefixed server", lambda: server.started, timeout=15)
    room = hub.open_room(1)
    student = open_student(chromium, f"http://localhost:{port}/class/join/{room.code}")
    start(student)
    wait_for("a face through the prefix", lambda: room.now_view()["faces"] == 1)
    assert all(urllib.parse.urlparse(u).path.startswith("/class/") for _, u, _ in student.traffic.requests)
    assert all(urllib.parse.urlparse(u).path == "/class/ws/student" for u in student.traffic.sockets)
    student.page.context.close()
    hub.close_room(room.code)
    server.should_exit = True
    thread.join(10)
