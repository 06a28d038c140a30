"""Live analysis off the UI thread: frames in through a one-slot box, updates out as snapshots.

A ``LiveSession`` owns one ``Analyzer`` (so pseudonymous track ids start afresh per session) and
one worker thread. Producers - the webcam callback of ``streamlit-webrtc`` or a screen-capture
feeder - call ``submit(image)``, which never blocks: it puts the frame in a ``LatestFrame`` box,
replacing (dropping) any frame the worker has not taken yet, so analysis falls behind by at most
one frame instead of building a queue. The worker analyses the newest frame whenever the
analyser's rate allows, writes each update to the session store as it is computed, and keeps a
small thread-safe summary for the pages to poll (``snapshot()``) and the latest detections for
drawing boxes on outgoing video (``latest_detections()``).

Frames exist only in memory. Class-level numbers (expression shares, valence, bins, flags, the
summary) go through the k rule of ``analytics/privacy.py`` each time a snapshot is taken, with the
k the page asks for, so a changed k re-applies at once to what is on screen. The session stops
itself when its browser session is gone (``alive``), so a closed tab never leaves a server-side
capture running.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from classmood.analytics.mood import mean_mood
from classmood.analytics.privacy import apply_k, check_min_faces, class_summary, current_facing, current_view
from classmood.analytics.summary import build_summary
from classmood.containers import Detections, Frame, MoodBin, Summary
from classmood.pipeline import Analyzer, PipelineConfig, Update
from classmood.store.recorder import SessionRecorder
from classmood.vision.pose import facing

if TYPE_CHECKING:
    from classmood.store import SessionStore


class LatestFrame:
    """A one-slot mailbox: ``put`` replaces what is there (counting a drop), ``take`` waits for something."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Frame | None = None
        self.put_count = 0
        self.dropped = 0

    def put(self, item: Frame) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.put_count += 1
            self._cond.notify()

    def take(self, timeout: float | None = None) -> Frame | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item


@dataclass(frozen=True)
class LiveSnapshot:
    """What the live panel shows; a copy, safe to read on the UI thread."""

    status: str  # idle, starting, running, stopped, finished, failed
    running: bool
    session_id: Any
    error: str | None
    store_error: str | None
    elapsed_s: float
    received: int
    analysed: int
    dropped: int
    faces_now: int
    min_faces: int
    suppressed: bool  # fewer than min_faces faces read now: no class-level numbers
    shares: dict[str, float] | None  # current top-expression shares (of the faces read)
    # (track id, current expression, facing): a per-face view, shown only when asked for
    tracks: list[tuple[int, str, str]]
    series: list[dict[str, Any]]  # per update: time_s, faces, read, valence (None when fewer than k read)
    bins: list[MoodBin]
    flagged: list[dict[str, Any]]
    uncertain_now: int = 0  # faces now too small, blurred or unclear to read (counted, not read)
    frame_size: tuple[int, int] | None = None  # (width, height) of the newest frame received
    mood_now: float | None = None  # mood score of the faces read now (None below k)
    mood_margin_now: float | None = None  # its 95 % half-width
    class_numbers: dict[str, Any] = field(default_factory=dict)  # privacy.class_summary of the bins so far
    model: str = ""
    started_at: float | None = None  # wall-clock time (epoch seconds) the session started
    tracks_seen: int = 0  # distinct pseudonymous ids so far
    facing_now: dict[str, Any] | None = None  # privacy.current_facing of the faces now (None below k)
    # seconds from the newest analysed frame's arrival to its numbers (waiting for the worker + analysis);
    # the page adds up to its own refresh interval (1 s)
    delay_s: float | None = None

    @property
    def analysed_fps(self) -> float:
        return self.analysed / self.elapsed_s if self.elapsed_s > 0 else 0.0


def flagged_rows(bins: Iterable[MoodBin]) -> list[dict[str, Any]]:
    """The flagged bins as (start, end, flags) rows; the pages word them (``classmood.words``)."""
    return [{"start_s": b.start_s, "end_s": b.end_s, "flags": list(b.flags)} for b in bins if b.flags]


@dataclass
class _State:
    status: str = "idle"
    error: str | None = None
    store_error: str | None = None
    analysed: int = 0
    dets: Detections = field(default_factory=Detections.empty)
    dets_at: float = 0.0
    delay_s: float | None = None  # the newest result: seconds from its frame's arrival to its numbers
    bins: list[MoodBin] = field(default_factory=list)
    faces_total: int = 0
    tracks_seen: set[int] = field(default_factory=set)


