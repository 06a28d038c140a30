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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classmood.classroom import vendor
from classmood.classroom.protocol import MAX_MESSAGE_BYTES, ProtocolError, parse
from classmood.classroom.room import SESSION_KIND, TICK_S, Room, new_code
from classmood.containers import MoodBin, Summary
from classmood.errors import ClassmoodError
from classmood.expression.model import ExpressionModel, resolve_model
from classmood.expression.readout import Readout
from classmood.labels import EMOTIONS
from classmood.pipeline import PipelineConfig
from classmood.store.recorder import SessionRecorder
from classmood.vision.crops import FER_SIDE_PER_BOX_HEIGHT
from classmood.vision.yunet import FACE_THRESHOLD, yunet_path

if TYPE_CHECKING:
    from classmood.store.store import SessionStore

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_PORT = 8502
BROWSER_MODELS = ("accurate", "fast")  # single files; the ensemble is two models, for recordings
DEFAULT_MODEL = "accurate"  # the live default; measured in the browser: README "Student-side mode"
INTERVAL_S = 1.0
# A student's page sends one update per interval (and a pause or resume now and then): more is refused,
# and a connection refused this often is closed, so one client cannot flood the class's hub.
RATE_PER_S, BURST, MAX_REFUSED = 3.0, 6, 50
CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class _Listener:
    """One teacher socket: wakes on every change and collects the send times of the updates it reflects."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.applied_t: list[float] = []


class Hub:
    """Rooms by class code, and the web app that serves them."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        public_url: str | None = None,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.default_model = self._check_model(model)
        self._readouts: dict[str, Readout] = {}
        self.host, self.port = host, port
        self.public_url = public_url
        self.interval_s = interval_s
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
    def open_room(self, k: int, model: str | None = None, store: SessionStore | None = None) -> Room:
        """A new class with its code; with ``store`` it is saved as a session (kind ``students``) as it runs."""
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
            recorder = SessionRecorder(store, SESSION_KIND, f"student-side class {code}", config).open()
        room = Room(k, self.readout(model), model=model, code=code, recorder=recorder)
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
            "labels": list(EMOTIONS),
            "face_threshold": FACE_THRESHOLD,
            "crop_scale": FER_SIDE_PER_BOX_HEIGHT,
            "min_face_px": readout.min_face_px,
            "min_detail": readout.min_detail,
            "max_side": 640,
            "smoothing": PipelineConfig().smoothing,
            "ort_version": vendor.VERSION,
        }

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.middleware.base import BaseHTTPMiddleware
        from starlette.requests import Request
        from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
        from starlette.routing import Mount, Route, WebSocketRoute
        from starlette.staticfiles import StaticFiles
        from starlette.websockets import WebSocket, WebSocketDisconnect

        page = (STATIC / "student.html").read_text()

        async def student_page(request: Request) -> Response:
            return HTMLResponse(page)

        async def index(request: Request) -> Response:
            return RedirectResponse("/join/")

        async def config(request: Request) -> Response:
            return JSONResponse(self.config(request.query_params.get("class", "")))

        async def face_model(request: Request) -> Response:
            return FileResponse(yunet_path(), media_type="application/octet-stream")

        async def expression_model(request: Request) -> Response:
            name = request.path_params["name"]
            if name not in BROWSER_MODELS:
                return JSONResponse({"error": "unknown model"}, status_code=404)
            return FileResponse(resolve_model(name), media_type="application/octet-stream")

        async def health(request: Request) -> Response:
            return JSONResponse({"ok": True, "rooms": len(self.rooms), "onnxruntime_web": vendor.installed()})

        async def student_socket(ws: WebSocket) -> None:
            await ws.accept()
            code = ws.query_params.get("class", "").strip().upper()
            room = self.rooms.get(code)
            if room is None or room.closed:
                await ws.send_text(json.dumps({"type": "error", "message": f"no open class with the code {code!r}"}))
                await ws.close(4404)
                return
            pseudonym = room.join()
            self._students.setdefault(code, set()).add(ws)
            await ws.send_text(json.dumps({"type": "welcome", "pseudonym": pseudonym, "interval_s": self.interval_s}))
            self._notify(code)
            tokens, refill_at, refused = float(BURST), time.monotonic(), 0
            try:
                while True:
                    message = await ws.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    now = time.monotonic()
                    tokens = min(float(BURST), tokens + (now - refill_at) * RATE_PER_S)
                    refill_at = now
                    try:
                        if tokens < 1:
                            raise ProtocolError(f"more than {RATE_PER_S:g} messages a second")
                        tokens -= 1
                        text = message.get("text")
                        parsed = parse(text if text is not None else message.get("bytes", b""))
                    except ProtocolError as exc:
                        room.refuse()
                        refused += 1
                        if refused >= MAX_REFUSED:  # not a student's page: stop listening to it
                            await ws.close(1008)
                            break
                        await ws.send_text(json.dumps({"type": "refused", "reason": str(exc)}))
                        continue
                    room.apply(pseudonym, parsed)
                    self._notify(code, getattr(parsed, "t", None))
                    if getattr(parsed, "kind", None) == "leave":
                        break
            except WebSocketDisconnect:
                pass
            finally:
                room.leave(pseudonym)
                self._students.get(code, set()).discard(ws)
                self._notify(code)
                with contextlib.suppress(Exception):
                    await ws.close(1000)

        async def teacher_socket(ws: WebSocket) -> None:
            await ws.accept()
            code = ws.path_params["code"].upper()
            room = self.rooms.get(code)
            token = ws.query_params.get("token", "")
            if room is None or not secrets.compare_digest(token, room.teacher_token):
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

        class Headers(BaseHTTPMiddleware):
            async def dispatch(self, request: Request, call_next: Any) -> Response:
                response: Response = await call_next(request)
                response.headers["Content-Security-Policy"] = CSP
                response.headers["X-Content-Type-Options"] = "nosniff"
                response.headers["Referrer-Policy"] = "no-referrer"
                response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
                return response

        return Starlette(
            routes=[
                Route("/", index),
                Route("/join/", student_page),
                Route("/join/{code}", student_page),
                Route("/config.json", config),
                Route("/health", health),
                Route("/models/face.onnx", face_model),
                Route("/models/expression/{name}.onnx", expression_model),
                Mount("/static", StaticFiles(directory=STATIC), name="static"),
                WebSocketRoute("/ws/student", student_socket),
                WebSocketRoute("/ws/teacher/{code}", teacher_socket),
            ],
            middleware=[Middleware(Headers)],
            lifespan=self._lifespan,
        )

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
        self.port = sock.getsockname()[1]
        return sock

    def _uvicorn(self) -> Any:
        import uvicorn

        config = uvicorn.Config(
            self.app(), log_level="warning", ws_max_size=MAX_MESSAGE_BYTES * 4, ws_ping_interval=10, lifespan="on"
        )
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
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--public-url")
    parser.add_argument("--open-class", type=int, metavar="K", help="open one class with this k and print its code")
    args = parser.parse_args(argv)
    try:
        hub = Hub(args.model, args.host, args.port, args.public_url)
        room = hub.open_room(args.open_class) if args.open_class else None
        sock = hub._socket()
    except ClassmoodError as exc:
        print(f"classmood: error: {exc}", file=sys.stderr)
        return 2
    info = {"url": f"http://{hub.host}:{hub.port}", "pid": os.getpid()}
    if room is not None:
        info.update(code=room.code, token=room.teacher_token, join=hub.join_url(room.code))
    print(json.dumps(info), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: setattr(hub._server, "should_exit", True))
    hub._server = hub._uvicorn()
    hub._server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
