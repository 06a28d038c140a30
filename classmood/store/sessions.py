"""The session database: schema, ``SessionStore`` and ``record`` (see the package docstring).

Built on SQLAlchemy Core so the same code runs on SQLite (the default; WAL mode, so the app's
reader and a writer thread do not block each other) and PostgreSQL. Times are stored as ISO-8601
strings in UTC, ``config`` and ``summary`` as JSON text. Only numbers are stored: no image, crop
or embedding; track ids are pseudonyms meaningful only inside their own session.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    distinct,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS, FACE_COLUMNS

if TYPE_CHECKING:
    from classmood.pipeline import Update

# The same columns as MoodBin.as_row() (the tests check); spelled out here so opening the store
# does not import the vision pipeline.
BIN_COLUMNS: list[str] = [
    "start_s",
    "end_s",
    "frames",
    "faces",
    "tracks",
    "suppressed",
    *[f"share_{e}" for e in EMOTIONS],
    *[f"p_{e}" for e in EMOTIONS],
    "valence",
    "negative_share",
    "uncertain_share",
    "valence_change",
    "flags",
]
KINDS = ("camera", "gallery", "upload", "cli")
STATUSES = ("running", "finished", "failed", "stopped")
SESSION_COLUMNS = ["id", "name", "kind", "source", "status", "started_at", "ended_at"]
LIST_COLUMNS = [*SESSION_COLUMNS, "faces", "tracks", "bins", "duration_s"]
NOTE = "apparent facial expressions, not inner emotional states; track ids are pseudonyms within this session"

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
)


def _value_columns(names: Sequence[str], type_of: Callable[[str], Any], required: set[str]) -> list[Column[Any]]:
    """One column per exported field (faces.csv, class_mood.csv), typed by ``type_of``."""
    return [Column(c, type_of(c), nullable=c not in required) for c in names]


_FACE_INT = {"frame", "track_id"}
_FACE_STR = {"emotion"}
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _one_line(exc: BaseException) -> str:
    """The first line of a driver's message, without SQLAlchemy's SQL echo and background link."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(inner).strip() or type(inner).__name__
    return text.splitlines()[0].strip()


def _plain(value: Any) -> Any:
    """Python scalars for the driver: numpy scalars unwrapped, NaN stored as NULL."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _json(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None

    def fallback(obj: Any) -> Any:
        return obj.item() if hasattr(obj, "item") else obj.tolist() if hasattr(obj, "tolist") else str(obj)

    return json.dumps(dict(value), default=fallback)


def _rows(session_id: int, rows: Iterable[Mapping[str, Any]], columns: Sequence[str], what: str) -> list[dict]:
    out = []
    for row in rows:
        missing = [c for c in columns if c not in row]
        if missing:
            raise ClassmoodError(f"{what} row lacks column(s) {', '.join(missing)}")
        params = {c: _plain(row[c]) for c in columns}
        if isinstance(params.get("flags"), list | tuple):
            params["flags"] = ";".join(params["flags"])
        params["session_id"] = session_id
        out.append(params)
    return out


def _shown(url: str | URL) -> str:
    """The URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


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
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
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


def open_store(url: str | None = None) -> SessionStore:
    """Open (and create the tables of) the session database at ``url`` (default: ``default_url()``)."""
    url = url or default_url()
    try:
        engine = _create_engine(url)
        metadata.create_all(engine)
        _add_missing_columns(engine)
    except ImportError as exc:
        raise ClassmoodError(f"session database {_shown(url)} needs a database driver: {exc}") from None
    except (SQLAlchemyError, OSError, ValueError) as exc:
        raise ClassmoodError(f"cannot open session database {_shown(url)}: {_one_line(exc)}") from None
    return SessionStore(engine, url)


