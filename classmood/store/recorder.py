"""Save a ``classmood.analysis.analyze.analyze`` run as a session while it runs (the app's uploads, ``analyze --save``).

Pass ``recorder.on_update`` as ``analyze``'s ``on_update``: each analysed frame's faces and every
mood bin it closes are committed as they are computed, so an interrupted analysis keeps what it
did. Then call ``finish(result)`` (the last bin and the summary), ``failed(error)`` or
``stopped()``. A database problem never stops the analysis: saving ends and ``error`` says why
in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from classmood.pipeline import AnalysisResult, Update
    from classmood.store.sessions import SessionStore


class AnalysisRecorder:
    def __init__(self, store: SessionStore, kind: str, source: str, config: dict[str, Any]) -> None:
        self.store: SessionStore | None = store
        self.error: str | None = None
        self.session_id: int | None = None
        self._bins_saved = 0
        try:
            self.session_id = store.start_session(kind=kind, source=source, config=config)
        except Exception as exc:
            self.store, self.error = None, f"not saved as a session: {exc}"

    def on_update(self, update: Update, done: float | None = None) -> None:
        self._bins_saved += len(update.bins)
        self._save(update.face_rows(), [b.as_row() for b in update.bins])

    def finish(self, result: AnalysisResult) -> None:
        # raw bins (the store applies k when it is read); the last one closes at the end of the input
        self._save([], [b.as_row() for b in result.raw_bins[self._bins_saved :]])
        self._end(result.summary, "finished")

    def failed(self, error: BaseException) -> None:
        self._end({"error": str(error)}, "failed")

    def stopped(self) -> None:
        self._end(None, "stopped")

    def _save(self, face_rows: list[dict[str, Any]], bin_rows: list[dict[str, object]]) -> None:
        if self.store is None or self.session_id is None or not (face_rows or bin_rows):
            return
        try:
            self.store.add_update(self.session_id, face_rows=face_rows, bin_rows=bin_rows)
        except Exception as exc:
            self.store, self.error = None, f"saving the session stopped: {exc}"

    def _end(self, summary: dict[str, Any] | None, status: str) -> None:
        if self.store is None or self.session_id is None:
            return
        try:
            self.store.finish_session(self.session_id, summary=summary, status=status)
        except Exception as exc:
            self.error = f"could not close the saved session: {exc}"
