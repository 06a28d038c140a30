"""The student-side hub: a small web server that serves the student page and collects numbers.

Routes (one origin, so a reverse proxy in front of it needs one rule; README: "Student-side mode"):

- ``/join/{code}`` the student page; ``/static/...`` its script, style and onnxruntime-web (from
  ``vendor``); ``/models/face.onnx`` (YuNet-s) and ``/models/expression/{name}.onnx`` (the class's model);
  ``/config.json?class=CODE`` what the page needs to read a face as the server would (readout, crop scale);
- ``/ws/student?class=CODE`` a student's WebSocket (``protocol``): welcome with a session-local
  pseudonym, then updates; closing it or ``leave`` removes the student from every number;
- ``/ws/teacher/{code}?token=...`` the class view under k after every update (the Streamlit page
  reads the same ``Room`` in-process; this socket serves other dashboards and the benchmark).

Every response carries a Content-Security-Policy that lets a page load nothing from another origin
and send nothing but WebSocket text to this one, so even a bug in the page cannot fetch a CDN or
post an image. The server runs in a thread of the app's process (``start``) or on its own
(``python -m classmood.classroom.hub``, used by ``classmood bench --students``).

What one client can do is bounded (README "Student-side mode", numbers below; rules in ``netguard``):
seats per class and per address (``room``); wrong class codes per address and over all clients
(429 with Retry-After, right and wrong codes alike once exhausted); requests whose Host is not one of
the hub's names or whose Origin is another site (403); connections per address and in all, each
request answered within ``REQUEST_TIMEOUT_S`` or closed; the soft descriptor limit raised at start and
at most half of it used, so the app sharing this process keeps the rest; one log line per kind of error
a minute. It stays in the app's process because the teacher's page reads its ``Room`` objects directly;
those bounds are what keep an attack on it from taking the app down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classmood import netguard
from classmood.classroom import vendor
from classmood.classroom.protocol import MAX_MESSAGE_BYTES, ProtocolError, parse
from classmood.classroom.room import (
    MAX_STUDENTS,
    SESSION_KIND,
    TICK_S,
    JoinRefused,
    Room,
    new_code,
    well_formed,
)
from classmood.containers import MoodBin, Summary
from classmood.errors import ClassmoodError
from classmood.expression.model import ExpressionModel, resolve_model
from classmood.expression.readout import Readout
from classmood.labels import EMOTIONS
from classmood.pipeline import PipelineConfig
from classmood.store.recorder import SessionRecorder
from classmood.vision.crops import FER_SIDE_PER_BOX_HEIGHT
from classmood.vision.pose import FACE_3D, FOCAL_BOXES, FacingRule
from classmood.vision.yunet import FACE_THRESHOLD, yunet_path
from classmood.weights.shipped import BROWSER_MODELS, LIVE_MODEL
from classmood.words import EXPRESSION_WORDS

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.websockets import WebSocket

    from classmood.store.store import SessionStore

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_PORT = 8502
INTERVAL_S = 1.0
# A student's page sends one update per interval (and a pause or resume now and then): more is refused,
# and a connection refused this often is closed, so one client cannot flood the class's hub.
RATE_PER_S, BURST, MAX_REFUSED = 3.0, 6, 50
# Wrong class codes (29.7 bits): 10 per address, then one per 5 s; over all addresses 100, then 2 a
# second. An address that used its 10 gets 429 for every code until it may try again.
CODE_BURST, CODE_RATE, CODE_GLOBAL_BURST, CODE_GLOBAL_RATE = 10, 0.2, 100, 2.0
# Connections: per address, in all (at most half the open-file limit: the app shares the process),
# and how long a request may take to arrive before its connection is closed.
CONNECTIONS_PER_CLIENT, MAX_CONNECTIONS, REQUEST_TIMEOUT_S = 256, 4096, 10.0
# classmood app passes its options to the hub it starts in this environment (app/ui.class_hub)
CLASS_SIZE_ENV, PER_CLIENT_ENV = "CLASSMOOD_CLASS_SIZE", "CLASSMOOD_PER_CLIENT"
TRUSTED_PROXIES_ENV, ALLOWED_HOSTS_ENV = "CLASSMOOD_TRUSTED_PROXIES", "CLASSMOOD_ALLOWED_HOSTS"
CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(self), microphone=(), geolocation=()"),
)


def hub_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The hub's limits from ``classmood app``'s environment (``server.run_app`` writes it)."""
    out: dict[str, Any] = {}
    if env.get(CLASS_SIZE_ENV):
        out["max_students"] = int(env[CLASS_SIZE_ENV])
    if env.get(PER_CLIENT_ENV):
        out["per_client"] = int(env[PER_CLIENT_ENV])
    for key, name in ((TRUSTED_PROXIES_ENV, "trusted_proxies"), (ALLOWED_HOSTS_ENV, "allowed_hosts")):
        values = [v.strip() for v in env.get(key, "").split(",") if v.strip()]
        if values:
            out[name] = values
    return out


