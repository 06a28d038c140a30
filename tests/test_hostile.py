"""A hostile client against the student hub and the app, on loopback only, every attack bounded.

What one client tries (issue 22) and what must hold:
- fake student sockets to lift the k rule: seats per address (at most k - 2 by default) and per class;
  a spoofed X-Forwarded-For counts only from a configured proxy;
- guessing class codes: 429 with Retry-After after 10 wrong codes per address and 100 over all,
  refusing the right code too while blocked (no oracle);
- a foreign Host (DNS rebinding) or Origin, on the hub and on the Streamlit app, pages and WebSockets;
- 2,000 connections that never finish a request, from 20 addresses and from one, plus junk bytes:
  the hub answers a health check within 1 s throughout, closes them after its request timeout, raises
  its own open-file limit from 1,024 and logs one line per kind;
- wrong passwords at full speed: backoff, then a lockout, answered with a plain message.
Source addresses are 127.0.0.0/8 aliases (Linux loopback answers on all of them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from classmood import netguard
from classmood.benchmarks import hostile
from classmood.classroom import vendor
from classmood.classroom.protocol import update_message
from classmood.classroom.room import JoinRefused, Room, new_code
from classmood.expression.readout import Readout

HAPPY = [0.01, 0.01, 0.01, 0.9, 0.03, 0.02, 0.02]


def _loopback_aliases() -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.1.1", 0))
        return True
    except OSError:
        return False


aliases = pytest.mark.skipif(not _loopback_aliases(), reason="needs 127.x loopback aliases (Linux)")
needs_vendor = pytest.mark.skipif(not vendor.installed(), reason="onnxruntime-web is not installed")


# --- seats: one client cannot fake the k rule ----------------------------------------------------------
def test_one_address_cannot_fill_the_seats_that_reveal_a_lone_student() -> None:
    room = Room(k=5, readout=Readout())
    assert room.seats_per_client() == 3  # k - 2: one address never reaches k - 1
    fakes = [room.join("10.0.0.9") for _ in range(3)]
    with pytest.raises(JoinRefused, match="at most 3 students from one network address"):
        room.join("10.0.0.9")
    real = room.join("10.0.0.7")
    for p in [*fakes, real]:
        room.apply(p, _update(room, p), now=100.0)
    view = room.now_view(now=100.5)
    assert view["faces"] == 4 and view["hidden"] and view["shares"] is None and view["turned_away"] == 1
    assert Room(k=8, readout=Readout()).seats_per_client() == 4  # PER_CLIENT
    assert Room(k=2, readout=Readout()).seats_per_client() == 4  # k <= 2: nothing a second seat would reveal


def test_a_class_has_a_size_and_the_per_client_number_can_be_set() -> None:
    room = Room(k=1, readout=Readout(), max_students=3, per_client=10)
    for _ in range(3):
        room.join("10.0.0.9")  # an explicit per-client number (a class behind one NAT)
    with pytest.raises(JoinRefused, match=r"the class is full \(3 students\)"):
        room.join("10.0.0.8")
    assert room.stats.turned_away == 1
    with pytest.raises(ValueError):
        Room(k=1, readout=Readout(), max_students=0)


def test_forwarded_for_counts_only_from_a_trusted_proxy_and_ipv6_counts_per_64() -> None:
    proxies = netguard.parse_networks(["127.0.0.1", "10.1.0.0/16"])
    assert netguard.client_address("203.0.113.5", "1.2.3.4", proxies) == "203.0.113.5"  # not a proxy: ignored
    assert netguard.client_address("127.0.0.1", "1.2.3.4", proxies) == "1.2.3.4"
    assert netguard.client_address("127.0.0.1", "9.9.9.9, 1.2.3.4, 10.1.2.3", proxies) == "1.2.3.4"
    assert netguard.client_address("127.0.0.1", "junk", proxies) == "127.0.0.1"
    assert netguard.client_address("127.0.0.1", None, proxies) == "127.0.0.1"
    assert netguard.client_key("2001:db8:1:2:aaaa::1") == netguard.client_key("2001:db8:1:2:bbbb::9")
    assert netguard.client_key("2001:db8:1:3::1") != netguard.client_key("2001:db8:1:2::1")
    assert netguard.client_key("::ffff:10.0.0.1") == "10.0.0.1"
    with pytest.raises(ValueError, match="not an IP"):
        netguard.parse_networks(["proxy.example"])


def _update(room: Room, pseudonym: str) -> Any:
    from classmood.classroom.protocol import parse

    return parse(update_message(room.code, pseudonym, 1.0, True, HAPPY))


# --- the hub in this process -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hub() -> Iterator[Any]:
    from classmood.classroom.hub import Hub

    h = Hub(port=0).start()
    yield h
    h.stop()


@pytest.fixture
def fresh_limits(hub: Any) -> None:
    from classmood.classroom.hub import CODE_BURST, CODE_GLOBAL_BURST, CODE_GLOBAL_RATE, CODE_RATE

    hub.guesses = netguard.GuessLimiter(CODE_BURST, CODE_RATE, CODE_GLOBAL_BURST, CODE_GLOBAL_RATE)


def _student(hub: Any, code: str, source: str = "127.0.0.1", **headers: str) -> tuple[Any, dict[str, Any]]:
    """A student socket from ``source`` and its first message (the caller closes the socket)."""
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=5, source_address=(source, 0))
    ws = connect(
        f"ws://localhost:{hub.port}/ws/student?class={code}",
        sock=sock,
        additional_headers=headers or None,
        origin=headers.pop("Origin", None),  # type: ignore[arg-type]
    )
    return ws, json.loads(ws.recv(timeout=5))


@aliases
@needs_vendor
def test_fake_student_sockets_from_one_address_are_refused(hub: Any, fresh_limits: None) -> None:
    room = hub.open_room(5)
    opened = []
    try:
        for _ in range(3):
            ws, first = _student(hub, room.code, "127.0.1.50")
            opened.append((ws, first["pseudonym"]))
        ws, first = _student(hub, room.code, "127.0.1.50")
        ws.close()
        assert first["type"] == "error" and "at most 3 students from one network address" in first["message"]
        ws, first = _student(hub, room.code, "127.0.1.50", **{"X-Forwarded-For": "198.51.100.7"})  # spoofed
        ws.close()
        assert first["type"] == "error", "an X-Forwarded-For from a client that is not a proxy was believed"
        real, welcome = _student(hub, room.code, "127.0.1.51")
        opened.append((real, welcome["pseudonym"]))
        for ws, pseudonym in opened:
            ws.send(update_message(room.code, pseudonym, time.time(), True, HAPPY))
        deadline = time.monotonic() + 10
        while room.now_view()["faces"] < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        view = room.now_view()
        assert view["faces"] == 4 and view["hidden"], "three fakes and one real student lifted k = 5"
        assert view["turned_away"] == 2
    finally:
        for ws, _ in opened:
            ws.close()
        hub.close_room(room.code)


@aliases
@needs_vendor
def test_behind_a_trusted_proxy_each_forwarded_address_counts() -> None:
    from classmood.classroom.hub import Hub

    proxied = Hub(port=0, trusted_proxies=["127.0.1.60"], max_students=4).start()
    try:
        room = proxied.open_room(3)  # one seat per address
        a, first = _student(proxied, room.code, "127.0.1.60", **{"X-Forwarded-For": "198.51.100.1"})
        b, second = _student(proxied, room.code, "127.0.1.60", **{"X-Forwarded-For": "198.51.100.2"})
        c, third = _student(proxied, room.code, "127.0.1.60", **{"X-Forwarded-For": "198.51.100.1"})
        assert first["type"] == second["type"] == "welcome" and third["type"] == "error"
        extra = [
            _student(proxied, room.code, "127.0.1.60", **{"X-Forwarded-For": f"198.51.100.{i}"}) for i in (3, 4, 5)
        ]
        assert [e[1]["type"] for e in extra] == ["welcome", "welcome", "error"]
        assert "full (4 students)" in extra[2][1]["message"]
        for ws in (a, b, c, *(e[0] for e in extra)):
            ws.close()
    finally:
        proxied.stop()


# --- guessing class codes ------------------------------------------------------------------------------
def test_the_guess_limiter_refuses_right_and_wrong_alike_per_client_and_over_all() -> None:
    now = [0.0]
    limiter = netguard.GuessLimiter(burst=10, rate=0.2, global_burst=25, global_rate=0.01, clock=lambda: now[0])
    for _ in range(10):
        assert limiter.retry_after("a") == 0
        limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(5.0)  # one guess per 5 s from now on
    now[0] += 5.0
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    for _ in range(10):
        limiter.failed("b")
    limiter.failed("c")
    limiter.failed("c")  # 23 wrong over all, plus 1 refilled: 2 tokens left
    limiter.failed("d")
    limiter.failed("d")
    limiter.failed("d")  # the shared bucket is empty
    assert limiter.retry_after("c") > 0, "a client with 8 guesses left is still stopped by the shared bucket"
    assert limiter.retry_after("fresh") == 0, "a client with no wrong guess is not punished for the others"
    now[0] += 60.0  # c's own bucket is full again, but it guessed wrong recently: one guess per 15 min
    assert limiter.retry_after("c") > 0
    now[0] += 1000.0
    assert limiter.retry_after("c") == 0 and limiter.retry_after("a") == 0


@aliases
def test_wrong_codes_get_429_then_even_the_right_code(hub: Any, fresh_limits: None) -> None:
    room = hub.open_room(1) if vendor.installed() else None
    right = room.code if room is not None else new_code()
    try:
        seen = hostile.guess_codes(hub.port, 40, "127.0.1.70", right=right)
        assert seen["answered"] <= 11 and seen["refused_429"] >= 29, seen
        assert seen["retry_after_s"] and 1 <= seen["retry_after_s"] <= 5
        status, headers, body = hostile.request(hub.port, f"/config.json?class={right}", "127.0.1.70")
        assert status == 429 and int(headers["retry-after"]) >= 1 and "too many wrong class codes" in body.decode()
        ws, first = _student(hub, right, "127.0.1.70")
        ws.close()
        assert first["type"] == "error" and "try again in" in first["message"]
        if room is not None:  # another address is not blocked
            status, _, body = hostile.request(hub.port, f"/config.json?class={right}", "127.0.1.71")
            assert status == 200 and json.loads(body)["open"] is True
        status, _, body = hostile.request(hub.port, "/config.json?class=ABC", "127.0.1.72")  # cannot be a code
        assert status == 200 and json.loads(body)["open"] is False
    finally:
        if room is not None:
            hub.close_room(room.code)


@aliases
def test_many_addresses_together_are_stopped_by_the_shared_bucket(hub: Any) -> None:
    from classmood.classroom.hub import CODE_BURST, CODE_GLOBAL_BURST, CODE_RATE

    hub.guesses = netguard.GuessLimiter(CODE_BURST, CODE_RATE, CODE_GLOBAL_BURST, 0.01)  # no refill while it runs
    for i in range(10):  # 10 addresses x 10 wrong codes: the 100 allowed over all clients
        assert hostile.guess_codes(hub.port, 10, f"127.0.2.{i + 1}")["answered"] == 10
    late = hostile.guess_codes(hub.port, 5, "127.0.2.50")
    assert late["answered"] == 1 and late["refused_429"] == 4, late  # its first guess, then the shared limit


# --- foreign Host and Origin on the hub ----------------------------------------------------------------
@aliases
def test_the_hub_refuses_a_foreign_host_or_origin(hub: Any) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    seen = hostile.host_origin(hub.port)
    assert seen == {"foreign_host": 403, "foreign_origin": 403, "null_origin": 403, "our_host": 200, "our_origin": 200}
    status, headers, _ = hostile.request(hub.port, "/join/ABCDEF")
    assert (
        status == 200
        and headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in headers["content-security-policy"]
    )
    for host, origin in (("evil.example", None), ("localhost", "http://evil.example")):
        sock = socket.create_connection(("127.0.0.1", hub.port), timeout=5)
        with pytest.raises(InvalidStatus, match="403"):
            connect(f"ws://{host}:{hub.port}/ws/student?class=ABCDEF", sock=sock, origin=origin)  # type: ignore[arg-type]
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=5)
    with connect(
        f"ws://localhost:{hub.port}/ws/student?class=ABC", sock=sock, origin=f"http://localhost:{hub.port}"
    ) as ws:  # type: ignore[arg-type]
        assert json.loads(ws.recv(timeout=5))["type"] == "error"  # our own origin reaches the class check


def test_names_accept_ours_and_ip_literals_and_refuse_other_names() -> None:
    names = netguard.Names(["class.example.edu"], ["https://proxy.example.org/class"])
    for host in ("localhost:8502", "127.0.0.1", "[::1]:8502", "10.1.2.3:80", "class.example.edu", "PROXY.example.org."):
        assert names.host_allowed(host), host
    for host in ("evil.example", "localhost.evil.example", "user@localhost", "localhost:notaport", ""):
        assert not names.host_allowed(host), host
    assert names.origin_allowed(None, "localhost") and names.origin_allowed("http://localhost:9", "localhost:8502")
    assert names.origin_allowed("https://proxy.example.org", "127.0.0.1:8502")  # the proxy rewrote Host
    assert names.origin_allowed("http://10.1.2.3:8502", "10.1.2.3:8502")  # same host
    assert not names.origin_allowed("http://10.9.9.9", "10.1.2.3:8502")  # a page on another address
    assert not names.origin_allowed("null", "localhost") and not names.origin_allowed("file://", "localhost")


# --- connections that never finish ---------------------------------------------------------------------
@aliases
def test_the_hub_answers_within_a_second_under_2000_connections_that_never_finish() -> None:
    if not hostile.raise_own_fd_limit(2100):
        pytest.skip("this process may not open 2,000 sockets")
    timeout = 3.0
    with hostile.hub_process("--request-timeout", str(timeout)) as hub:  # started at the usual 1,024 files
        socks = hostile.slow_connections(hub.port, 2000, hostile.SOURCES[:20])
        try:
            seen = hostile.watch_health(hub.port, 1.5)
            assert seen["failures"] == 0 and seen["slowest_s"] < 1.0, seen
            assert seen["most_connections"] >= 2000, "the 2,000 connections were not all open at once"
            deadline = time.monotonic() + timeout + 5
            while hostile.closed_by_peer(socks) < len(socks) and time.monotonic() < deadline:
                time.sleep(0.25)
            assert hostile.closed_by_peer(socks) == len(socks), "connections that never finish stay open"
        finally:
            hostile.close_all(socks)
        socks = hostile.slow_connections(hub.port, 2000, hostile.SOURCES[:1])  # one address
        try:
            seen = hostile.watch_health(hub.port, 1.0)
            assert seen["failures"] == 0 and seen["slowest_s"] < 1.0, seen
            assert seen["most_connections"] <= 256 + 2, "one address held more than its connections"
        finally:
            hostile.close_all(socks)
        assert hostile.junk(hub.port, 150, hostile.SOURCES[20:25], timeout + 3) == 150
        assert hostile.health(hub.port)["seconds"] < 1.0
    assert 0 < len(hub.stderr) <= 10, hub.stderr  # one line per kind, not a traceback per connection
    assert not any("Traceback" in line for line in hub.stderr), hub.stderr


@aliases
def test_a_hub_in_this_process_leaves_the_app_its_descriptors(hub: Any) -> None:
    """The app and its hub share one process: the hub holds at most its connection cap, however many come."""
    from classmood.classroom.hub import Hub

    if not hostile.raise_own_fd_limit(700):
        pytest.skip("this process may not open 700 sockets")
    small = Hub(port=0, max_connections=100, request_timeout_s=30.0).start()
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = fds()
    socks = hostile.slow_connections(small.port, 600, hostile.SOURCES[:10])
    try:
        time.sleep(0.5)
        held_by_hub = fds() - before - len(socks)
        assert held_by_hub <= 100 + 4, held_by_hub
        assert hostile.health(small.port)["seconds"] < 1.0  # the oldest waiting connection made room
    finally:
        hostile.close_all(socks)
        small.stop()


def test_an_error_repeated_ten_thousand_times_is_logged_once() -> None:
    now = [0.0]
    logger = logging.getLogger("classmood.test.hostile")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.addFilter(netguard.OncePerKind(60.0, clock=lambda: now[0]))
    logger.propagate = False
    for i in range(10_000):
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logger.exception("accept failed on connection %d", i)
    now[0] += 61
    try:
        raise OSError(24, "Too many open files")
    except OSError:
        logger.exception("accept failed on connection %d", -1)
    assert len(records) == 2
    assert records[0].exc_info is not None  # the first keeps its traceback
    assert records[1].exc_info is None and "9999 more like this" in records[1].getMessage()


# --- the Streamlit app ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    pytest.importorskip("streamlit", reason="needs the app extra")
    tmp = tmp_path_factory.mktemp("hostile_app")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CLASSMOOD_PASSWORD", "CLASSMOOD_PASSWORD_HASH")}
    env["HOME"] = str(tmp)
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    cmd = ["app", "--port", str(port), "--db", str(tmp / "s.db"), "--allowed-host", "class.example.edu"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "classmood.cli", *cmd],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r,
            ):
                if r.read() == b"ok":
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start: {(tmp / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def _app_socket(port: int, host: str, origin: str | None) -> str:
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        with connect(f"ws://{host}/_stcore/stream", sock=sock, origin=origin, subprotocols=["streamlit"]):  # type: ignore[arg-type, list-item]
            return "open"
    except Exception as exc:  # the refusal is the answer
        return str(exc)


def test_the_app_refuses_dns_rebinding_and_foreign_origins(app: int) -> None:
    ours = f"127.0.0.1:{app}"
    assert _app_socket(app, ours, f"http://{ours}") == "open"
    assert "403" in _app_socket(app, f"evil.example:{app}", f"http://evil.example:{app}")  # rebinding
    assert "403" in _app_socket(app, ours, "http://evil.example")  # a foreign page
    assert _app_socket(app, f"class.example.edu:{app}", f"https://class.example.edu:{app}") == "open"  # --allowed-host
    assert hostile.request(app, "/", "127.0.0.1", headers={"Host": f"evil.example:{app}"})[0] == 403
    assert hostile.request(app, "/_stcore/health", "127.0.0.1", headers={"Host": ours})[0] == 200


def test_app_pages_carry_a_content_security_policy_and_no_framing(app: int) -> None:
    status, headers, body = hostile.request(app, "/", "127.0.0.1", headers={"Host": f"localhost:{app}"})
    csp = headers["content-security-policy"]
    assert (
        status == 200 and headers["x-frame-options"] == "SAMEORIGIN" and headers["x-content-type-options"] == "nosniff"
    )
    assert "frame-ancestors 'self'" in csp and "default-src 'self'" in csp and "object-src 'none'" in csp
    script = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "unsafe-inline" not in script and "unsafe-eval" not in script and "http" not in csp
    from classmood.app.asgi import inline_script_hashes

    assert all(h in script for h in inline_script_hashes(body.decode()))  # Streamlit's own inline script runs


# --- wrong passwords -----------------------------------------------------------------------------------
def test_wrong_passwords_back_off_then_lock_and_a_try_while_waiting_is_not_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from classmood.app import auth

    now = [0.0]
    backoff = netguard.Backoff(free=3, max_delay_s=60, lockout_after=10, lockout_s=900, clock=lambda: now[0])
    stored = auth.hash_password("s3cret")
    checked = []
    verify = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda p, s: checked.append(p) or verify(p, s))
    delays, messages = [], []
    for i in range(10):  # ten wrong passwords in a row, each as soon as it is allowed
        ok, message = auth.sign_in("wrong", stored, "10.0.0.5", backoff)
        assert not ok
        messages.append(message)
        delays.append(backoff.wait_s("10.0.0.5"))
        if i == 3:  # while waiting, even the right password is refused unchecked, and the wait stands
            assert auth.sign_in("s3cret", stored, "10.0.0.5", backoff) == (
                False,
                "Too many wrong passwords: try again in 2 s.",
            )
            assert checked[-1] == "wrong" and backoff.wait_s("10.0.0.5") == delays[-1]
        now[0] += delays[-1]
    assert delays == [0, 0, 1, 2, 4, 8, 16, 32, 60, 900]
    assert messages[0] == "Wrong password." and messages[2] == "Wrong password. Try again in 1 s."
    assert "in a row, sign-in from this address is locked for 15 min" in messages[-1]
    assert len(checked) == 10
    assert auth.sign_in("s3cret", stored, "10.0.0.5", backoff)[0] and backoff.wait_s("10.0.0.5") == 0
    assert auth.client_of(None, "1.2.3.4", {auth.TRUSTED_PROXIES_ENV: "127.0.0.1"}) == "1.2.3.4"
    assert auth.client_of("198.51.100.9", "1.2.3.4", {}) == "198.51.100.9"  # not from a proxy: ignored


def test_the_sign_in_page_makes_a_guesser_wait_even_for_the_right_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("streamlit", reason="needs the app extra")
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    from classmood.app import auth

    monkeypatch.setenv("CLASSMOOD_DB", str(tmp_path / "app.db"))
    monkeypatch.setenv(auth.HASH_ENV, auth.hash_password("s3cret"))
    monkeypatch.setattr(auth, "BACKOFF", netguard.Backoff())
    previous = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    try:
        at = AppTest.from_file(str(Path(auth.__file__).parent / "main.py"), default_timeout=30).run()
        for _ in range(3):  # the third wrong one in a row starts the backoff
            at.text_input[0].input("wrong")
            at.button[0].click().run()
        errors = [str(e.value) for e in at.error]
        assert errors == ["Wrong password. Try again in 1 s."], errors
        at.text_input[0].input("s3cret")
        at.button[0].click().run()
        assert [str(e.value) for e in at.error] == ["Too many wrong passwords: try again in 1 s."]
        time.sleep(1.1)
        at.text_input[0].input("s3cret")
        at.button[0].click().run()
        assert not at.error and not [t for t in at.text_input if t.label == "Password"]  # signed in
    finally:
        config.set_option("server.address", previous)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--class-size", "0"], "--class-size 0"),
        (["--per-client", "-1"], "--per-client -1"),
        (["--trusted-proxy", "proxy.example"], "--trusted-proxy"),
        (["--allowed-host", "a,b"], "--allowed-host"),
    ],
)
def test_bad_network_limits_get_one_line(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, args: list[str], fragment: str
) -> None:
    from classmood.app import server
    from classmood.cli import main

    monkeypatch.setattr(server.os, "execve", lambda *a: pytest.fail("the server must not start"))
    code = main(["app", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err, err
