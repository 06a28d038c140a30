"""The one way to save an analysis as a session: ``SessionRecorder``, a context manager.

Used by ``classmood analyze --save``, the app's uploads and the live worker (and anything else
that analyses): open it once the input is known to be readable, pass every ``Update`` to
``add`` (each analysed frame's faces and the raw bins it closed are committed as they come, so an
interrupted analysis keeps what it did), call ``finish(summary)`` at the end. Leaving the block
closes the session with the status that matches how it ended:

- ``finish`` was called -> "finished" (with the summary);
- an ``Exception`` escaped -> "failed" (the error in the summary; rows saved so far stay);
- anything else escaped (Ctrl-C, SIGTERM's ``Stopped``, a web page being left) -> "stopped".

A database problem never stops the analysis. A database that is locked or unreachable for a while
(another writer holding SQLite, a PostgreSQL restart) is retried with bounded backoff: the rows
wait in memory (up to ``MAX_PENDING_FACES`` face rows) and go in with the next write that succeeds,
and closing waits up to ``CLOSE_BUDGET_S`` for what is still pending. Rows that could not be
written make the session "incomplete" (``summary["incomplete"]`` says how many), and ``error``
says so in one line; any other database error ends saving at once, with ``error`` saying why.
A session that cannot even be closed shows as "interrupted" once its process has ended.

``lazy=True`` (the app's live pages, uploads and student-side classes, which save without being
asked each time) starts the session only when the first face arrives, holding the empty bins
before it in memory: a camera started and stopped with nobody in view, or a class no student
joined, leaves no empty session behind. ``classmood analyze --save`` asked for a session and gets
one even for an input without faces.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from classmood.errors import is_failure

if TYPE_CHECKING:
    from classmood.containers import MoodBin
    from classmood.pipeline import Update
    from classmood.store.store import SessionStore

RETRY_FIRST_S, RETRY_MAX_S = 0.5, 8.0  # the wait before the next try, doubling, while the database is unavailable
CLOSE_BUDGET_S = 30.0  # how long closing keeps trying to write what is pending (each try waits up to 30 s on SQLite)
MAX_PENDING_FACES = 50_000  # face rows held in memory while the database is unavailable (~50 MB); more are lost


class SessionRecorder:
    def __init__(
        self, store: SessionStore, kind: str, source: str, config: Mapping[str, Any], lazy: bool = False
    ) -> None:
        self.store: SessionStore | None = store
        self.lazy = lazy
        self.kind, self.source, self.config = kind, source, dict(config)
        self.session_id: int | None = None
        self.error: str | None = None
        self._summary: dict[str, Any] | None = None
        self._finished = False
        self._closer: SessionStore | None = None  # the store to close the session with, even after saving stopped
        self._faces: list[dict[str, Any]] = []  # rows waiting for an unavailable database
        self._bins: list[MoodBin] = []
        self._seen_faces = self._lost_faces = self._lost_bins = 0
        self._trouble: str | None = None  # the last reason the database was unavailable
        self._lost_reason: str | None = None  # why the rows counted as lost could not be kept
        self._close_unavailable = False  # closing failed because the database stayed unavailable
        self._delay, self._next_try = RETRY_FIRST_S, 0.0

    def open(self) -> SessionRecorder:
        """Start the session (what entering the ``with`` block does), for owners that are not one block."""
        return self.__enter__()

    def __enter__(self) -> SessionRecorder:
        assert self.store is not None
        self._closer = self.store
        if not self.lazy:
            self._start()
        return self

    def _start(self) -> None:
        assert self.store is not None
        try:
            self.session_id = self.store.start_session(kind=self.kind, source=self.source, config=self.config)
        except Exception as exc:
            self.store, self._closer, self.error = None, None, f"not saved as a session: {exc}"

    @property
    def pending(self) -> int:
        """Face rows and bins analysed but not yet in the database (it is unavailable, being retried)."""
        return len(self._faces) + len(self._bins)

    def add(self, update: Update) -> None:
        """One analysed frame's faces and the bins it closed (raw: the store applies k when read)."""
        self.save(update.face_rows(), update.bins)

    def save(self, face_rows: list[dict[str, Any]], bins: list[MoodBin]) -> None:
        """Write ``face_rows`` and ``bins`` (with any still pending), or keep them for the next try."""
        if self._closer is None:
            return  # not saving: the session never opened, or it is closed
        if self.session_id is None:  # lazy: no session before the first face
            if not (face_rows or any(b.faces > 0 for b in bins)):
                self._bins.extend(bins)
                return
            self._start()
            if self.session_id is None:
                self._bins = []
                return
        self._seen_faces += len(face_rows)
        if self.store is None:  # saving stopped on a lasting error: what comes now is lost
            self._lost_faces, self._lost_bins = self._lost_faces + len(face_rows), self._lost_bins + len(bins)
            return
        room = max(0, MAX_PENDING_FACES - len(self._faces))
        if len(face_rows) > room:  # the database has been unavailable for too many rows
            self._lost_faces += len(face_rows) - room
            self._lost_reason = self._lost_reason or self._trouble
        self._faces.extend(face_rows[:room])
        self._bins.extend(bins)
        if time.monotonic() >= self._next_try:
            self._flush()

    def _flush(self) -> bool:
        """One try at writing what is pending (a heartbeat when nothing is); whether it went in."""
        from classmood.store.store import DatabaseUnavailable

        if self.store is None or self.session_id is None:
            return False
        try:
            if self._faces or self._bins:
                rows = [b.as_row() for b in self._bins]
                self.store.add_update(self.session_id, face_rows=self._faces, bin_rows=rows)
            else:
                self.store.heartbeat(self.session_id)
        except DatabaseUnavailable as exc:  # locked, busy, unreachable: try again after a pause
            self._trouble = str(exc)
            self._next_try = time.monotonic() + self._delay
            self._delay = min(2 * self._delay, RETRY_MAX_S)
            return False
        except Exception as exc:
            self._lost_faces, self._lost_bins = self._lost_faces + len(self._faces), self._lost_bins + len(self._bins)
            self._faces, self._bins = [], []
            self.store, self.error = None, f"saving the session stopped: {exc}"
            return False
        self._faces, self._bins = [], []
        self._trouble, self._delay, self._next_try = None, RETRY_FIRST_S, 0.0
        return True

    def finish(self, summary: Mapping[str, Any] | None = None) -> None:
        """The analysis ran to its end: the session closes as "finished" with ``summary``."""
        self._finished = True
        self._summary = dict(summary) if summary is not None else None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            status, summary = ("finished" if self._finished else "stopped"), self._summary
        elif is_failure(exc):
            status, summary = "failed", {"error": str(exc)}
        else:  # KeyboardInterrupt, Stopped, a Streamlit page being left: what was saved stays
            status, summary = "stopped", self._summary
        self.close(status, summary)

    def close(self, status: str, summary: Mapping[str, Any] | None = None) -> None:
        """Close the session with ``status`` (what leaving the ``with`` block does); later calls do nothing.

        What is pending is written first, retried for up to ``CLOSE_BUDGET_S``; if rows are still
        missing, a session that would have been "finished" or "stopped" becomes "incomplete"."""
        closer, self._closer = self._closer, None
        if closer is None or self.session_id is None:  # never opened, or lazy and no face ever came
            self._bins, self.store = [], None
            return
        deadline = time.monotonic() + CLOSE_BUDGET_S
        while self.store is not None and self.pending and not self._flush():
            wait = self._next_try - time.monotonic()
            if time.monotonic() + max(wait, 0.0) >= deadline:
                break
            time.sleep(max(wait, 0.0))
        missing = self._missing()
        summary = dict(summary) if summary else None
        if missing:
            status = "incomplete" if status in ("finished", "stopped") else status
            summary = {**(summary or {}), "incomplete": missing}
        self.store = None  # closed: later saves do nothing
        closed = self._finish_session(closer, status, summary, deadline)
        if missing:
            what = f"{missing['face_rows_lost']} of {missing['face_rows']} face rows"
            what += f" and {missing['bins_lost']} time bins" if missing["bins_lost"] else ""
            state = (
                "is incomplete"
                if closed
                else "could not be closed either (it shows as interrupted once this process ends)"
                if self._close_unavailable
                else f"could not be closed either ({self._trouble})"
            )
            self.error = f"session {self.session_id} {state}: {what} could not be saved ({missing['reason']})"
        elif not closed and self.error is None:
            self.error = f"could not close the saved session {self.session_id} ({self._trouble})"

    def _missing(self) -> dict[str, Any] | None:
        """What the session lacks of what was analysed (None: nothing), for its summary and ``error``."""
        lost, lost_bins = self._lost_faces + len(self._faces), self._lost_bins + len(self._bins)
        if not lost and not lost_bins:
            return None
        return {
            "face_rows": self._seen_faces,
            "face_rows_lost": lost,
            "bins_lost": lost_bins,
            "reason": self.error or self._lost_reason or self._trouble or "the database was unavailable",
        }

    def _finish_session(
        self, store: SessionStore, status: str, summary: dict[str, Any] | None, deadline: float
    ) -> bool:
        """``finish_session``, retried with backoff until ``deadline`` (at least once); whether it went in."""
        from classmood.store.store import DatabaseUnavailable

        delay = RETRY_FIRST_S
        while True:
            try:
                store.finish_session(self.session_id or 0, summary=summary, status=status)
                return True
            except DatabaseUnavailable as exc:
                self._trouble, self._close_unavailable = str(exc), True
                if time.monotonic() + delay >= deadline:
                    return False
                time.sleep(delay)
                delay = min(2 * delay, RETRY_MAX_S)
            except Exception as exc:  # e.g. the session was deleted meanwhile
                self._trouble, self._close_unavailable = str(exc), False
                return False


class NullRecorder:
    """``SessionRecorder``'s calls with nothing saved, so code that analyses has one path whether or not
    a session is kept (``recorder_for``) instead of "a recorder or nullcontext" and ``if recorder``."""

    session_id: int | None = None
    error: str | None = None

    def __enter__(self) -> NullRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def add(self, update: Update) -> None:
        """Nothing to save."""

    def finish(self, summary: Mapping[str, Any] | None = None) -> None:
        """Nothing to close."""


def recorder_for(
    store: SessionStore | None, kind: str, source: str, config: Mapping[str, Any], lazy: bool = False
) -> SessionRecorder | NullRecorder:
    """A ``SessionRecorder`` saving to ``store``, or a ``NullRecorder`` when there is no store."""
    return NullRecorder() if store is None else SessionRecorder(store, kind, source, config, lazy=lazy)
