"""The one way to save an analysis as a session: ``SessionRecorder``, a context manager.

Used by ``classmood analyze --save``, the app's uploads and the live worker (and anything else
that analyses): open it once the input is known to be readable, pass every ``Update`` to
``add`` (each analysed frame's faces and the raw bins it closed are committed as they come, so an
interrupted analysis keeps what it did), call ``finish(summary)`` at the end. Leaving the block
closes the session with the status that matches how it ended:

- ``finish`` was called -> "finished" (with the summary);
- an ``Exception`` escaped -> "failed" (the error in the summary; rows saved so far stay);
- anything else escaped (Ctrl-C, SIGTERM's ``Stopped``, a web page being left) -> "stopped".

A database problem never stops the analysis: saving ends and ``error`` says why in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from classmood.containers import MoodBin
    from classmood.pipeline import Update
    from classmood.store.store import SessionStore


class SessionRecorder:
    def __init__(self, store: SessionStore, kind: str, source: str, config: Mapping[str, Any]) -> None:
        self.store: SessionStore | None = store
        self.kind, self.source, self.config = kind, source, dict(config)
        self.session_id: int | None = None
        self.error: str | None = None
        self._summary: dict[str, Any] | None = None
        self._finished = False

    def open(self) -> SessionRecorder:
        """Start the session (what entering the ``with`` block does), for owners that are not one block."""
        return self.__enter__()

    def __enter__(self) -> SessionRecorder:
        assert self.store is not None
        try:
            self.session_id = self.store.start_session(kind=self.kind, source=self.source, config=self.config)
        except Exception as exc:
            self.store, self.error = None, f"not saved as a session: {exc}"
        return self

    def add(self, update: Update) -> None:
        """One analysed frame's faces and the bins it closed (raw: the store applies k when read)."""
        self.save(update.face_rows(), update.bins)

    def save(self, face_rows: list[dict[str, Any]], bins: list[MoodBin]) -> None:
        if self.store is None or self.session_id is None:
            return
        try:
            if face_rows or bins:
                self.store.add_update(self.session_id, face_rows=face_rows, bin_rows=[b.as_row() for b in bins])
            else:
                self.store.heartbeat(self.session_id)
        except Exception as exc:
            self.store, self.error = None, f"saving the session stopped: {exc}"

    def finish(self, summary: Mapping[str, Any] | None = None) -> None:
        """The analysis ran to its end: the session closes as "finished" with ``summary``."""
        self._finished = True
        self._summary = dict(summary) if summary is not None else None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            status, summary = ("finished" if self._finished else "stopped"), self._summary
        elif isinstance(exc, Exception):
            status, summary = "failed", {"error": str(exc)}
        else:  # KeyboardInterrupt, Stopped, a Streamlit page being left: what was saved stays
            status, summary = "stopped", self._summary
        self.close(status, summary)

    def close(self, status: str, summary: Mapping[str, Any] | None = None) -> None:
        """Close the session with ``status`` (what leaving the ``with`` block does); later calls do nothing."""
        if self.store is None or self.session_id is None:
            return
        try:
            self.store.finish_session(self.session_id, summary=dict(summary) if summary else None, status=status)
        except Exception as exc:
            self.error = f"could not close the saved session: {exc}"
        with suppress(Exception):
            self.store = None  # closed: later calls do nothing
