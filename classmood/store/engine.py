"""Opening a session database: URLs and plain paths, engines for SQLite and PostgreSQL, tables and migrations.

SQLite runs in WAL mode, so the app's reader and a writer thread do not block each other.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from classmood.errors import ClassmoodError
from classmood.store.schema import bins_table, faces_table, metadata, sessions_table


def _one_line(exc: BaseException) -> str:
    """The first line of a driver's message, without SQLAlchemy's SQL echo and background link."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(inner).strip() or type(inner).__name__
    return text.splitlines()[0].strip()


def _shown(url: str | URL) -> str:
    """The URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def check_db(given: str | None) -> str | None:
    """A ``--db`` value as given, None when not given, or a one-line error when it is empty.

    ``--db ''`` (an unset shell variable, a template left blank) must not quietly mean the default
    database: the sessions would go where the user did not say, or be read from there."""
    if given is not None and not given.strip():
        raise ClassmoodError(
            "--db is empty: give a SQLite file path or a SQLAlchemy URL, or leave --db out for the default database"
        )
    return given


def as_url(given: str) -> str:
    """A SQLAlchemy URL as given, or a plain path (``sessions.db``, ``~/s.db``) as a SQLite URL."""
    text = check_db(given) or ""
    text = text.strip()
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().absolute()}"


def default_url() -> str:
    """``DATABASE_URL`` if set, else SQLite at ``CLASSMOOD_DB`` (a path), else ``~/.classmood/sessions.db``."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    given = os.environ.get("CLASSMOOD_DB", "").strip()
    path = Path(given).expanduser() if given else Path.home() / ".classmood" / "sessions.db"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ClassmoodError(f"cannot create {path.parent} for the session database: {exc.strerror or exc}") from None
    return f"sqlite:///{path.absolute()}"


BUSY_TIMEOUT_S = 30.0  # how long one SQLite statement waits for another writer's lock before "database is locked"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _create_engine(url: str) -> Engine:
    if url.startswith("postgres://"):  # the spelling Heroku and others hand out
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
        if memory:
            kwargs["poolclass"] = StaticPool  # one shared connection, or each thread sees its own empty DB
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True
        if backend == "postgresql" and "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": 10}
    engine = create_engine(parsed, **kwargs)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Columns added to the schema since a database was created (e.g. ``uncertain_share``), as NULLs.

    Additive only: older rows keep their values and read back with the new columns empty.
    """
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    for table in (faces_table, bins_table, sessions_table):
        present = {c["name"] for c in inspector.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in present]
        if not missing:
            continue
        with engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


RACES = ("already exists", "duplicate", "database is locked")  # what a concurrent first use can raise
ATTEMPTS = 10


def _create_tables(engine: Engine) -> None:
    """Create missing tables. Processes opening a new SQLite file at once race: both see no table and
    create it ("table ... already exists"), or one finds the file locked while another switches it to
    WAL or creates the tables ("database is locked", which SQLite reports without waiting). The loser
    waits a little and looks again."""
    for attempt in range(ATTEMPTS):
        try:
            metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            if not any(r in str(exc).lower() for r in RACES) or attempt == ATTEMPTS - 1:
                raise
            engine.dispose()  # a connection that failed half-way is not reused
            time.sleep(0.05 * (attempt + 1))
