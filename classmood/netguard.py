"""Limits one client cannot get around, for the two servers classmood runs (the app and the student hub).

Each rule lives here once and both servers use it:

- ``client_address`` / ``client_key``: who a client is. The peer's address, or - only when the peer is
  a configured reverse proxy - the last address in ``X-Forwarded-For`` that is not a proxy; an IPv6
  host counts as its /64 (one machine is handed a whole /64, so per-address caps would mean nothing).
- ``Names`` and ``SiteGuard``: a request whose ``Host`` is not one of this server's names (DNS
  rebinding: a foreign site whose name resolves to 127.0.0.1) or whose ``Origin`` is another site is
  refused with 403 before it reaches the application; every response gets the security headers given.
- ``GuessLimiter``: wrong guesses of a secret (class codes) as token buckets per client and over all
  clients; an exhausted client is refused *every* attempt, right or wrong, so a refusal says nothing.
- ``Backoff``: wrong passwords per client, exponential delays then a lockout.
- ``ConnectionGate`` and ``guarded``: at accept time, at most N connections per client and M in all
  (the oldest connection still waiting for its request makes room for a new one), and every request
  must be answered within a deadline (uvicorn has no header-read timeout: a connection that never
  finishes its request would otherwise stay open for ever).
- ``raise_fd_limit`` and ``OncePerKind``: the soft descriptor limit raised to the hard one at start,
  and at most one log line per kind of error a minute (an attack must not write 64 MB of tracebacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("classmood.net")


# --- who a client is ----------------------------------------------------------------------------------
def _ip(text: str | None) -> Address | None:
    if not text or not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``--trusted-proxy`` values (addresses or CIDR networks); ValueError names a bad one."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return tuple(out)


def _trusted(ip: Address, proxies: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[Network] = ()) -> str:
    """The client's address: the peer's, unless the peer is one of ``proxies``.

    Only a configured proxy's ``X-Forwarded-For`` is read (anyone else could write any address in
    it), from the right: each hop a trusted proxy appended, up to the first address no proxy of ours
    vouches for. A header that does not parse stops the walk at the last proxy.
    """
    ip = _ip(peer)
    if ip is None:
        return peer or "unknown"
    if forwarded_for and _trusted(ip, proxies):
        for hop in reversed(forwarded_for.split(",")):
            hop_ip = _ip(hop)
            if hop_ip is None:
                break
            ip = hop_ip
            if not _trusted(hop_ip, proxies):
                break
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip)


def client_key(address: str) -> str:
    """What caps and limits count per client: an IPv4 address, or the /64 of an IPv6 one."""
    ip = _ip(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


# --- which names are ours ---------------------------------------------------------------------------
def _hostname(host: str) -> str | None:
    """The name in a Host header or URL authority (port dropped, lower case), or None if it does not parse."""
    try:
        parts = urlsplit(f"//{host.strip()}")
        name = parts.hostname
        _ = parts.port  # a port that is not a number is not a Host header
    except ValueError:
        return None
    if not name or parts.username is not None or parts.password is not None or parts.path or parts.query:
        return None
    return name.rstrip(".")


def machine_names() -> set[str]:
    """This machine's own names (what a join link or a colleague on the LAN uses)."""
    names: set[str] = set()
    with contextlib.suppress(OSError):
        host = socket.gethostname()
        names |= {host, f"{host}.local", socket.getfqdn()}
    return {n.lower().rstrip(".") for n in names if n}


class Names:
    """The host names a server answers to: localhost, this machine's names, the names in its public
    URLs and any configured ones. IP literals are always accepted as a Host (a DNS rebinding attack
    needs a name the attacker controls); an Origin must be same-host or one of the names."""

    def __init__(self, extra: Iterable[str] = (), urls: Iterable[str | None] = ()) -> None:
        names = {"localhost"} | machine_names()
        for url in urls:
            if url:
                name = urlsplit(url).hostname
                if name:
                    names.add(name.lower().rstrip("."))
        for value in extra:
            name = _hostname(value) or value.strip().lower().rstrip(".")
            if name:
                names.add(name)
        self.names = frozenset(names)

    def known(self, name: str) -> bool:
        return name in self.names or name.endswith(".localhost") or _ip(name) is not None

    def host_allowed(self, host: str | None) -> bool:
        """A request without Host (HTTP/1.0, not a browser) passes; a Host that is not ours does not."""
        if host is None:
            return True
        name = _hostname(host)
        return name is not None and self.known(name)

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """No Origin (not a browser) passes; a browser's must be this host or one of our names."""
        if origin is None:
            return True
        parts = urlsplit(origin.strip())
        name = (parts.hostname or "").rstrip(".")
        if parts.scheme not in ("http", "https") or not name:
            return False  # "null" (sandboxed frames, file:) and anything else
        same = host is not None and _hostname(host) == name
        return same or (name in self.names or name.endswith(".localhost"))