class _MessageBudget:
    """A token bucket for one student's socket: RATE_PER_S messages a second, BURST at once."""

    def __init__(self, rate_per_s: float = RATE_PER_S, burst: int = BURST) -> None:
        self.rate_per_s, self.burst = rate_per_s, float(burst)
        self.tokens, self.refill_at = float(burst), time.monotonic()

    def take(self) -> bool:
        """Spend one message; False (nothing spent) when the budget is used up."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refill_at) * self.rate_per_s)
        self.refill_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class _Listener:
    """One teacher socket: wakes on every change and collects the send times of the updates it reflects."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.applied_t: list[float] = []


class Hub:
    """Rooms by class code, and the web app that serves them."""

    def __init__(
        self,
        model: str = LIVE_MODEL,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        public_url: str | None = None,
        interval_s: float = INTERVAL_S,
        max_students: int = MAX_STUDENTS,
        per_client: int | None = None,
        trusted_proxies: Sequence[str] = (),
        allowed_hosts: Sequence[str] = (),
        connections_per_client: int = CONNECTIONS_PER_CLIENT,
        max_connections: int | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        facing: bool = True,
    ) -> None:
        self.default_model = self._check_model(model)
        self.facing = facing  # False: the pages estimate no head orientation, and rooms take none
        self._readouts: dict[str, Readout] = {}
        self.host, self.port = host, port
        self.public_url = public_url
        self.interval_s = interval_s
        for name, value in (
            ("class size", max_students),
            ("seats per client", per_client),
            ("connections per client", connections_per_client),
            ("connections", max_connections),
        ):
            if value is not None and value < 1:
                raise ClassmoodError(f"the hub's {name} must be at least 1, not {value}")
        if not request_timeout_s > 0:
            raise ClassmoodError(f"the hub's request timeout must be positive, not {request_timeout_s}")
        self.max_students, self.per_client = max_students, per_client
        try:
            self.proxies = netguard.parse_networks(trusted_proxies)
        except ValueError as exc:
            raise ClassmoodError(f"trusted proxy: {exc}") from None
        self.names = netguard.Names([*allowed_hosts, host], [public_url])
        self.connections_per_client, self.max_connections = connections_per_client, max_connections
        self.request_timeout_s = request_timeout_s
        self.guesses = netguard.GuessLimiter(CODE_BURST, CODE_RATE, CODE_GLOBAL_BURST, CODE_GLOBAL_RATE)
        self.gate: netguard.ConnectionGate | None = None
        self.rooms: dict[str, Room] = {}
        self._listeners: dict[str, set[_Listener]] = {}
        self._students: dict[str, set[Any]] = {}  # open student sockets per room, to tell them a class ended
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def _check_model(name: str) -> str:
        if name not in BROWSER_MODELS:
            raise ClassmoodError(f"a student's browser runs one of {', '.join(BROWSER_MODELS)}, not {name!r}")
        return name

    def readout(self, model: str) -> Readout:
        if model not in self._readouts:
            self._readouts[model] = ExpressionModel(resolve_model(model), threads=1).readout
        return self._readouts[model]

    # --- rooms ---------------------------------------------------------------------------------
    def open_room(
        self,
        k: int,
        model: str | None = None,
        store: SessionStore | None = None,
        max_students: int | None = None,
        per_client: int | None = None,
    ) -> Room:
        """A new class with its code; with ``store`` it is saved as a session (kind ``students``) as it runs.
        Its seats default to the hub's (``max_students``, ``per_client``)."""
        if not vendor.installed():
            raise ClassmoodError(
                "onnxruntime-web is not installed for the student page: run `make run` (or "
                "`python -m classmood.classroom.vendor`) once with access to the npm registry"
            )
        model = self._check_model(model or self.default_model)
        code = new_code()
        while code in self.rooms:
            code = new_code()
        recorder = None
        if store is not None:
            config = {"min_faces": k, "model": model, "mode": "student-side"}
            # lazy: a class no student showed a face in leaves no empty session
            recorder = SessionRecorder(store, SESSION_KIND, f"student-side class {code}", config, lazy=True).open()
        room = Room(
            k,
            self.readout(model),
            model=model,
            code=code,
            recorder=recorder,
            max_students=max_students or self.max_students,
            per_client=per_client or self.per_client,
            facing=self.facing,
        )
        self.rooms[room.code] = room
        return room

    def close_room(self, code: str) -> tuple[list[MoodBin], Summary] | None:
        """End a class: students are told and disconnected; returns its raw bins and summary (None if unknown)."""
        room = self.rooms.pop(code, None)
        if room is None:
            return None
        ended = room.end()
        if self._loop is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._say_closed(code), self._loop)
        return ended

    async def _say_closed(self, code: str) -> None:
        for ws in list(self._students.pop(code, set())):
            with contextlib.suppress(Exception):
                await ws.send_text(json.dumps({"type": "closed"}))
                await ws.close(1000)
        self._notify(code)

    def join_url(self, code: str) -> str:
        """The link students open: ``public_url`` (behind an HTTPS proxy), else this machine's address."""
        if self.public_url:
            base = self.public_url
        else:
            if self.host in ("127.0.0.1", "::1", "localhost"):
                host = "localhost"
            elif self.host in ("0.0.0.0", "::", ""):  # every interface: this machine's name on the network
                fqdn = socket.getfqdn()
                host = fqdn if fqdn not in ("localhost", "localhost.localdomain") else socket.gethostname()
            else:
                host = f"[{self.host}]" if ":" in self.host else self.host
            base = f"http://{host}:{self.port}"
        return f"{base.rstrip('/')}/join/{code}"

    def camera_needs_https(self, code: str) -> bool:
        """Browsers give the webcam only to HTTPS pages or localhost: a plain http link to another machine fails."""
        url = self.join_url(code)
        return url.startswith("http://") and not url.startswith(("http://localhost", "http://127.0.0.1"))

    def _notify(self, code: str, t: float | None = None) -> None:
        for listener in self._listeners.get(code, ()):
            if t is not None:
                listener.applied_t.append(t)
            listener.event.set()

    # --- the web app ---------------------------------------------------------------------------
    def config(self, code: str = "") -> dict[str, Any]:
        """What the student page needs to read a face as the server would, for the class ``code``."""
        found = self.rooms.get(code.strip().upper())
        room = found if found is not None and not found.closed else None
        model = room.model if room is not None else self.default_model
        readout = self.readout(model)
        return {
            # what the student reads before consenting: whether the class exists, its k, whether it is saved
            "open": room is not None,
            "k": room.k if room is not None else None,
            "saved": room is not None and room.saving,
            "interval_s": self.interval_s,
            "model": model,
            "labels": [EXPRESSION_WORDS[e] for e in EMOTIONS],  # how the student page names the seven numbers
            "face_threshold": FACE_THRESHOLD,
            "crop_scale": FER_SIDE_PER_BOX_HEIGHT,
            "min_face_px": readout.min_face_px,
            "min_detail": readout.min_detail,
            # the model's learnt unreadable score (its second output, if it has one) above which the face is not read
            "max_unreadable": readout.max_unreadable,
            "max_side": 640,
            "smoothing": PipelineConfig().smoothing,
            # apparent head pose as vision/pose.py estimates it, and the rule that says "facing the screen"
            "face_3d": FACE_3D.tolist(),
            "focal_boxes": FOCAL_BOXES,
            "facing_rule": asdict(FacingRule()) if self.facing else None,  # None: the page sends facing null
            "ort_version": vendor.VERSION,
        }

    def client(self, conn: Any) -> str:
        """The client key of a request or WebSocket (``X-Forwarded-For`` only from a trusted proxy)."""
        peer = conn.client.host if conn.client is not None else None
        return netguard.client_key(netguard.client_address(peer, conn.headers.get("x-forwarded-for"), self.proxies))

    @staticmethod
    def _slow_down(wait: float) -> tuple[str, int]:
        return f"too many wrong class codes from your address: try again in {netguard.wait_text(wait)}", math.ceil(wait)

    def app(self) -> Any:
        """The hub's web app: the student page, its models and config, and the two sockets (methods below)."""
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.responses import HTMLResponse, RedirectResponse
        from starlette.routing import Mount, Route, WebSocketRoute
        from starlette.staticfiles import StaticFiles

        page = (STATIC / "student.html").read_text()

        async def student_page(request: Request) -> Response:
            return HTMLResponse(page)

        async def index(request: Request) -> Response:
            return RedirectResponse("/join/")

        return Starlette(
            routes=[
                Route("/", index),
                Route("/join/", student_page),
                Route("/join/{code}", student_page),
                Route("/config.json", self._config_route),
                Route("/health", self._health),
                Route("/models/face.onnx", self._face_model),
                Route("/models/expression/{name}.onnx", self._expression_model),
                Mount("/static", StaticFiles(directory=STATIC), name="static"),
                WebSocketRoute("/ws/student", self._student_socket),
                WebSocketRoute("/ws/teacher/{code}", self._teacher_socket),
            ],
            middleware=[Middleware(netguard.SiteGuard, names=self.names, headers=HEADERS)],
            lifespan=self._lifespan,
        )

    # --- routes --------------------------------------------------------------------------------
    async def _config_route(self, request: Request) -> Response:
        """What the page needs to read a face; a class code asked for counts against the guess limits."""
        from starlette.responses import JSONResponse

        code = request.query_params.get("class", "").strip().upper()
        if code:
            key = self.client(request)
            wait = self.guesses.retry_after(key)
            if wait:
                text, seconds = self._slow_down(wait)
                headers = {"Retry-After": str(seconds)}
                return JSONResponse({"error": text, "retry_after": seconds}, status_code=429, headers=headers)
            room = self.rooms.get(code)
            if (room is None or room.closed) and well_formed(code):
                self.guesses.failed(key)
        return JSONResponse(self.config(code))

    async def _face_model(self, request: Request) -> Response:
        from starlette.responses import FileResponse

        return FileResponse(yunet_path(), media_type="application/octet-stream")

    async def _expression_model(self, request: Request) -> Response:
        from starlette.responses import FileResponse, JSONResponse

        name = request.path_params["name"]
        if name not in BROWSER_MODELS:
            return JSONResponse({"error": "unknown model"}, status_code=404)
        return FileResponse(resolve_model(name), media_type="application/octet-stream")

    async def _health(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        connections = self.gate.total if self.gate is not None else None
        state = {"ok": True, "rooms": len(self.rooms), "onnxruntime_web": vendor.installed()}
        return JSONResponse({**state, "connections": connections})

    # --- sockets -------------------------------------------------------------------------------
    @staticmethod
    async def _refuse(ws: WebSocket, message: str, code: int) -> None:
        await ws.send_text(json.dumps({"type": "error", "message": message}))
        await ws.close(code)

    async def _student_socket(self, ws: WebSocket) -> None:
        """A student's page: admitted to an open class with a pseudonym, then its updates until it leaves."""
        from starlette.websockets import WebSocketDisconnect

        await ws.accept()
        admitted = await self._admit(ws)
        if admitted is None:
            return
        room, code, pseudonym = admitted
        try:
            await self._read_updates(ws, room, code, pseudonym)
        except WebSocketDisconnect:
            pass
        finally:
            room.leave(pseudonym)
            self._students.get(code, set()).discard(ws)
            self._notify(code)
            with contextlib.suppress(Exception):
                await ws.close(1000)

    async def _admit(self, ws: WebSocket) -> tuple[Room, str, str] | None:
        """(room, code, pseudonym) of a student let in and welcomed, or None after telling it why not."""
        code = ws.query_params.get("class", "").strip().upper()
        key = self.client(ws)
        wait = self.guesses.retry_after(key)
        if wait:
            await self._refuse(ws, self._slow_down(wait)[0], 4429)
            return None
        room = self.rooms.get(code)
        if room is None or room.closed:
            if well_formed(code):
                self.guesses.failed(key)
            await self._refuse(ws, f"no open class with the code {code!r}: check it with your teacher", 4404)
            return None
        try:
            pseudonym = room.join(key)
        except JoinRefused as exc:
            await self._refuse(ws, str(exc), 4409)
            return None
        self._students.setdefault(code, set()).add(ws)
        await ws.send_text(json.dumps({"type": "welcome", "pseudonym": pseudonym, "interval_s": self.interval_s}))
        self._notify(code)
        return room, code, pseudonym

    async def _read_updates(self, ws: WebSocket, room: Room, code: str, pseudonym: str) -> None:
        """Apply a student's messages to its room; refuse (and after MAX_REFUSED, drop) what breaks the protocol."""
        budget = _MessageBudget()
        refused = 0
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if not budget.take():
                    raise ProtocolError(f"more than {RATE_PER_S:g} messages a second")
                text = message.get("text")
                parsed = parse(text if text is not None else message.get("bytes", b""))
            except ProtocolError as exc:
                room.refuse()
                refused += 1
                if refused >= MAX_REFUSED:  # not a student's page: stop listening to it
                    await ws.close(1008)
                    return
                await ws.send_text(json.dumps({"type": "refused", "reason": str(exc)}))
                continue
            room.apply(pseudonym, parsed)
            self._notify(code, getattr(parsed, "t", None))
            if getattr(parsed, "kind", None) == "leave":
                return

    async def _teacher_socket(self, ws: WebSocket) -> None:
        """The class view under k after every change, for the teacher holding the room's token."""
        from starlette.websockets import WebSocketDisconnect

        await ws.accept()
        code = ws.path_params["code"].upper()
        room = self.rooms.get(code)
        token = ws.query_params.get("token", "")
        key = self.client(ws)
        if self.guesses.retry_after(key):
            await ws.close(4429)
            return
        if room is None or not secrets.compare_digest(token.encode(), room.teacher_token.encode()):
            self.guesses.failed(key)
            await ws.close(4403)
            return
        listener = _Listener()
        self._listeners.setdefault(code, set()).add(listener)
        try:
            while not room.closed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(listener.event.wait(), timeout=5.0)
                listener.event.clear()
                state = room.now_view()
                state["applied_t"], listener.applied_t = listener.applied_t, []
                state["closed"] = room.closed
                await ws.send_text(json.dumps(state))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._listeners.get(code, set()).discard(listener)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> Any:
        self._loop = asyncio.get_running_loop()
        ticker = self._loop.create_task(self._ticker())
        try:
            yield
        finally:
            ticker.cancel()

    async def _ticker(self) -> None:
        """Once a second: every room's faces present go into its mood over time; teachers see stale ones go."""
        while True:
            await asyncio.sleep(TICK_S)
            for code, room in list(self.rooms.items()):
                if room.idle():  # the teacher left and so did every student: end it (saved if asked)
                    await asyncio.to_thread(self.close_room, code)
                    continue
                await asyncio.to_thread(room.tick)  # may write a bin to the session database
                self._notify(code)

    # --- running -------------------------------------------------------------------------------
    def _socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            where = f"{self.host}:{self.port}"
            raise ClassmoodError(f"the student-side hub cannot listen on {where} ({exc.strerror})") from None
        sock.listen(2048)  # connections wait in the backlog until the server runs (bench and tests connect at once)
        self.port = sock.getsockname()[1]
        return sock

    def _uvicorn(self) -> Any:
        import uvicorn
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        soft = netguard.raise_fd_limit()
        total = self.max_connections or min(MAX_CONNECTIONS, max(64, (soft - 256) // 2))
        self.gate = netguard.ConnectionGate(total, self.connections_per_client, self.request_timeout_s, self.proxies)
        config = uvicorn.Config(
            self.app(),
            http=netguard.guarded(AutoHTTPProtocol, self.gate),  # type: ignore[arg-type]
            log_level="warning",
            ws_max_size=MAX_MESSAGE_BYTES * 4,
            ws_ping_interval=10,
            ws_ping_timeout=20,
            timeout_keep_alive=5,
            lifespan="on",
        )
        netguard.limit_logs()
        return uvicorn.Server(config)

    def start(self) -> Hub:
        """Serve in a daemon thread of this process (the Streamlit app's); returns once listening."""
        sock = self._socket()
        self._server = self._uvicorn()
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="hub")
        self._thread.start()
        deadline = time.time() + 15
        while not self._server.started and self._thread.is_alive() and time.time() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            raise ClassmoodError("the student-side hub did not start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classmood.classroom.hub", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--model", default=LIVE_MODEL, help=f"the model students' browsers run: {' or '.join(BROWSER_MODELS)}"
    )
    parser.add_argument("--public-url")
    parser.add_argument("--open-class", type=int, metavar="K", help="open one class with this k and print its code")
    parser.add_argument("--class-size", type=int, default=MAX_STUDENTS, help="seats in a class")
    parser.add_argument("--per-client", type=int, help="seats one address may hold (default: min(4, k - 2))")
    parser.add_argument("--trusted-proxy", action="append", default=[], help="read X-Forwarded-For from this proxy")
    parser.add_argument("--allowed-host", action="append", default=[], help="another name the hub is reached at")
    parser.add_argument("--connections-per-client", type=int, default=CONNECTIONS_PER_CLIENT)
    parser.add_argument("--max-connections", type=int, help="default: min(4096, half the open-file limit)")
    parser.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT_S, help="seconds")
    args = parser.parse_args(argv)
    try:
        hub = Hub(
            args.model,
            args.host,
            args.port,
            args.public_url,
            max_students=args.class_size,
            per_client=args.per_client,
            trusted_proxies=args.trusted_proxy,
            allowed_hosts=args.allowed_host,
            connections_per_client=args.connections_per_client,
            max_connections=args.max_connections,
            request_timeout_s=args.request_timeout,
        )
        room = hub.open_room(args.open_class) if args.open_class else None
        sock = hub._socket()
    except ClassmoodError as exc:
        print(f"classmood: error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: setattr(hub._server, "should_exit", True))
    hub._server = hub._uvicorn()
    assert hub.gate is not None
    info: dict[str, Any] = {"url": f"http://{hub.host}:{hub.port}", "pid": os.getpid()}
    info["max_connections"] = hub.gate.max_total
    if room is not None:
        info.update(code=room.code, token=room.teacher_token, join=hub.join_url(room.code))
    print(json.dumps(info), flush=True)
    hub._server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
