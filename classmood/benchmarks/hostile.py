"""A hostile client against the student hub, on loopback only: what it tried and what held.

``classmood bench --hostile --json`` runs it against a fresh hub process (started with the open-file
limit many distributions give, 1,024, so the hub has to raise its own); ``tests/test_hostile.py``
runs the same attacks with assertions. Every attack is bounded (connections, attempts, seconds) and
talks to 127.0.0.0/8 only: a Linux loopback answers on every 127.x address, which lets one machine
play many clients (``SOURCES``) and the health check its own (``HEALTH_SOURCE``).

- ``slow_connections``: N connections that send half a request and never finish it, spread over
  many addresses or from one; the hub must keep answering a health check within 1 s, count them,
  and close them after its request timeout.
- ``junk``: invalid HTTP (a TLS hello, garbage) on many connections; one log line per kind at most.
- ``guess_codes``: well-formed wrong class codes on ``/config.json`` as fast as one address can.
- ``host_origin``: requests and WebSockets with a foreign Host or Origin.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

HEALTH_SOURCE = "127.0.0.2"
SOURCES = tuple(f"127.0.1.{i}" for i in range(1, 41))  # up to 40 hostile "clients"
PARTIAL = b"GET /join/ HTTP/1.1\r\nHost: localhost\r\nX-Slow: "  # a request that never ends


@dataclass
class HubProcess:
    proc: subprocess.Popen[str]
    info: dict[str, Any]
    port: int
    stderr: list[str] = field(default_factory=list)


def _low_fd_limit() -> None:  # pragma: no cover - runs in the child before exec
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


@contextlib.contextmanager
def hub_process(*args: str, low_fd_limit: bool = True) -> Iterator[HubProcess]:
    """``python -m classmood.classroom.hub --port 0 ARGS`` on loopback; its stderr is collected on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "classmood.classroom.hub", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_low_fd_limit if low_fd_limit else None,
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise RuntimeError(f"the hub did not start: {proc.stderr.read()[-2000:]}")
    info = json.loads(line)
    hub = HubProcess(proc, info, int(info["url"].rsplit(":", 1)[1]))
    try:
        health(hub.port, timeout=15.0)  # listening and answering
        yield hub
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=5)
        hub.stderr[:] = err.splitlines()


