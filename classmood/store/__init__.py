"""Analysis sessions kept in a database: SQLite by default, any SQLAlchemy URL via ``DATABASE_URL``.

Every live or uploaded analysis in the web app (and ``classmood analyze --save``) is a *session*:
one row in ``sessions`` plus its analysed faces (``faces``) and class-mood bins (``bins``).

Privacy: only numbers are stored — face boxes, detector scores, pseudonymous track ids and
expression probabilities, and the per-bin class aggregates. No image, frame, face crop or
embedding is ever written here. Track ids are pseudonyms that are only meaningful inside one
session: the same id in two sessions is not the same person, and no id links to an identity.
The probabilities describe *apparent* facial expressions, not inner emotional states.

Where the database is: ``default_url()`` — ``DATABASE_URL`` if set (any SQLAlchemy URL, e.g.
``postgresql+psycopg://user@host/db``), else ``CLASSMOOD_DB`` (a file path) as SQLite, else
``~/.classmood/sessions.db``.

Layout: ``schema`` (tables), ``engine`` (URLs, engines, creating and migrating tables), ``store``
(``SessionStore``, every query; ``read_k``: the k of every read, never below a session's floor),
``recorder`` (``SessionRecorder``: the one way to save an analysis, retrying a locked database),
``liveness`` (host:pid:start stamps: whether the writer of a running session or a work folder lives).
"""

from __future__ import annotations

from classmood.store.engine import as_url, default_url
from classmood.store.recorder import NullRecorder, SessionRecorder, recorder_for
from classmood.store.schema import BIN_COLUMNS, FACE_COLUMNS, INTERRUPTED, KINDS, STATUSES
from classmood.store.store import SessionStore, open_store

__all__ = [
    "BIN_COLUMNS",
    "FACE_COLUMNS",
    "INTERRUPTED",
    "KINDS",
    "STATUSES",
    "NullRecorder",
    "SessionRecorder",
    "SessionStore",
    "as_url",
    "default_url",
    "open_store",
    "recorder_for",
]
