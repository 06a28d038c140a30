"""The session database's tables: sessions, their analysed faces and their mood bins (numbers only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

from classmood.containers import NOTE as EXPRESSION_NOTE
from classmood.labels import EMOTIONS, FACE_COLUMNS, WORD_COLUMNS

# The same columns as MoodBin.as_row() (the tests check); spelled out here so opening the store
# does not import the vision pipeline.
BIN_COLUMNS: list[str] = [
    "start_s",
    "end_s",
    "frames",
    "faces",
    "faces_read",
    "tracks",
    "suppressed",
    *[f"share_{e}" for e in EMOTIONS],
    *[f"p_{e}" for e in EMOTIONS],
    "valence",
    "mood_sd",
    "negative_share",
    "uncertain_share",
    "valence_change",
    "faces_oriented",
    "facing_share",
    "looking_down_share",
    "flags",
]
# Columns added after sessions were first stored (facing the screen, issue 24): a row written by an
# earlier version lacks them, and they read back empty (the tables gain them on opening, engine.py).
LATER_COLUMNS = frozenset({"yaw", "pitch", "roll", "facing", "faces_oriented", "facing_share", "looking_down_share"})
KINDS = ("camera", "gallery", "upload", "cli", "students")
# "incomplete": the analysis ended but some of its rows could not be written (the database stayed
# locked or unreachable past every retry): what the session holds is less than what was analysed
STATUSES = ("running", "finished", "failed", "stopped", "incomplete")
INTERRUPTED = "interrupted"  # shown, never stored: "running" whose process is gone
# a running session with no sign of life for this long is interrupted when its process cannot be looked
# up (another machine, or an old owner stamp without a start id for pid 1, a container's command)
STALE_S = 900.0
SESSION_COLUMNS = ["id", "name", "kind", "source", "status", "started_at", "ended_at"]
LIST_COLUMNS = [*SESSION_COLUMNS, "faces", "tracks", "bins", "duration_s"]
# The one legal note (containers.NOTE), plus what a saved session adds: its ids are pseudonyms.
NOTE = f"{EXPRESSION_NOTE}; track ids are pseudonyms within this session"

metadata = MetaData()

sessions_table = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("ended_at", String(40), nullable=True),
    Column("config", Text, nullable=True),
    Column("summary", Text, nullable=True),
    # who is writing a running session (host:pid:start, ``liveness``) and when it last wrote: a session
    # whose process died (kill -9, a crash, a power cut) is shown as "interrupted", not "running" forever
    Column("owner", String(300), nullable=True),
    Column("heartbeat_at", String(40), nullable=True),
    # the k promised with the session (a student-side class: the k its students were shown before they
    # consented); no read goes below it (``SessionStore.read_k``), and bins below it are stored blank
    Column("k_floor", Integer, nullable=True),
)


def _value_columns(names: Sequence[str], type_of: Callable[[str], Any], required: set[str]) -> list[Column[Any]]:
    """One column per exported field (faces.csv, class_mood.csv), typed by ``type_of``."""
    return [Column(c, type_of(c), nullable=c not in required) for c in names]


_FACE_INT = {"frame", "track_id"}
_FACE_STR = set(WORD_COLUMNS)
faces_table = Table(
    "faces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=False),
    *_value_columns(
        FACE_COLUMNS,
        lambda c: Integer if c in _FACE_INT else String(16) if c in _FACE_STR else Float,
        required={"frame", "time_s", "track_id"},
    ),
    Index("ix_faces_session_frame", "session_id", "frame"),
)

_BIN_INT = {"frames", "tracks"}
_BIN_REQUIRED = {"start_s", "end_s", "frames", "faces", "tracks", "suppressed"}
bins_table = Table(
    "bins",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=False),
    *_value_columns(
        BIN_COLUMNS,
        lambda c: Integer if c in _BIN_INT else Boolean if c == "suppressed" else Text if c == "flags" else Float,
        required=_BIN_REQUIRED,
    ),
    Index("ix_bins_session_start", "session_id", "start_s"),
)
