"""Student-side mode without a browser: the protocol, a class's numbers under k, the hub's sockets, the vendoring.

The browser side (consent, camera, WASM inference, what leaves the page) is in test_students_e2e.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from classmood.classroom import vendor
from classmood.classroom.protocol import MAX_MESSAGE_BYTES, Control, ProtocolError, StudentUpdate, parse, update_message
from classmood.classroom.room import STALE_S, Room
from classmood.expression.readout import Readout
from classmood.imageio import read_image
from classmood.vision.detectors import LibFaceDetector
from classmood.vision.yunet import YuNetDetector

HAPPY = [0.01, 0.01, 0.01, 0.9, 0.03, 0.02, 0.02]
SAD = [0.05, 0.01, 0.04, 0.02, 0.8, 0.02, 0.06]


def good(**change: object) -> str:
    msg = {"type": "update", "class": "ABCDEF", "pseudonym": "p-1234", "t": 1.5, "face": True, "probs": HAPPY}
    msg["facing"] = 1
    msg.update(change)
    return json.dumps(msg)


# --- protocol --------------------------------------------------------------------------------------
def test_an_update_is_parsed_and_round_trips() -> None:
    u = parse(update_message("ABCDEF", "p-1234", 1.5, True, HAPPY))
    assert isinstance(u, StudentUpdate) and u.probs == tuple(HAPPY) and u.face and u.t == 1.5
    assert parse(good(face=False, probs=None, facing=None)) == StudentUpdate("ABCDEF", "p-1234", 1.5, False, None)
    assert parse(good(probs=None)).probs is None  # a face present but not readable
    assert parse(good(probs=None)).facing == 1  # ... can still be turned toward the screen
    assert [parse(good(facing=v)).facing for v in (1, 0, -1, None)] == [1, 0, -1, None]
    assert parse('{"type":"pause"}') == Control("pause")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (good(image="iVBORw0KGgo="), "exactly the keys"),  # no room for pixels, even base64
        (good(box=[1, 2, 3, 4]), "exactly the keys"),
        (good(probs=[*HAPPY, 0.0]), "7 numbers"),
        (good(probs=[0.5] * 7), "sum to 1"),
        (good(probs=["0.9", *HAPPY[1:]]), "finite number"),
        (good(face=False, facing=None), "need a face"),
        (good(face=False, probs=None), "facing needs a face"),
        (good(facing=2), "1, 0, -1 or null"),
        (good(facing=True), "1, 0, -1 or null"),
        (good(facing=0.5), "1, 0, -1 or null"),
        (good(facing=[12.5, -3.0, 1.0]), "1, 0, -1 or null"),  # no pose angles, let alone landmarks
        (good(facing="toward"), "1, 0, -1 or null"),
        (good(facing="x")[:-1] + ', "facing": 1}', "given twice"),  # one key, one value: no smuggled second
        (good(face=1), "true or false"),
        (good(t=float("nan")), "finite number"),
        (good().replace('"t": 1.5', '"t": ' + "9" * 320), "finite number"),  # too big for a float
        (good().replace("0.9", "9" * 320), "finite number"),
        (good(pseudonym="x" * 40), "short strings"),
        ('{"type":"leave","why":"bye"}', "no other keys"),
        ('{"type":"frame"}', "unknown message type"),
        ("[1,2]", "JSON object"),
        ("not json", "not JSON"),
        ("x" * (MAX_MESSAGE_BYTES + 1), "longer than"),
    ],
)
def test_anything_else_is_refused(text: str, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        parse(text)


def test_binary_messages_are_refused() -> None:
    with pytest.raises(ProtocolError, match="binary"):
        parse(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes())


# --- a class's numbers ------------------------------------------------------------------------------
def update(
    room: Room,
    pseudonym: str,
    probs: list[float] | None,
    face: bool = True,
    now: float = 100.0,
    facing: int | None = None,
) -> None:
    message = StudentUpdate(room.code, pseudonym, now, face, None if probs is None else tuple(probs), facing)
    room.apply(pseudonym, message, now=now)


def test_the_class_share_facing_the_screen_comes_from_the_pages_decisions_under_k() -> None:
    """Each page sends toward (1), away (0), looking down (-1) or unclear (null); read or not, it counts."""
    room = Room(k=3, readout=Readout())
    students = [room.join() for _ in range(5)]
    t0 = room.created
    for s in range(6):
        now = t0 + s + 0.5
        for who, facing in zip(students, (1, 1, 0, -1, None), strict=True):
            update(room, who, None if who == students[1] else HAPPY, now=now, facing=facing)
        room.tick(now=now)
    view = room.now_view(now=t0 + 5.6)
    assert view["facing_share"] == pytest.approx(0.5) and view["looking_down_share"] == pytest.approx(0.25)
    (first,) = [b for b in room.bins() if b.start_s == 0]
    assert first.facing_share == pytest.approx(0.5) and first.faces_oriented == pytest.approx(4)
    room.set_k(5)  # four clear faces of five: the facing shares would describe four people
    view = room.now_view(now=t0 + 5.6)
    assert view["facing_share"] is None and view["looking_down_share"] is None
    assert all(b.facing_share is None for b in room.bins())
    _, summary = room.end()
    assert summary["class"]["facing_share"] is None

    off = Room(k=1, readout=Readout(), facing=False)  # classmood app --no-facing: a page's number is not taken
    who = off.join()
    update(off, who, HAPPY, now=off.created + 0.5, facing=1)  # a page that sends one anyway
    off.tick(now=off.created + 0.5)
    assert off.now_view(now=off.created + 0.6)["facing_share"] is None and off.now_view()["shares"] is not None


def test_class_numbers_need_k_students_with_a_face_and_counts_always_show() -> None:
    room = Room(k=3, readout=Readout())
    a, b, c = room.join(), room.join(), room.join()
    update(room, a, HAPPY)
    update(room, b, HAPPY)
    update(room, c, None, face=False)
    view = room.now_view(now=100.5)
    assert (view["students"], view["faces"], view["hidden"]) == (3, 2, True)
    assert view["shares"] is None and view["valence"] is None
    update(room, c, SAD)
    view = room.now_view(now=100.5)
    assert not view["hidden"] and view["faces"] == 3
    assert view["shares"]["happy"] == pytest.approx(2 / 3) and view["shares"]["sad"] == pytest.approx(1 / 3)
    assert "p-" not in json.dumps(view)  # nothing per student: no pseudonym reaches the teacher's view
    room.set_k(4)
    assert room.now_view(now=100.5)["hidden"]
    assert room.set_k(1) == 3  # students joined under k = 3: it can be raised, never lowered below


def test_a_recorded_class_saves_bins_as_it_goes_and_closes_finished(tmp_path: Path) -> None:
    from classmood.store import open_store
    from classmood.store.recorder import SessionRecorder

    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    recorder = SessionRecorder(store, "students", "student-side class T", {"min_faces": 1}).open()
    room = Room(k=1, readout=Readout(), recorder=recorder)
    a = room.join()
    t0 = room.created
    for s in range(11):
        update(room, a, HAPPY, now=t0 + s + 0.5)
        room.tick(now=t0 + s + 0.5)
    assert len(store.bins(recorder.session_id)) == 2  # two 5-s bins closed and already saved
    assert store.list_sessions()["status"].tolist() == ["running"]
    raw, _ = room.end()
    sessions = store.list_sessions()
    assert sessions["status"].tolist() == ["finished"] and len(store.bins(recorder.session_id)) == len(raw) == 3
    assert store.session(recorder.session_id)["summary"]["tracks"] == 1
    assert (sessions["faces"][0], sessions["tracks"][0]) == (11, 1)  # from the summary: no per-face rows kept
    store.close()


def test_an_abandoned_class_is_idle_only_without_students_and_viewers() -> None:
    from classmood.classroom.room import IDLE_CLOSE_S

    room = Room(k=1, readout=Readout())
    a = room.join()
    later = time.time() + IDLE_CLOSE_S + 1
    assert not room.idle(later)  # a student is still connected
    room.leave(a)
    assert room.idle(later) and not room.idle()


def test_pause_leave_and_silence_remove_a_student_from_the_numbers() -> None:
    room = Room(k=1, readout=Readout())
    a, b = room.join(), room.join()
    update(room, a, HAPPY)
    update(room, b, SAD)
    room.apply(a, Control("pause"), now=100.2)
    view = room.now_view(now=100.5)
    assert (view["faces"], view["paused"], view["shares"]["sad"]) == (1, 1, 1.0)
    room.apply(a, Control("resume"), now=100.3)
    update(room, a, HAPPY, now=101.0)
    assert room.now_view(now=101.0)["faces"] == 2
    room.leave(b)
    view = room.now_view(now=101.0)
    assert (view["students"], view["faces"]) == (1, 1)
    assert room.now_view(now=101.0 + STALE_S + 0.1)["faces"] == 0  # a silent browser stops counting


def test_updates_from_unknown_or_other_students_are_refused() -> None:
    room = Room(k=1, readout=Readout())
    a = room.join()
    room.apply("p-nobody", StudentUpdate(room.code, "p-nobody", 1.0, True, tuple(HAPPY)))
    room.apply(a, StudentUpdate(room.code, "p-other", 1.0, True, tuple(HAPPY)))  # a student speaking for another
    room.apply(a, StudentUpdate("OTHER1", a, 1.0, True, tuple(HAPPY)))  # another class's code
    assert room.stats.refused == 3 and room.now_view()["faces"] == 0


def test_unreadable_faces_count_as_present_and_uncertain_and_bins_follow_k() -> None:
    """k counts the faces the numbers come from: two students present, one readable, is one face for k."""
    room = Room(k=1, readout=Readout(min_confidence=0.35))
    a, b = room.join(), room.join()
    t0 = room.created
    for s in range(12):
        now = t0 + s + 0.5
        update(room, a, HAPPY, now=now)
        update(room, b, None if s < 6 else [1 / 7] * 7, now=now)  # not readable, then not confident
        room.tick(now=now)
    view = room.now_view(now=t0 + 11.6)
    assert view["faces"] == 2 and view["faces_read"] == 1 and view["shares"]["happy"] == 1.0
    bins = room.bins()
    assert bins and not bins[0].suppressed and bins[0].uncertain_share == pytest.approx(0.5)
    assert bins[0].faces == 2 and bins[0].faces_read == 1
    room.set_k(2)  # two faces present, but the shares would come from one: hidden
    view = room.now_view(now=t0 + 11.6)
    assert view["hidden"] and view["shares"] is None and view["valence"] is None and view["faces"] == 2
    assert all(b.suppressed and b.shares is None for b in room.bins())
    raw, summary = room.end()
    assert summary["kind"] == "students" and summary["tracks"] == 2 and summary["class"]["shares"] is None
    assert len(raw) >= 2 and room.closed and room.now_view()["students"] == 0


# --- the detector the browser runs --------------------------------------------------------------------
def test_the_browsers_detector_finds_the_servers_boxes_on_real_photos() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    photos = [
        cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR),
        cv2.cvtColor(skimage_data.camera(), cv2.COLOR_GRAY2BGR),
        read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
    ]
    browser, server = YuNetDetector(), LibFaceDetector()
    for photo in photos:
        for scale in (1.0, 0.5):
            frame = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            a, b = browser.detect(frame), server.detect(frame)
            assert len(a) == len(b) == 1
            assert np.abs(a.xyxy - b.xyxy).max() <= 2  # the same network: boxes within 2 px
            assert abs(float(a.score[0] - b.score[0])) < 0.03


# --- onnxruntime-web from the registry ------------------------------------------------------------------
def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_vendoring_checks_the_pinned_integrity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _tarball({name: name.encode() for name in vendor.FILES})
    with pytest.raises(ValueError, match="does not match"):
        vendor.extract(data, tmp_path / "ort")  # not the published tarball
    assert not (tmp_path / "ort").exists()
    monkeypatch.setattr(vendor, "INTEGRITY", "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode())
    vendor.extract(data, tmp_path / "ort")
    assert (
        vendor.installed(tmp_path / "ort")
        and (tmp_path / "ort" / "ort.wasm.min.mjs").read_bytes() == b"ort.wasm.min.mjs"
    )
    assert "MIT" in (tmp_path / "ort" / "NOTICE").read_text()


# --- the hub's sockets ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hub() -> Iterator[object]:
    if not vendor.installed():
        pytest.skip("onnxruntime-web is not installed (make installs it: python -m classmood.classroom.vendor)")
    from classmood.classroom.hub import Hub

    h = Hub(port=0).start()
    yield h
    h.stop()


def _ws(hub: object, path: str) -> str:
    return f"ws://127.0.0.1:{hub.port}{path}"  # type: ignore[attr-defined]


def test_hub_sockets_carry_numbers_to_the_teacher_and_refuse_the_rest(hub: object) -> None:
    from websockets.sync.client import connect

    room = hub.open_room(1)  # type: ignore[attr-defined]
    with connect(_ws(hub, "/ws/student?class=NOPE00")) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "error"
    with connect(_ws(hub, f"/ws/teacher/{room.code}?token=wrong")) as ws, pytest.raises(Exception):  # noqa: B017
        ws.recv(timeout=5)  # closed with 4403, no state
    with (
        connect(_ws(hub, f"/ws/teacher/{room.code}?token={room.teacher_token}")) as teacher,
        connect(_ws(hub, f"/ws/student?class={room.code}")) as student,
    ):
        welcome = json.loads(student.recv(timeout=5))
        assert welcome["type"] == "welcome" and welcome["pseudonym"].startswith("p-")
        t = time.time()
        student.send(update_message(room.code, welcome["pseudonym"], t, True, HAPPY))
        student.send(good(image="AAAA"))
        assert json.loads(student.recv(timeout=5))["type"] == "refused"
        student.send(b"\x89PNG binary")
        assert json.loads(student.recv(timeout=5))["type"] == "refused"
        deadline, seen = time.time() + 10, None
        while time.time() < deadline:
            state = json.loads(teacher.recv(timeout=5))
            if t in state["applied_t"]:
                seen = state
                break
        assert seen is not None and seen["faces"] == 1 and seen["shares"]["happy"] == 1.0
        assert "p-" not in json.dumps(seen)
        assert room.stats.refused == 2
        student.send('{"type":"leave"}')
        deadline = time.time() + 10
        while room.now_view()["students"] and time.time() < deadline:
            time.sleep(0.05)
        assert room.now_view()["students"] == 0
    hub.close_room(room.code)  # type: ignore[attr-defined]


def test_hub_pages_allow_nothing_from_other_origins(hub: object) -> None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/join/ABCDEF", timeout=10) as r:  # type: ignore[attr-defined]
        csp = r.headers["Content-Security-Policy"]
        page = r.read().decode()
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "https:" not in csp
    assert "http" not in page.replace("http-equiv", "")  # no outside script, font or style
    with urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/config.json", timeout=10) as r:  # type: ignore[attr-defined]
        config = json.loads(r.read())
    assert config["model"] in ("accurate", "fast") and config["crop_scale"] == pytest.approx(1.01)


# --- bad settings: one line, exit 2 -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["app", "--class-port", "0"], "--class-port"),
        (["app", "--port", "8600", "--class-port", "8600"], "other than --port"),
        (["app", "--public-url", "class.example.edu"], "full address"),
        (["bench", "--students", "0"], "at least 1 student"),
        (["bench", "--students", "5", "--browsers", "-1"], "--browsers"),
    ],
    ids=["class port zero", "class port = app port", "public url without scheme", "no students", "negative browsers"],
)
def test_bad_student_side_settings_get_one_line(
    capsys: pytest.CaptureFixture, args: list[str], fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from classmood.cli import main

    monkeypatch.delenv("CLASSMOOD_PASSWORD_HASH", raising=False)
    monkeypatch.delenv("CLASSMOOD_PASSWORD", raising=False)
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err, err


def test_a_busy_port_or_a_model_browsers_cannot_run_is_refused() -> None:
    import socket

    from classmood.classroom.hub import Hub
    from classmood.errors import ClassmoodError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ClassmoodError, match="cannot listen"):
            Hub(port=busy.getsockname()[1]).start()
    with pytest.raises(ClassmoodError, match="accurate, fast"):
        Hub(model="ensemble")


def test_a_flooding_client_is_refused_then_disconnected(hub: object) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from classmood.classroom.hub import MAX_REFUSED

    room = hub.open_room(1)  # type: ignore[attr-defined]
    with connect(_ws(hub, f"/ws/student?class={room.code}")) as ws:
        pseudonym = json.loads(ws.recv(timeout=5))["pseudonym"]
        message = update_message(room.code, pseudonym, 1.0, True, HAPPY)
        replies = []
        with pytest.raises(ConnectionClosed):
            try:
                for _ in range(MAX_REFUSED + 20):
                    ws.send(message)
            except ConnectionClosed:
                pass  # the hub may hang up while we are still sending: its replies wait in our buffer
            while True:
                replies.append(json.loads(ws.recv(timeout=5)))
    assert replies and all(r["type"] == "refused" and "a second" in r["reason"] for r in replies)
    assert room.stats.updates <= 10 and room.stats.refused >= MAX_REFUSED
    hub.close_room(room.code)  # type: ignore[attr-defined]


def test_join_links_name_an_address_students_can_open() -> None:
    from classmood.classroom.hub import Hub

    local = Hub(host="127.0.0.1", port=8502)
    assert local.join_url("ABCDEF") == "http://localhost:8502/join/ABCDEF"
    assert not local.camera_needs_https("ABCDEF")
    every = Hub(host="0.0.0.0", port=8502)
    assert "0.0.0.0" not in every.join_url("ABCDEF") and every.camera_needs_https("ABCDEF")
    proxied = Hub(host="0.0.0.0", port=8502, public_url="https://class.example.edu/class/")
    assert proxied.join_url("ABCDEF") == "https://class.example.edu/class/join/ABCDEF"
    assert not proxied.camera_needs_https("ABCDEF")


def test_a_class_whose_database_fails_is_not_said_to_be_saved() -> None:
    from classmood.store.recorder import SessionRecorder

    class Broken:
        def start_session(self, **_: object) -> int:
            raise OSError("disk full")

    recorder = SessionRecorder(Broken(), "students", "student-side class T", {}).open()  # type: ignore[arg-type]
    room = Room(k=3, readout=Readout(), recorder=recorder)
    assert recorder.error and "disk full" in recorder.error and not room.saving
    assert Room(k=3, readout=Readout()).saving is False