class SessionStore:
    """Sessions, their faces and their mood bins; every method is one short transaction (thread-safe)."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    def __repr__(self) -> str:
        return f"SessionStore({_shown(self.url)!r})"

    def close(self) -> None:
        """Release pooled connections (the store reconnects if used again)."""
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            raise ClassmoodError(f"session database {_shown(self.url)}: {_one_line(exc)}") from exc

    @staticmethod
    def _require(conn: Connection, session_id: int) -> None:
        found = conn.execute(select(sessions_table.c.id).where(sessions_table.c.id == session_id)).first()
        if found is None:
            raise ClassmoodError(f"no session {session_id}")

    # -- writing -------------------------------------------------------------------------------

    def start_session(
        self, kind: str, source: str, config: dict[str, Any] | None = None, name: str | None = None
    ) -> int:
        """A new session with status "running"; returns its id."""
        if kind not in KINDS:
            raise ClassmoodError(f"unknown session kind {kind!r}; one of {', '.join(KINDS)}")
        values = {
            "name": name,
            "kind": kind,
            "source": str(source),
            "status": "running",
            "started_at": _now(),
            "config": _json(config or {}),
        }
        with self._tx() as conn:
            key = conn.execute(sessions_table.insert().values(**values)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def add_update(
        self, session_id: int, face_rows: Sequence[Mapping[str, Any]], bin_rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """One analysed frame's faces and the bins it closed, in one transaction committed at once."""
        faces = _rows(session_id, face_rows, FACE_COLUMNS, "face")
        bins = _rows(session_id, bin_rows, BIN_COLUMNS, "mood bin")
        with self._tx() as conn:
            self._require(conn, session_id)
            if faces:
                conn.execute(faces_table.insert(), faces)
            if bins:
                conn.execute(bins_table.insert(), bins)

    def add_bins(self, session_id: int, bin_rows: Sequence[Mapping[str, Any]]) -> None:
        self.add_update(session_id, [], bin_rows)

    def add_faces(self, session_id: int, face_rows: Sequence[Mapping[str, Any]]) -> None:
        self.add_update(session_id, face_rows, [])

    def finish_session(self, session_id: int, summary: dict[str, Any] | None = None, status: str = "finished") -> None:
        """Set the end time and final status; a ``summary`` replaces the stored one (None keeps it)."""
        if status not in STATUSES[1:]:
            raise ClassmoodError(f"unknown final status {status!r}; one of {', '.join(STATUSES[1:])}")
        values: dict[str, Any] = {"status": status, "ended_at": _now()}
        if summary is not None:
            values["summary"] = _json(summary)
        with self._tx() as conn:
            done = conn.execute(update(sessions_table).where(sessions_table.c.id == session_id).values(**values))
            if done.rowcount == 0:
                raise ClassmoodError(f"no session {session_id}")

    def rename(self, session_id: int, name: str) -> None:
        with self._tx() as conn:
            done = conn.execute(
                update(sessions_table).where(sessions_table.c.id == session_id).values(name=name.strip() or None)
            )
            if done.rowcount == 0:
                raise ClassmoodError(f"no session {session_id}")

    def delete(self, session_id: int) -> None:
        """Remove the session with its faces and bins (explicitly; no reliance on FK cascades)."""
        with self._tx() as conn:
            self._require(conn, session_id)
            conn.execute(delete(faces_table).where(faces_table.c.session_id == session_id))
            conn.execute(delete(bins_table).where(bins_table.c.session_id == session_id))
            conn.execute(delete(sessions_table).where(sessions_table.c.id == session_id))

    # -- reading -------------------------------------------------------------------------------

    def _overview(self, session_id: int | None = None) -> pd.DataFrame:
        f, b, s = faces_table.c, bins_table.c, sessions_table.c
        face_stats = (
            select(
                f.session_id,
                func.count().label("faces"),
                func.count(distinct(f.track_id)).label("tracks"),
                func.max(f.time_s).label("last_face"),
            )
            .group_by(f.session_id)
            .subquery()
        )
        bin_stats = (
            select(b.session_id, func.count().label("bins"), func.max(b.start_s).label("last_bin"))
            .group_by(b.session_id)
            .subquery()
        )
        query = (
            select(
                *[s[c] for c in SESSION_COLUMNS],
                face_stats.c.faces,
                face_stats.c.tracks,
                bin_stats.c.bins,
                face_stats.c.last_face,
                bin_stats.c.last_bin,
            )
            .outerjoin(face_stats, face_stats.c.session_id == s.id)
            .outerjoin(bin_stats, bin_stats.c.session_id == s.id)
            .order_by(s.id.desc())
        )
        if session_id is not None:
            query = query.where(s.id == session_id)
        with self._tx() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
        df = pd.DataFrame(rows, columns=[*SESSION_COLUMNS, "faces", "tracks", "bins", "last_face", "last_bin"])
        for c in ("faces", "tracks", "bins"):
            df[c] = df[c].fillna(0).astype("int64")
        # Seconds of input covered: the latest face time or bin start actually observed.
        last = df[["last_face", "last_bin"]].astype("float64")
        df["duration_s"] = last.max(axis=1).fillna(0.0)
        df["id"] = df["id"].astype("int64")
        return df[LIST_COLUMNS].reset_index(drop=True)

    def list_sessions(self) -> pd.DataFrame:
        """One row per session, newest first, with counts of faces, tracks and bins and the input time covered."""
        return self._overview()

    def session(self, session_id: int) -> dict[str, Any]:
        """The session row; ``config`` and ``summary`` as dicts (empty when not set)."""
        with self._tx() as conn:
            row = conn.execute(select(sessions_table).where(sessions_table.c.id == session_id)).mappings().first()
        if row is None:
            raise ClassmoodError(f"no session {session_id}")
        out = dict(row)
        for key in ("config", "summary"):
            out[key] = json.loads(out[key]) if out[key] else {}
        return out

    def faces(self, session_id: int) -> pd.DataFrame:
        """Analysed faces, columns exactly FACE_COLUMNS, ordered by frame."""
        types = {k: "int64" if k in _FACE_INT else "float64" for k in FACE_COLUMNS if k not in _FACE_STR}
        return self._read(faces_table, FACE_COLUMNS, "frame", session_id).astype(types)

    def bins(self, session_id: int) -> pd.DataFrame:
        """Class-mood bins, columns as ``MoodBin.as_row()``, ordered by start time."""
        types = {
            k: "int64" if k in _BIN_INT else "bool" if k == "suppressed" else "float64"
            for k in BIN_COLUMNS
            if k != "flags"
        }
        df = self._read(bins_table, BIN_COLUMNS, "start_s", session_id).astype(types)
        df["flags"] = df["flags"].fillna("").astype(str)
        return df

    def _read(self, table: Table, columns: list[str], order: str, session_id: int) -> pd.DataFrame:
        c = table.c
        query = select(*[c[k] for k in columns]).where(c.session_id == session_id).order_by(c[order], c.id)
        with self._tx() as conn:
            self._require(conn, session_id)
            rows = [tuple(r) for r in conn.execute(query)]
        return pd.DataFrame(rows, columns=columns)

    def export(self, session_id: int, out_dir: str | Path, fmt: str = "csv") -> list[Path]:
        """Write faces.<ext>, class_mood.<ext> and session.json to ``out_dir``; returns the paths."""
        if fmt not in ("csv", "parquet"):
            raise ClassmoodError(f"unknown export format {fmt!r}; csv or parquet")
        meta = self.session(session_id)
        tables = {"faces": self.faces(session_id), "class_mood": self.bins(session_id)}
        out = Path(out_dir)
        paths = []
        try:
            out.mkdir(parents=True, exist_ok=True)
            for stem, df in tables.items():
                path = out / f"{stem}.{fmt}"
                if fmt == "csv":
                    df.to_csv(path, index=False)
                else:
                    df.to_parquet(path, index=False)
                paths.append(path)
            path = out / "session.json"
            path.write_text(json.dumps({**meta, "note": NOTE}, indent=2))
            paths.append(path)
        except ImportError as exc:
            raise ClassmoodError(f"Parquet export needs pyarrow: pip install pyarrow ({exc})") from None
        except OSError as exc:
            raise ClassmoodError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
        return paths

    def _overall(self, session_id: int) -> dict[str, float]:
        """Session-level class numbers from the stored bins, so suppressed bins stay suppressed.

        Shares and valence: the bins' values weighted by their face count (frames x mean faces),
        over bins that were not suppressed, i.e. the per-face mean over the reported part of the
        session. Faces: mean faces per analysed frame over all bins.
        """
        df = self.bins(session_id)
        nan = float("nan")
        shown = df[~df["suppressed"]]
        weight = shown["frames"] * shown["faces"]
        total = float(weight.sum())
        out = {}
        for e in EMOTIONS:
            out[f"share_{e}"] = float((shown[f"share_{e}"] * weight).sum()) / total if total > 0 else nan
        out["valence"] = float((shown["valence"] * weight).sum()) / total if total > 0 else nan
        frames = float(df["frames"].sum())
        out["faces"] = float((df["frames"] * df["faces"]).sum()) / frames if frames > 0 else nan
        return out

    def compare(self, a: int, b: int) -> pd.DataFrame:
        """Per metric (share_<emotion>, valence, faces): value in ``a``, in ``b`` and ``b - a``."""
        first, second = self._overall(a), self._overall(b)
        df = pd.DataFrame({"a": first, "b": second})
        df["difference"] = df["b"] - df["a"]
        df.index.name = "metric"
        df.attrs = {"a": a, "b": b, "note": NOTE}
        return df


def record(store: SessionStore, session_id: int, updates: Iterable[Update]) -> Iterator[Update]:
    """Pass updates through, saving each (faces and closed bins) before it is handed on.

    The session ends "finished" when ``updates`` is exhausted (add the summary afterwards with
    ``store.finish_session(id, summary)``), "stopped" when the consumer closes the generator or
    on Ctrl-C, and "failed" when ``updates`` raises; rows saved before the failure stay.
    """
    try:
        for item in updates:
            store.add_update(session_id, item.face_rows(), [b.as_row() for b in item.bins])
            yield item
    except (GeneratorExit, KeyboardInterrupt):
        with suppress(Exception):
            store.finish_session(session_id, status="stopped")
        raise
    except BaseException:
        with suppress(Exception):
            store.finish_session(session_id, status="failed")
        raise
    store.finish_session(session_id, status="finished")