def raise_own_fd_limit(need: int) -> bool:
    """Make room for ``need`` sockets in this process; False if the hard limit does not allow it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need + 256
    if soft >= want:
        return True
    if hard != resource.RLIM_INFINITY and hard < want:
        return False
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return True


def request(
    port: int, path: str, source: str = HEALTH_SOURCE, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One GET from ``source`` (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", path, headers={"Host": "localhost", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def health(port: int, source: str = HEALTH_SOURCE, timeout: float = 2.0) -> dict[str, Any]:
    """``/health`` with its round trip in ``seconds``; retries until ``timeout`` while the hub starts."""
    deadline = time.monotonic() + timeout
    while True:
        start = time.monotonic()
        try:
            status, _, body = request(port, "/health", source, timeout=max(0.1, deadline - start))
            if status == 200:
                return {**json.loads(body), "seconds": time.monotonic() - start}
        except OSError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError("no health answer")
        time.sleep(0.1)


def slow_connections(port: int, n: int, sources: Sequence[str]) -> list[socket.socket]:
    """``n`` connections, round-robin over ``sources``, each sending half a request; the caller closes them."""
    socks: list[socket.socket] = []
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.bind((sources[i % len(sources)], 0))
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    time.sleep(0.3)
    for s in socks:
        with contextlib.suppress(OSError):
            s.send(PARTIAL)
    return socks


def closed_by_peer(socks: Sequence[socket.socket]) -> int:
    """How many of ``socks`` (non-blocking) the hub has answered or closed (data, EOF or reset)."""
    closed = 0
    for s in socks:
        try:
            s.recv(1, socket.MSG_PEEK)
            closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def close_all(socks: Sequence[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


def watch_health(port: int, seconds: float, every: float = 0.25) -> dict[str, Any]:
    """Health checks for ``seconds``: the slowest round trip, failures, the largest connection count seen."""
    worst, failures, most, checks = 0.0, 0, 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        checks += 1
        try:
            h = health(port, timeout=1.0)
            worst, most = max(worst, h["seconds"]), max(most, int(h["connections"] or 0))
        except OSError:
            failures += 1
        time.sleep(every)
    return {"checks": checks, "slowest_s": round(worst, 4), "failures": failures, "most_connections": most}


def junk(port: int, n: int, sources: Sequence[str], wait_s: float) -> int:
    """``n`` connections at once sending what is not HTTP (some without a line end, which a parser waits
    on); returns how many the hub answered or closed within ``wait_s``."""
    payloads = (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
        b"NOT HTTP AT ALL\r\n\r\n",
        b"\xff" * 300,
    )
    socks = slow_connections(port, 0, sources)
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(sources[i % len(sources)], 0))
        s.sendall(payloads[i % len(payloads)])
        s.setblocking(False)
        socks.append(s)
    deadline = time.monotonic() + wait_s
    while closed_by_peer(socks) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    done = closed_by_peer(socks)
    close_all(socks)
    return done


def guess_codes(port: int, attempts: int, source: str, right: str | None = None) -> dict[str, Any]:
    """Wrong, well-formed codes from one address over one kept-alive connection, as fast as it answers."""
    from classmood.classroom.room import new_code

    answered, refused, retry_after = 0, 0, []
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        for _ in range(attempts):
            code = new_code()
            while code == right:
                code = new_code()
            conn.request("GET", f"/config.json?class={code}", headers={"Host": "localhost"})
            response = conn.getresponse()
            response.read()
            if response.status == 429:
                refused += 1
                retry_after.append(int(response.getheader("Retry-After", "0")))
            else:
                answered += 1
    finally:
        conn.close()
    elapsed = time.monotonic() - start
    return {
        "attempts": attempts,
        "answered": answered,
        "refused_429": refused,
        "seconds": round(elapsed, 3),
        "attempts_per_s": round(attempts / elapsed, 1),
        "answered_per_s": round(answered / elapsed, 2),
        "retry_after_s": max(retry_after) if retry_after else None,
    }


def host_origin(port: int) -> dict[str, int]:
    """Status codes for a foreign Host, a foreign Origin, and our own of each."""
    return {
        "foreign_host": request(port, "/join/", headers={"Host": "evil.example"})[0],
        "foreign_origin": request(port, "/config.json", headers={"Origin": "http://evil.example"})[0],
        "null_origin": request(port, "/config.json", headers={"Origin": "null"})[0],
        "our_host": request(port, "/join/", headers={"Host": f"localhost:{port}"})[0],
        "our_origin": request(port, "/config.json", headers={"Origin": f"http://localhost:{port}"})[0],
    }


def run_hostile_bench(connections: int = 2000, request_timeout: float = 3.0) -> dict[str, Any]:
    """Every attack above against one fresh hub process; one JSON-able dict of what was tried and seen."""
    if not raise_own_fd_limit(connections + 64):
        raise RuntimeError(f"this process cannot open {connections} sockets (hard RLIMIT_NOFILE too low)")
    out: dict[str, Any] = {"connections": connections, "request_timeout_s": request_timeout, "loopback_only": True}
    with hub_process("--request-timeout", str(request_timeout)) as hub:
        out["hub_open_file_limit_at_start"] = 1024  # raised by the hub itself (netguard.raise_fd_limit)
        out["hub_max_connections"] = hub.info["max_connections"]
        socks = slow_connections(hub.port, connections, SOURCES[:20])
        out["slow_many_addresses"] = watch_health(hub.port, 1.5)
        t0 = time.monotonic()
        while closed_by_peer(socks) < len(socks) and time.monotonic() - t0 < request_timeout + 5:
            time.sleep(0.25)
        out["slow_many_addresses"]["closed_by_hub"] = closed_by_peer(socks)
        out["slow_many_addresses"]["closed_after_s"] = round(time.monotonic() - t0 + 1.5, 2)
        close_all(socks)
        socks = slow_connections(hub.port, connections, SOURCES[:1])
        out["slow_one_address"] = watch_health(hub.port, 1.5)
        out["slow_one_address"]["refused_at_once"] = closed_by_peer(socks)
        close_all(socks)
        out["junk"] = {"sent": 300, "answered_or_closed": junk(hub.port, 300, SOURCES[20:30], request_timeout + 3)}
        out["junk"].update(watch_health(hub.port, 0.5))
        out["guess_codes"] = guess_codes(hub.port, 200, SOURCES[30])
        out["host_origin"] = host_origin(hub.port)
    out["hub_log_lines"] = len(hub.stderr)
    out["hub_log"] = hub.stderr[:20]
    return out