# --- the gate every request passes --------------------------------------------------------------------
def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class SiteGuard:
    """Pure ASGI middleware (HTTP and WebSocket alike): unknown Host or foreign Origin -> 403, plain text;
    every HTTP response carries ``headers`` (set, replacing any the application gave)."""

    def __init__(self, app: ASGIApp, names: Names, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.app, self.names = app, names
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        self.refused = 0

    def reason(self, scope: Scope) -> str | None:
        """Why a request is refused, or None."""
        host = _header(scope, b"host")
        if not self.names.host_allowed(host):
            return "unknown host name"
        if not self.names.origin_allowed(_header(scope, b"origin"), host):
            return "requests from other sites are refused"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        why = self.reason(scope)
        if why is not None:
            self.refused += 1
            log.warning("refused a request: %s", why)
            if scope["type"] == "websocket":
                await receive()  # websocket.connect; closing before accepting answers the handshake with 403
                await send({"type": "websocket.close", "code": 1008})
                return
            body = f"{why}\n".encode()
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 403, "headers": headers + self.headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "http" or not self.headers:
            await self.app(scope, receive, send)
            return
        ours = {k for k, _ in self.headers}

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if bytes(k).lower() not in ours]
                message["headers"] = kept + self.headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- guesses of a secret --------------------------------------------------------------------------------
class GuessLimiter:
    """Wrong guesses as token buckets: per client ``burst`` then one per ``1/rate`` s, and over all clients
    ``global_burst`` then ``global_rate`` a second.

    ``retry_after(key)`` is asked before every attempt and is not 0 while the client's bucket is empty,
    or while the shared one is and this client guessed wrong in the last ``suspect_s`` seconds (a
    client with no recent wrong guess still gets in, so students with the right code can join during
    an attack; each attacking address then gets one guess per ``suspect_s``). Refusing right and wrong
    guesses alike is what makes the limit hold: a refusal carries no answer. At most ``max_clients``
    are remembered (the longest quiet is forgotten first).
    """

    def __init__(
        self,
        burst: float = 10,
        rate: float = 0.2,
        global_burst: float = 100,
        global_rate: float = 2.0,
        suspect_s: float = 900.0,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.rate, self.global_burst, self.global_rate = burst, rate, global_burst, global_rate
        self.suspect_s, self.max_clients, self.clock = suspect_s, max_clients, clock
        self._clients: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last wrong guess)
        self._global = (float(global_burst), clock())
        self._lock = threading.Lock()
        self.refused = 0

    def _tokens(self, key: str, now: float) -> float | None:
        """The client's tokens now, or None for a client with no wrong guess in ``suspect_s`` (forgotten)."""
        entry = self._clients.get(key)
        if entry is None:
            return None
        if now - entry[1] > self.suspect_s:
            del self._clients[key]
            return None
        return min(self.burst, entry[0] + (now - entry[1]) * self.rate)

    def _global_tokens(self, now: float) -> float:
        tokens, at = self._global
        return min(self.global_burst, tokens + (now - at) * self.global_rate)

    def retry_after(self, key: str) -> float:
        """Seconds this client must wait before its next attempt (0: go ahead)."""
        with self._lock:
            now = self.clock()
            tokens = self._tokens(key, now)
            if tokens is None:
                return 0.0
            if tokens < 1:
                self.refused += 1
                return (1 - tokens) / self.rate
            shared = self._global_tokens(now)
            if shared < 1:
                self.refused += 1
                return (1 - shared) / self.global_rate
            return 0.0

    def failed(self, key: str) -> None:
        """One wrong guess by ``key``: one token from its bucket and one from the shared one."""
        with self._lock:
            now = self.clock()
            tokens = self._tokens(key, now)
            self._clients[key] = ((self.burst if tokens is None else tokens) - 1, now)
            self._clients.move_to_end(key)
            while len(self._clients) > self.max_clients:  # bounded memory: the longest-quiet client is forgotten
                self._clients.popitem(last=False)
            self._global = (max(self._global_tokens(now) - 1, -self.global_burst), now)


