"""``SessionStore``: every read and write of sessions, faces and bins, each one short transaction.

Times are stored as ISO-8601 strings in UTC, ``config`` and ``summary`` as JSON text. Only numbers
are stored: no image, crop or embedding; track ids are pseudonyms meaningful only inside their own
session. Class-level numbers read from here go through the k rule (``analytics/privacy.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Table, delete, distinct, func, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from classmood.containers import MoodBin
from classmood.errors import ClassmoodError
from classmood.labels import FACE_COLUMNS
from classmood.store import liveness
from classmood.store.engine import _create_engine, _create_tables, _one_line, _shown, as_url, default_url
from classmood.store.schema import (
    _BIN_INT,
    _FACE_INT,
    _FACE_STR,
    BIN_COLUMNS,
    INTERRUPTED,
    KINDS,
    LATER_COLUMNS,
    LIST_COLUMNS,
    NOTE,
    SESSION_COLUMNS,
    STALE_S,
    STATUSES,
    bins_table,
    faces_table,
    sessions_table,
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
        missing = [c for c in columns if c not in row and c not in LATER_COLUMNS]
        if missing:
            raise ClassmoodError(f"{what} row lacks column(s) {', '.join(missing)}")
        params = {c: _plain(row.get(c)) for c in columns}
        if isinstance(params.get("flags"), list | tuple):
            params["flags"] = ";".join(params["flags"])
        params["session_id"] = session_id
        out.append(params)
    return out


class DatabaseUnavailable(ClassmoodError):
    """The database could not be reached or stayed locked: worth trying again later (``SessionRecorder``)."""


def _owner() -> str:
    return str(liveness.stamp())


def _alive(owner: str | None, heartbeat_at: str | None, now: datetime) -> bool:
    """Whether the process writing a "running" session still exists.

    On this host: that very process (pid and start id, ``liveness``), so a killed container's pid 1
    is not taken for the next container's; where that cannot tell (another host, an old stamp of
    pid 1): a write within ``STALE_S``."""
    stamp = liveness.parse(owner)
    if stamp is None:
        return True  # written before owners were recorded: nothing to judge by
    alive = stamp.alive()
    if alive is not None:
        return alive
    if not heartbeat_at:
        return True
    try:
        return (now - datetime.fromisoformat(heartbeat_at)).total_seconds() < STALE_S
    except ValueError:
        return True


def _loads(text: Any) -> dict[str, Any]:
    """A stored JSON object as a dict: {} for NULL (pandas' NaN too), damaged text or anything but an object."""
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _floor_of(kind: str, config: Mapping[str, Any], stored: Any) -> int | None:
    """A session's k floor: the stored one, else for a student-side class (saved before floors were
    stored) the k it was opened with; None for other sessions."""
    from classmood.analytics.privacy import DEFAULT_MIN_FACES, check_min_faces

    if stored is not None and not (isinstance(stored, float) and math.isnan(stored)):
        return check_min_faces(int(stored))
    if kind != "students":
        return None
    try:
        return check_min_faces(config.get("min_faces", DEFAULT_MIN_FACES))
    except ClassmoodError:
        return DEFAULT_MIN_FACES


def open_store(url: str | None = None) -> SessionStore:
    """Open (and create the tables of) the session database at ``url`` (default: ``default_url()``).

    ``url`` is a SQLAlchemy URL or a plain path to a SQLite file.
    """
    url = as_url(url) if url is not None else default_url()  # "" is refused, never the default
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
            message = f"session database {_shown(self.url)}: {_one_line(exc)}"
            if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
                raise DatabaseUnavailable(message) from exc  # locked, busy, gone: may work later
            raise ClassmoodError(message) from exc

    @staticmethod
    def _require(conn: Connection, session_id: int) -> int | None:
        """Fail with "no session N" unless it exists; returns its k floor."""
        s = sessions_table.c
        found = conn.execute(select(s.kind, s.config, s.k_floor).where(s.id == session_id)).first()
        if found is None:
            raise ClassmoodError(f"no session {session_id}")
        return _floor_of(found.kind, _loads(found.config), found.k_floor)

    # -- writing -------------------------------------------------------------------------------

    def start_session(
        self,
        kind: str,
        source: str,
        config: dict[str, Any] | None = None,
        name: str | None = None,
        k_floor: int | None = None,
    ) -> int:
        """A new session with status "running"; returns its id.

        ``k_floor``: the k promised with the session, which no read goes below; a student-side class
        (kind "students") always has one, by default the k it is opened with (``config["min_faces"]``).
        """
        from classmood.analytics.privacy import check_min_faces

        if kind not in KINDS:
            raise ClassmoodError(f"unknown session kind {kind!r}; one of {', '.join(KINDS)}")
        floor = check_min_faces(k_floor) if k_floor is not None else _floor_of(kind, config or {}, None)
        values = {
            "name": name,
            "kind": kind,
            "source": str(source),
            "status": "running",
            "started_at": _now(),
            "config": _json(config or {}),
            "owner": _owner(),
            "heartbeat_at": _now(),
            "k_floor": floor,
        }
        with self._tx() as conn:
            key = conn.execute(sessions_table.insert().values(**values)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def add_update(
        self, session_id: int, face_rows: Sequence[Mapping[str, Any]], bin_rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """One analysed frame's faces and the bins it closed, in one transaction committed at once.

        A session with a k floor stores its bins below the floor blank (``privacy.blank_below``)."""
        from classmood.analytics.privacy import blank_below

        faces = _rows(session_id, face_rows, FACE_COLUMNS, "face")
        bins = _rows(session_id, bin_rows, BIN_COLUMNS, "mood bin")
        with self._tx() as conn:
            floor = self._require(conn, session_id)
            if floor is not None and bins:
                bins = _rows(session_id, blank_below(bin_rows, floor), BIN_COLUMNS, "mood bin")
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
            select(
                b.session_id,
                func.count().label("bins"),
                func.max(b.start_s).label("last_bin"),
                func.sum(b.frames * b.faces).label("face_frames"),
                func.max(b.tracks).label("bin_tracks"),
            )
            .group_by(b.session_id)
            .subquery()
        )
        query = (
            select(
                *[s[c] for c in SESSION_COLUMNS],
                s.owner,
                s.heartbeat_at,
                s.summary,
                face_stats.c.faces,
                face_stats.c.tracks,
                face_stats.c.last_face,
                bin_stats.c.bins,
                bin_stats.c.last_bin,
                bin_stats.c.face_frames,
                bin_stats.c.bin_tracks,
            )
            .outerjoin(face_stats, face_stats.c.session_id == s.id)
            .outerjoin(bin_stats, bin_stats.c.session_id == s.id)
            .order_by(s.id.desc())
        )
        if session_id is not None:
            query = query.where(s.id == session_id)
        with self._tx() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        now = datetime.now(UTC)
        records = []
        # Built row by row in Python, not patched into a typed frame: a session still open (no summary
        # yet), one a crash left without a summary, or a damaged summary cannot break the list.
        for r in rows:
            faces, tracks = r["faces"] or 0, r["tracks"] or 0
            if r["kind"] == "students":
                # Student-side classes keep no per-face rows: their counts come from the summary (faces
                # present per second, summed; students who joined), else from their bins (the same sum;
                # the most students in one bin), so a list never says "0 faces" for a full class.
                summary = _loads(r["summary"])
                faces = _count(summary.get("faces"), r["face_frames"])
                tracks = _count(summary.get("tracks"), r["bin_tracks"])
            status = r["status"]
            if status == "running" and not _alive(r["owner"], r["heartbeat_at"], now):
                status = INTERRUPTED
            # seconds of input covered: the latest face time or bin start actually observed
            last = [float(v) for v in (r["last_face"], r["last_bin"]) if v is not None]
            records.append(
                {
                    **{c: r[c] for c in SESSION_COLUMNS},
                    "status": status,
                    "faces": int(faces),
                    "tracks": int(tracks),
                    "bins": int(r["bins"] or 0),
                    "duration_s": max(last) if last else 0.0,
                }
            )
        df = pd.DataFrame(records, columns=LIST_COLUMNS)
        df = df.astype({"id": "int64", "faces": "int64", "tracks": "int64", "bins": "int64", "duration_s": "float64"})
        df["name"] = df["name"].astype(object).where(df["name"].notna(), None)
        return df.reset_index(drop=True)

    def list_sessions(self) -> pd.DataFrame:
        """One row per session, newest first, with counts of faces, tracks and bins and the input time covered."""
        return self._overview()

    def session(self, session_id: int) -> dict[str, Any]:
        """The session row; ``config`` and ``summary`` as dicts (empty when not set), ``k_floor`` (None: none)."""
        with self._tx() as conn:
            row = conn.execute(select(sessions_table).where(sessions_table.c.id == session_id)).mappings().first()
        if row is None:
            raise ClassmoodError(f"no session {session_id}")
        out = dict(row)
        out["config"], out["summary"] = _loads(out["config"]), _loads(out["summary"])
        out["k_floor"] = _floor_of(out["kind"], out["config"], out.get("k_floor"))
        if out["status"] == "running" and not _alive(out.get("owner"), out.get("heartbeat_at"), datetime.now(UTC)):
            out["status"] = INTERRUPTED
        out.pop("owner", None)  # host and process id: not shown or exported
        return out

    def min_faces(self, session_id: int) -> int:
        """The k the session was analysed with (its config), or the default."""
        return _own_k(self.session(session_id)["config"])

    def read_k(self, session_id: int, min_faces: int | None = None) -> tuple[int, str | None]:
        """The k a read of this session uses when ``min_faces`` is asked for (None: the session's own k),
        with a note when it was raised to the session's floor (``privacy.floored_k``).

        Every read below (bins, summary, class numbers, export, compare) takes its k from here, so a
        student-side class is never read below the k its students were promised, by any route."""
        from classmood.analytics.privacy import floored_k

        meta = self.session(session_id)
        return floored_k(min_faces, _own_k(meta["config"]), meta["k_floor"])

    def faces(self, session_id: int) -> pd.DataFrame:
        """Analysed faces, columns exactly FACE_COLUMNS, ordered by frame."""
        types = {k: "int64" if k in _FACE_INT else "float64" for k in FACE_COLUMNS if k not in _FACE_STR}
        return self._read(faces_table, FACE_COLUMNS, "frame", session_id)[0].astype(types)

    def bins(self, session_id: int, min_faces: int | None = None) -> pd.DataFrame:
        """Class-mood bins under the k rule, columns as ``MoodBin.as_row()``, ordered by start time.

        The store keeps each bin's raw numbers (the faces table holds the same information per face);
        class numbers of bins with fewer than k faces (``read_k``: ``min_faces``, default the session's
        own k, never below its floor) are blanked here, by ``privacy.apply_k_rows``, on every read.
        """
        from classmood.analytics.privacy import apply_k_rows

        k, _ = self.read_k(session_id, min_faces)
        return apply_k_rows(self._raw_bins(session_id), k)

    def _raw_bins(self, session_id: int) -> pd.DataFrame:
        """The stored bins; in a session with a floor, those below it blank (also rows stored before floors)."""
        from classmood.analytics.privacy import blank_below

        types = {
            k: "int64" if k in _BIN_INT else "bool" if k == "suppressed" else "float64"
            for k in BIN_COLUMNS
            if k != "flags"
        }
        df, floor = self._read(bins_table, BIN_COLUMNS, "start_s", session_id)
        if floor is not None and len(df):
            df = pd.DataFrame(blank_below(df.to_dict("records"), floor), columns=BIN_COLUMNS)
        df = df.astype(types)
        df["flags"] = df["flags"].fillna("").astype(str)
        return df

    def _read(self, table: Table, columns: list[str], order: str, session_id: int) -> tuple[pd.DataFrame, int | None]:
        """A session's rows of ``table``, and the session's k floor."""
        c = table.c
        query = select(*[c[k] for k in columns]).where(c.session_id == session_id).order_by(c[order], c.id)
        with self._tx() as conn:
            floor = self._require(conn, session_id)
            rows = [tuple(r) for r in conn.execute(query)]
        return pd.DataFrame(rows, columns=columns), floor

    def export(
        self, session_id: int, out_dir: str | Path, fmt: str = "csv", min_faces: int | None = None
    ) -> list[Path]:
        """Write faces.<ext> (per face: the analyst's explicit output), class_mood.<ext> (under the k
        rule, ``read_k``) and session.json to ``out_dir``; returns the paths."""
        if fmt not in ("csv", "parquet"):
            raise ClassmoodError(f"unknown export format {fmt!r}; csv or parquet")
        meta = self.session(session_id)
        meta["summary"] = self.summary(session_id, min_faces)
        tables = {"faces": self.faces(session_id), "class_mood": self.bins(session_id, min_faces)}
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
        """The stored summary's counts and settings with the class numbers recomputed under k (``read_k``);
        ``k_note`` says when the k asked for was raised to the session's floor.

        Class numbers written by older versions (per-face ``shares`` over every face) are dropped.
        """
        stored = self.session(session_id)["summary"]
        kept = {key: v for key, v in stored.items() if key not in ("shares", "uncertain_share", "class", "k_note")}
        _, note = self.read_k(session_id, min_faces)
        return {**kept, "class": self.class_summary(session_id, min_faces), **({"k_note": note} if note else {})}

    def class_summary(self, session_id: int, min_faces: int | None = None) -> dict[str, Any]:
        """Whole-session class numbers (``privacy.class_summary``) from the bins with at least k faces (``read_k``)."""
        from classmood.analytics.privacy import class_summary

        k, _ = self.read_k(session_id, min_faces)
        return class_summary(self.raw_mood_bins(session_id), k)

    def raw_mood_bins(self, session_id: int) -> list[MoodBin]:
        """The stored bins as ``MoodBin``s, before the k rule (for ``analytics``; never shown as they are).

        A session with a floor comes with the bins below it already blank: no caller gets more."""
        return [MoodBin.from_row(r) for r in self._raw_bins(session_id).to_dict("records")]

    def compare(self, a: int, b: int, min_faces: int | None = None) -> pd.DataFrame:
        """Per metric (share_<emotion>, valence, faces): value in ``a``, in ``b`` and ``b - a``
        (``analytics.compare``); class numbers only from bins with at least k faces (``read_k`` per
        session: ``min_faces``, default each session's own, never below a floor). ``attrs["k_notes"]``
        holds the note of each session whose k was raised to its floor."""
        from classmood.analytics.compare import compare

        k_a, note_a = self.read_k(a, min_faces)
        k_b, note_b = self.read_k(b, min_faces)
        df = compare(self.raw_mood_bins(a), self.raw_mood_bins(b), k_a, k_b, NOTE)
        notes = {sid: note for sid, note in ((a, note_a), (b, note_b)) if note}
        df.attrs.update(a=a, b=b, k_notes=notes)
        return df


def _own_k(config: Mapping[str, Any]) -> int:
    """The k a session was analysed with (its config's ``min_faces``), or the default."""
    from classmood.analytics.privacy import DEFAULT_MIN_FACES, check_min_faces

    try:
        return check_min_faces(config.get("min_faces", DEFAULT_MIN_FACES))
    except ClassmoodError:
        return DEFAULT_MIN_FACES


def _count(stored: Any, fallback: Any) -> int:
    """A count from a summary when it is a number, else from the rows (None: 0)."""
    for value in (stored, fallback):
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return round(value)
    return 0
