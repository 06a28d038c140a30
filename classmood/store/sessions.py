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
import socket
import time
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
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
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
INTERRUPTED = "interrupted"  # shown, never stored: "running" whose process is gone
STALE_S = 900.0  # a running session on another machine with no sign of life for this long is interrupted
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
    # who is writing a running session (host:pid) and when it last wrote: a session whose process
    # died (kill -9, a crash, a power cut) is then shown as "interrupted" instead of "running" forever
    Column("owner", String(300), nullable=True),
    Column("heartbeat_at", String(40), nullable=True),
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


def as_url(given: str) -> str:
    """A SQLAlchemy URL as given, or a plain path (``sessions.db``, ``~/s.db``) as a SQLite URL."""
    text = given.strip()
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().absolute()}"


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(owner: str | None, heartbeat_at: str | None, now: datetime) -> bool:
    """Whether the process writing a "running" session still exists (same host: its pid; else a recent write)."""
    if not owner:
        return True  # written before owners were recorded: nothing to judge by
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if not heartbeat_at:
        return True
    try:
        return (now - datetime.fromisoformat(heartbeat_at)).total_seconds() < STALE_S
    except ValueError:
        return True


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


def _create_tables(engine: Engine) -> None:
    """Create missing tables; two processes opening a new SQLite file at once both see no table and
    race to create it ("table ... already exists"), so the loser looks again."""
    for attempt in range(5):
        try:
            metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            if ("already exists" not in str(exc) and "duplicate" not in str(exc).lower()) or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def open_store(url: str | None = None) -> SessionStore:
    """Open (and create the tables of) the session database at ``url`` (default: ``default_url()``).

    ``url`` is a SQLAlchemy URL or a plain path to a SQLite file.
    """
    url = as_url(url) if url else default_url()
    try:
        engine = _create_engine(url)
        _create_tables(engine)
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
            "owner": _owner(),
            "heartbeat_at": _now(),
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
            self._beat(conn, session_id)

    def heartbeat(self, session_id: int) -> None:
        """Say that the process writing this running session is alive (a live session with no face to save)."""
        with self._tx() as conn:
            self._beat(conn, session_id)

    @staticmethod
    def _beat(conn: Connection, session_id: int) -> None:
        conn.execute(update(sessions_table).where(sessions_table.c.id == session_id).values(heartbeat_at=_now()))

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
                s.owner,
                s.heartbeat_at,
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
        df = pd.DataFrame(
            rows,
            columns=[*SESSION_COLUMNS, "owner", "heartbeat_at", "faces", "tracks", "bins", "last_face", "last_bin"],
        )
        now = datetime.now(UTC)
        gone = [
            status == "running" and not _alive(owner, beat, now)
            for status, owner, beat in zip(df["status"], df["owner"], df["heartbeat_at"], strict=True)
        ]
        df.loc[pd.Series(gone, index=df.index, dtype=bool), "status"] = INTERRUPTED
        df["name"] = df["name"].astype(object).where(df["name"].notna(), None)
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
        if out["status"] == "running" and not _alive(out.get("owner"), out.get("heartbeat_at"), datetime.now(UTC)):
            out["status"] = INTERRUPTED
        out.pop("owner", None)  # host and process id: not shown or exported
        return out

    def min_faces(self, session_id: int) -> int:
        """The k the session was analysed with (its config), or the default."""
        from classmood.analytics.privacy import DEFAULT_MIN_FACES, check_min_faces

        value = self.session(session_id)["config"].get("min_faces", DEFAULT_MIN_FACES)
        try:
            return check_min_faces(value)
        except ClassmoodError:
            return DEFAULT_MIN_FACES

    def faces(self, session_id: int) -> pd.DataFrame:
        """Analysed faces, columns exactly FACE_COLUMNS, ordered by frame."""
        types = {k: "int64" if k in _FACE_INT else "float64" for k in FACE_COLUMNS if k not in _FACE_STR}
        return self._read(faces_table, FACE_COLUMNS, "frame", session_id).astype(types)

    def bins(self, session_id: int, min_faces: int | None = None) -> pd.DataFrame:
        """Class-mood bins under the k rule, columns as ``MoodBin.as_row()``, ordered by start time.

        The store keeps each bin's raw numbers (the faces table holds the same information per face);
        class numbers of bins with fewer than ``min_faces`` faces (default: the session's own k)
        are blanked here, by ``privacy.apply_k_rows``, on every read.
        """
        from classmood.analytics.privacy import apply_k_rows

        k = self.min_faces(session_id) if min_faces is None else min_faces
        return apply_k_rows(self._raw_bins(session_id), k)

    def _raw_bins(self, session_id: int) -> pd.DataFrame:
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

    def export(
        self, session_id: int, out_dir: str | Path, fmt: str = "csv", min_faces: int | None = None
    ) -> list[Path]:
        """Write faces.<ext> (per face: the analyst's explicit output), class_mood.<ext> (under the k
        rule) and session.json to ``out_dir``; returns the paths."""
        if fmt not in ("csv", "parquet"):
            raise ClassmoodError(f"unknown export format {fmt!r}; csv or parquet")
        meta = self.session(session_id)
        k = self.min_faces(session_id) if min_faces is None else min_faces
        meta["summary"] = self.summary(session_id, k)
        tables = {"faces": self.faces(session_id), "class_mood": self.bins(session_id, k)}
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

    def summary(self, session_id: int, min_faces: int | None = None) -> dict[str, Any]:
        """The stored summary's counts and settings with the class numbers recomputed under k (``min_faces``).

        Class numbers written by older versions (per-face ``shares`` over every face) are dropped.
        """
        stored = self.session(session_id)["summary"]
        kept = {key: v for key, v in stored.items() if key not in ("shares", "uncertain_share", "class")}
        return {**kept, "class": self.class_summary(session_id, min_faces)}

    def class_summary(self, session_id: int, min_faces: int | None = None) -> dict[str, Any]:
        """Whole-session class numbers (``privacy.class_summary``) from the bins with at least k faces."""
        from classmood.analytics.mood import MoodBin
        from classmood.analytics.privacy import class_summary

        k = self.min_faces(session_id) if min_faces is None else min_faces
        raw = [MoodBin.from_row(r) for r in self._raw_bins(session_id).to_dict("records")]
        return class_summary(raw, k)

    def _overall(self, session_id: int, min_faces: int | None) -> dict[str, float]:
        """Session-level class numbers for ``compare``: the k rule's class summary, plus the mean face count."""
        nan = float("nan")
        summary = self.class_summary(session_id, min_faces)
        shares = summary["shares"] or {}
        out = {f"share_{e}": float(shares.get(e, nan)) for e in EMOTIONS}
        out["valence"] = nan if summary["valence"] is None else float(summary["valence"])
        df = self._raw_bins(session_id)
        frames = float(df["frames"].sum())
        out["faces"] = float((df["frames"] * df["faces"]).sum()) / frames if frames > 0 else nan
        return out

    def compare(self, a: int, b: int, min_faces: int | None = None) -> pd.DataFrame:
        """Per metric (share_<emotion>, valence, faces): value in ``a``, in ``b`` and ``b - a``.

        Class numbers come only from bins with at least k faces (``min_faces``, default each session's own).
        """
        first, second = self._overall(a, min_faces), self._overall(b, min_faces)
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