class LiveSession:
    """One live analysis: ``start()``, then ``submit(image)`` from any thread, ``snapshot()``, ``stop()``.

    ``store`` (a ``classmood.store.SessionStore``) receives the session, every update's face rows
    and closed bins, and the final summary; ``None`` keeps everything in memory only.
    ``idle_timeout_s``: the session stops itself when no frame arrived for this long (a closed
    browser tab, a page left while streaming). ``alive``: checked every second; when it returns
    False (the browser session that started a server-side capture is gone) the session stops.
    ``heartbeat_s``: how often a running session tells the store it is alive, so that one whose
    process died is shown as interrupted.
    """

    def __init__(
        self,
        kind: str,
        source: str,
        config: PipelineConfig | None = None,
        store: SessionStore | None = None,
        analyzer_factory: Callable[[PipelineConfig], Analyzer] | None = None,
        idle_timeout_s: float = 20.0,
        history_s: float = 600.0,
        detections_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        alive: Callable[[], bool] | None = None,
        heartbeat_s: float = 30.0,
    ) -> None:
        self.kind, self.source = kind, source
        self.config = config or PipelineConfig()
        self.store = store
        self._factory = analyzer_factory or Analyzer
        self.idle_timeout_s, self.history_s, self.detections_ttl_s = idle_timeout_s, history_s, detections_ttl_s
        self._clock = clock
        self._alive = alive
        self.heartbeat_s = heartbeat_s
        self._box = LatestFrame()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state = _State()
        self._series: deque[dict[str, Any]] = deque()
        self._thread: threading.Thread | None = None
        self._feeder: threading.Thread | None = None
        self._t0 = 0.0
        self._last_frame_at = 0.0
        self._ended_at: float | None = None
        self._frame_size: tuple[int, int] | None = None
        self._recorder: SessionRecorder | None = None
        self._started_wall: float | None = None

    @property
    def session_id(self) -> int | None:
        """The saved session's id, once it exists: the app's recorder starts it with the first face."""
        return self._recorder.session_id if self._recorder is not None else None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LiveSession:
        if self._thread is not None:
            return self
        self._t0 = self._last_frame_at = self._clock()
        self._started_wall = time.time()
        self._state.status = "starting"
        if self.store is not None:  # the analysis is still useful on screen without the database
            # lazy: no session is saved until a face is seen (a camera started with nobody in view)
            config = _config_dict(self.config)
            self._recorder = SessionRecorder(self.store, self.kind, self.source, config, lazy=True).open()
            self._state.store_error = self._recorder.error
        self._thread = threading.Thread(target=self._run, name=f"classmood-live-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> LiveSnapshot:
        """Stop and wait for the worker to close the last bin and finish the stored session."""
        self._stop.set()
        for thread in (self._feeder, self._thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
        return self.snapshot()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the worker to end on its own (idle timeout, failed source); True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    # --- producers -------------------------------------------------------------------------

    def submit(self, image: np.ndarray) -> bool:
        """Hand a BGR frame to the worker without waiting; False once the session no longer takes frames."""
        if self._thread is None or self._stop.is_set():
            return False
        now = self._clock()
        self._last_frame_at = now
        self._frame_size = (int(image.shape[1]), int(image.shape[0]))
        self._box.put(Frame(self._box.put_count, now - self._t0, image))
        return True

    def feed(self, frames: Iterable[Frame], max_hz: float | None = None) -> None:
        """Pull frames from a (server-side) source in a thread, at most ``max_hz`` a second."""
        hz = max_hz or (self.config.rate_hz if self.config.rate_hz > 0 else 5.0)

        def pump() -> None:
            iterator = iter(frames)
            try:
                while not self._stop.is_set():
                    t = self._clock()
                    frame = next(iterator, None)
                    if frame is None:
                        break
                    self.submit(frame.image)
                    self._stop.wait(max(0.0, 1.0 / hz - (self._clock() - t)))
            except Exception as exc:
                with self._lock:
                    self._state.error = f"capture failed: {exc}"
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
                self._stop.set()

        self._feeder = threading.Thread(target=pump, name=f"classmood-feed-{self.kind}", daemon=True)
        self._feeder.start()

    # --- consumers -------------------------------------------------------------------------

    def latest_detections(self) -> Detections:
        """The newest analysed faces (boxes in the submitted frames' pixels), empty once stale."""
        with self._lock:
            if self._clock() - self._state.dets_at > self.detections_ttl_s:
                return Detections.empty()
            return self._state.dets

    def snapshot(self, min_faces: int | None = None) -> LiveSnapshot:
        """What the panel shows, under the k rule with ``min_faces`` (default: the session's own k)."""
        k = check_min_faces(self.config.min_faces if min_faces is None else min_faces)
        with self._lock:
            s = self._state
            dets = s.dets
            n = len(dets)
            now = current_view(dets, k)
            turned = facing(dets.pose)
            tracks = [
                (int(t), w or "…", str(f)) for t, w, f in zip(dets.track_id, dets.expressions(), turned, strict=True)
            ]
            series = [p if p["read"] >= k else {**p, "valence": None} for p in self._series]
            bins = apply_k(s.bins, k)
            numbers = {**class_summary(s.bins, k), "facing": self.config.facing}
            end = self._ended_at if self._ended_at is not None else self._clock()
            return LiveSnapshot(
                status=s.status,
                running=self.running,
                session_id=self.session_id,
                error=s.error,
                store_error=s.store_error,
                elapsed_s=max(0.0, end - self._t0) if self._thread is not None else 0.0,
                received=self._box.put_count,
                analysed=s.analysed,
                dropped=self._box.dropped,
                faces_now=n,
                min_faces=k,
                suppressed=now is None,
                shares=None if now is None else now["shares"],
                mood_now=None if now is None else now["valence"],
                mood_margin_now=None if now is None else now["mood_margin"],
                class_numbers=numbers,
                model=self.config.model,
                started_at=self._started_wall,
                tracks_seen=len(s.tracks_seen),
                facing_now=current_facing(dets, k),
                delay_s=s.delay_s,
                tracks=sorted(tracks),
                uncertain_now=int(dets.uncertain.sum()),
                frame_size=self._frame_size,
                series=series,
                bins=bins,
                flagged=flagged_rows(bins),
            )

    # --- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        status = "stopped"
        analyzer: Analyzer | None = None
        try:
            analyzer = self._factory(self.config)
            with self._lock:
                self._state.status = "running"
            checked = beat = self._clock()
            while not self._stop.is_set():
                now = self._clock()
                if self._alive is not None and now - checked >= 1.0:
                    checked = now
                    if not self._alive():  # the browser tab that owns this session is gone
                        break
                if self._recorder is not None and now - beat >= self.heartbeat_s:
                    beat = now
                    self._recorder.save([], [])  # nothing to save: a heartbeat
                frame = self._box.take(timeout=0.2)
                if frame is None:
                    if self.idle_timeout_s and self._clock() - self._last_frame_at > self.idle_timeout_s:
                        break
                    continue
                if not analyzer.due(frame.time_s):
                    continue
                self._publish(analyzer.process(frame))
        except Exception as exc:
            status = "failed"
            with self._lock:
                self._state.error = f"analysis failed: {exc}"
        finally:
            bins: list[MoodBin] = []
            if analyzer is not None:
                try:
                    bins = analyzer.finish()
                except Exception:  # a failing analyser has nothing more to give
                    bins = []
            if bins:
                with self._lock:
                    self._state.bins.extend(bins)
                self._record([], bins)
            with self._lock:
                if self._state.error and status != "failed":
                    status = "failed"
                self._state.status = status
                self._state.dets = Detections.empty()  # stopped: no face is "now" any more
                self._ended_at = self._clock()
            self._finish_store(status)
            self._stop.set()

    def _publish(self, update: Update) -> None:
        dets = update.detections
        rows = update.face_rows()
        n = len(dets)
        valence = mean_mood(dets)  # raw: snapshot() blanks it below k
        point = {"time_s": round(update.frame.time_s, 2), "faces": n, "read": int(dets.read.sum()), "valence": valence}
        with self._lock:
            s = self._state
            s.analysed += 1
            s.dets, s.dets_at = dets, self._clock()
            s.delay_s = s.dets_at - (self._t0 + update.frame.time_s)  # the frame's time is its arrival
            s.bins.extend(update.bins)
            s.faces_total += n
            s.tracks_seen.update(int(t) for t in dets.track_id if t >= 0)
            self._series.append(point)
            while self._series and point["time_s"] - self._series[0]["time_s"] > self.history_s:
                self._series.popleft()
        self._record(rows, update.bins)

    def _record(self, face_rows: list[dict[str, Any]], bins: list[MoodBin]) -> None:
        if self._recorder is None or not (face_rows or bins):
            return
        self._recorder.save(face_rows, bins)
        if self._recorder.error:
            with self._lock:
                self._state.store_error = self._recorder.error

    def summary(self) -> Summary:
        """The stored session summary (``build_summary``, as for ``analyze``): class numbers only under k."""
        with self._lock:
            s = self._state
            end = self._ended_at if self._ended_at is not None else self._clock()
            return build_summary(
                input=self.source,
                kind=self.kind,
                frames=self._box.put_count,
                frames_analysed=s.analysed,
                faces=s.faces_total,
                tracks=len(s.tracks_seen),
                wall_s=end - self._t0,
                detector=self.config.detector,
                model=self.config.model,
                rate_hz=self.config.rate_hz,
                raw_bins=s.bins,
                min_faces=self.config.min_faces,
                facing=self.config.facing,
                frames_dropped=self._box.dropped,
                error=s.error,
            )

    def _finish_store(self, status: str) -> None:
        if self._recorder is None:
            return
        self._recorder.close(status, self.summary())
        if self._recorder.error:
            with self._lock:
                self._state.store_error = self._recorder.error


def _config_dict(config: PipelineConfig) -> dict[str, Any]:
    return {k: v for k, v in vars(config).items() if isinstance(v, str | int | float | bool | type(None))}