class Backoff:
    """Wrong passwords per client: ``free`` tries, then 1, 2, 4 ... s between tries (at most ``max_delay_s``),
    and after ``lockout_after`` wrong ones in a row the client waits ``lockout_s``. A right password clears
    the count; a try made while waiting is not checked at all (it neither counts nor answers)."""

    def __init__(
        self,
        free: int = 3,
        max_delay_s: float = 60.0,
        lockout_after: int = 10,
        lockout_s: float = 900.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.max_delay_s, self.lockout_after, self.lockout_s = free, max_delay_s, lockout_after, lockout_s
        self.max_clients, self.clock = max_clients, clock
        self._clients: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (failures, may try again at)
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Seconds before ``key`` may try again (0: now)."""
        with self._lock:
            entry = self._clients.get(key)
            return max(0.0, entry[1] - self.clock()) if entry else 0.0

    def delay_after(self, failures: int) -> float:
        if failures >= self.lockout_after:
            return self.lockout_s
        if failures < self.free:
            return 0.0
        return float(min(self.max_delay_s, 2.0 ** (failures - self.free)))

    def failed(self, key: str) -> float:
        """A wrong password from ``key``; returns how long it must now wait."""
        with self._lock:
            failures = self._clients.get(key, (0, 0.0))[0] + 1
            if failures > self.lockout_after:  # after a lockout: the count starts again at the lockout
                failures = self.lockout_after
            delay = self.delay_after(failures)
            self._clients[key] = (failures, self.clock() + delay)
            self._clients.move_to_end(key)
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
            return delay

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._clients.pop(key, None)


def wait_text(seconds: float) -> str:
    """``42 s`` or ``15 min``: how long a refused client waits, for a plain message."""
    if seconds >= 120:
        return f"{math.ceil(seconds / 60)} min"
    return f"{max(1, math.ceil(seconds))} s"


# --- connections ------------------------------------------------------------------------------------------
class ConnectionGate:
    """Connections of one server: at most ``per_client`` open per client key (a trusted proxy's are
    counted only in the total) and ``max_total`` in all; every request answered within ``request_timeout_s``.

    At the total, the connection that has waited longest for its request is closed to make room
    (connections that never finish a request cannot keep everyone else out); with none waiting the
    new one is refused. Lives on the server's event loop.
    """

    def __init__(
        self,
        max_total: int,
        per_client: int,
        request_timeout_s: float,
        proxies: Sequence[Network] = (),
    ) -> None:
        self.max_total, self.per_client, self.request_timeout_s = max_total, per_client, request_timeout_s
        self.proxies = tuple(proxies)
        self.total = 0
        self.open: dict[str, int] = {}
        self.waiting: OrderedDict[_Guarded, None] = OrderedDict()
        self.counts = {"refused_client": 0, "refused_full": 0, "evicted": 0, "timed_out": 0}

    def key_of(self, peer: Any) -> tuple[str, bool]:
        """The client key of a peer address (a tuple from ``getpeername``), and whether it is a proxy of ours."""
        host = peer[0] if isinstance(peer, tuple | list) and peer else None
        ip = _ip(host) if isinstance(host, str) else None
        if ip is None:
            return "unknown", False
        return client_key(str(ip)), _trusted(ip, self.proxies)

    def admit(self, key: str, proxy: bool) -> bool:
        if not proxy and self.open.get(key, 0) >= self.per_client:
            self.counts["refused_client"] += 1
            log.warning("refused a connection: more than %d open from one client", self.per_client)
            return False
        if self.total >= self.max_total:
            if not self.waiting:
                self.counts["refused_full"] += 1
                log.warning("refused a connection: %d connections open", self.max_total)
                return False
            oldest = next(iter(self.waiting))
            self.counts["evicted"] += 1
            log.warning("closed the connection waiting longest for its request: %d connections open", self.max_total)
            oldest.close_now()
        self.total += 1
        self.open[key] = self.open.get(key, 0) + 1
        return True

    def release(self, key: str) -> None:
        self.total -= 1
        left = self.open.get(key, 0) - 1
        if left > 0:
            self.open[key] = left
        else:
            self.open.pop(key, None)


class _Transport:
    """The transport as the HTTP protocol sees it: writes mark the request answered; a protocol switch
    (the WebSocket upgrade) swaps the protocol inside the guard instead of replacing the guard."""

    def __init__(self, transport: asyncio.Transport, guard: _Guarded) -> None:
        self._transport, self._guard = transport, guard

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._guard.answered()
        self._transport.write(data)

    def writelines(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        self._guard.answered()
        self._transport.writelines(data)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._guard.switched(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._guard.inner or self._guard

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Guarded(asyncio.Protocol):
    """One connection behind a ``ConnectionGate``, wrapping the server's own protocol."""

    def __init__(self, gate: ConnectionGate, make: Callable[..., asyncio.Protocol], **kwargs: Any) -> None:
        self.gate, self._make, self._kwargs = gate, make, kwargs
        self.inner: asyncio.BaseProtocol | None = None
        self.transport: asyncio.Transport | None = None
        self.key: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = False
        self._switched = False

    # the deadline: armed while a request is awaited, cleared by the first byte of its answer
    def _arm(self) -> None:
        self._waiting = True
        self.gate.waiting[self] = None
        self.gate.waiting.move_to_end(self)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.gate.request_timeout_s, self._expired)

    def _disarm(self) -> None:
        self._waiting = False
        self.gate.waiting.pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def answered(self) -> None:
        if self._waiting:
            self._disarm()

    def switched(self, protocol: asyncio.BaseProtocol) -> None:
        """Upgraded to a WebSocket: its own pings time it out from now on."""
        self._disarm()
        self._switched = True
        self.inner = protocol

    def _expired(self) -> None:
        self.gate.counts["timed_out"] += 1
        log.warning("closed a connection that sent no complete request within %g s", self.gate.request_timeout_s)
        self.close_now()

    def close_now(self) -> None:
        """Drop the connection at once (a reset: nothing is owed to a client that never asked anything)."""
        self._disarm()
        if self.key is not None:
            self.gate.release(self.key)
            self.key = None
        if self.transport is not None:
            self.transport.abort()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        key, proxy = self.gate.key_of(transport.get_extra_info("peername"))
        if not self.gate.admit(key, proxy):
            transport.abort()
            return
        self.key, self.transport = key, transport
        self.inner = self._make(**self._kwargs)
        self._arm()
        self.inner.connection_made(_Transport(transport, self))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        if not self._waiting and not self._switched:  # the next request on a kept-alive connection
            self._arm()
        self.inner.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.key is not None:
            self.gate.release(self.key)
            self.key = None
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


