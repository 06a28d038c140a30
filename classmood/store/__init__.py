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
"""

from __future__ import annotations

from classmood.store.recorder import AnalysisRecorder
from classmood.store.sessions import (
    BIN_COLUMNS,
    FACE_COLUMNS,
    KINDS,
    STATUSES,
    SessionStore,
    default_url,
    open_store,
    record,
)

__all__ = [
    "BIN_COLUMNS",
    "FACE_COLUMNS",
    "KINDS",
    "STATUSES",
    "AnalysisRecorder",
    "SessionStore",
    "default_url",
    "open_store",
    "record",
]