def guarded(protocol: Callable[..., asyncio.Protocol], gate: ConnectionGate) -> Callable[..., asyncio.Protocol]:
    """A protocol factory for ``uvicorn.Config(http=...)``: ``protocol`` behind ``gate``."""

    def factory(**kwargs: Any) -> asyncio.Protocol:
        return _Guarded(gate, protocol, **kwargs)

    return factory


# --- the process ----------------------------------------------------------------------------------------
def raise_fd_limit(target: int = 1 << 20) -> int:
    """Raise the soft limit on open files towards the hard one (many distributions start at 1,024, which
    a thousand idle connections reach); returns the soft limit in force."""
    try:
        import resource
    except ImportError:  # not POSIX
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    return int(soft if soft != resource.RLIM_INFINITY else target)


class OncePerKind(logging.Filter):
    """One log line per kind of message (logger, level, template, exception type) per ``interval_s``; the
    next one says how many were left out. Tracebacks: the first of each kind only, then one line."""

    def __init__(self, interval_s: float = 60.0, max_kinds: int = 500, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval_s, self.max_kinds, self.clock = interval_s, max_kinds, clock
        self._kinds: dict[tuple[str, int, str, str], list[float]] = {}  # kind -> [last shown, left out since]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        kind = (record.name, record.levelno, str(record.msg)[:200], type(exc).__name__ if exc else "")
        now = self.clock()
        with self._lock:
            entry = self._kinds.get(kind)
            if entry is None and len(self._kinds) >= self.max_kinds:
                kind = (record.name, record.levelno, "(other)", "")
                entry = self._kinds.get(kind)
            if entry is not None and now - entry[0] < self.interval_s:
                entry[1] += 1
                return False
            left_out = int(entry[1]) if entry is not None else 0
            self._kinds[kind] = [now, 0]
        if entry is not None and exc is not None:  # seen before: one line, no traceback
            record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__}: {exc})", None
            record.exc_info, record.exc_text = None, None
        if left_out:
            record.msg, record.args = f"{record.getMessage()} [{left_out} more like this not shown]", None
        return True


_LIMITED = ("uvicorn.error", "asyncio", "classmood.net", "classmood.hub")


def limit_logs(names: Sequence[str] = _LIMITED, interval_s: float = 60.0) -> None:
    """Put ``OncePerKind`` on the loggers an attack makes talk (once per logger, however often called)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OncePerKind) for f in logger.filters):
            logger.addFilter(OncePerKind(interval_s))
