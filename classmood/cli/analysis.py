"""Video commands: ``analyze`` an input (files, session) and the saved ``sessions``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classmood.errors import ClassmoodError
from classmood.weights.shipped import MODEL_NAMES, PRECISIONS

if TYPE_CHECKING:
    from classmood.store import SessionStore

MAX_K = 1_000_000  # no class has more faces; a larger k is a typo (and would not fit a database integer)
MAX_ID = 2**63 - 1  # session ids are database integers


def _session_id(text: str) -> int:
    """A session id for argparse: a whole number from 1 (a larger one would overflow the database's integer)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a session id is a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"no session has id {text} (ids are whole numbers from 1)")
    return value


def _named(option: str, value: str | None) -> None:
    """Refuse an option given as an empty string: ``--out ''`` would write nowhere (and say so only in
    passing), ``--model ''`` would quietly load the default model."""
    if value is not None and not value.strip():
        raise ClassmoodError(f"{option} '' names nothing; give a {'folder' if option == '--out' else 'name or path'}")


def _check_k(k: int | None) -> None:
    """Refuse a k no class can reach before anything runs (a database would overflow on it mid-run)."""
    if k is not None and k > MAX_K:
        raise ClassmoodError(f"--min-faces {k} is more faces than any class has (at most {MAX_K:,})")


# The options that set a PipelineConfig field (option dest -> field). Each defaults to None, which
# means "the config's default": the CLI never repeats PipelineConfig's values, and its help names
# them through _ConfigDefaults.
CONFIG_OPTIONS = {
    "detector": "detector",
    "model": "model",
    "precision": "precision",
    "rate": "rate_hz",
    "bin": "bin_s",
    "min_faces": "min_faces",
    "facing": "facing",
}


class _ConfigDefaults(argparse.HelpFormatter):
    """Help texts whose ``{default}`` is PipelineConfig's own default for that option, looked up only
    when help is shown (importing the pipeline takes half a second; the CLI starts in 40 ms)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text and "{default}" in text and action.dest in CONFIG_OPTIONS:
            from classmood.pipeline import PipelineConfig

            text = text.replace("{default}", str(getattr(PipelineConfig(), CONFIG_OPTIONS[action.dest])))
        return text


def _pipeline_options(p: argparse.ArgumentParser) -> None:
    """The settings analyze and batch share: detector, model, rate, bin, k, and saving as sessions."""
    p.formatter_class = _ConfigDefaults
    p.add_argument("--detector", help="libface (fast) or mtcnn (accurate); default {default}")
    p.add_argument(
        "--model", help=f"expression model: {' or '.join(MODEL_NAMES)} (shipped) or an .onnx path; default {{default}}"
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="a shipped model's int8 copy (1.9-2.6x faster, same accuracy) or its float file; default {default}",
    )
    p.add_argument("--rate", type=float, help="analysed frames per second of input (0 = all; default {default})")
    p.add_argument("--bin", type=float, help="class-mood time bin in seconds (default {default})")
    p.add_argument(
        "--min-faces",
        type=int,
        help="k: class-level numbers only from time bins with at least k faces (default {default}; at least 1)",
    )
    p.add_argument(
        "--no-facing",
        dest="facing",
        action="store_false",
        default=None,
        help="estimate no head orientation: no facing-the-screen numbers, per face or per class",
    )
    p.add_argument("--save", action="store_true", help="also save as sessions (DATABASE_URL or CLASSMOOD_DB)")
    p.add_argument(
        "--db", help="with --save: SQLite file path or SQLAlchemy URL; many writers need PostgreSQL (DATABASE_URL)"
    )


def _config(args: argparse.Namespace, **extra: Any) -> Any:
    from classmood.pipeline import PipelineConfig
    from classmood.store.engine import check_db

    if check_db(args.db) is not None and not args.save:
        raise ClassmoodError("--db names the session database for --save; add --save")
    _check_k(args.min_faces)
    for option in ("out", "model", "detector"):
        _named(f"--{option}", getattr(args, option, None))
    given = {field: getattr(args, dest) for dest, field in CONFIG_OPTIONS.items() if getattr(args, dest) is not None}
    return PipelineConfig(**given, **extra)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("analyze", help="faces, tracks and class mood of an image, folder, video, webcam or screen")
    p.add_argument("input", help="image, folder of images, video file, webcam:N, or screen / screen:N / screen:X,Y,W,H")
    p.add_argument("--out", required=True, help="output folder for faces.csv, class_mood.csv, summary.json")
    _pipeline_options(p)
    p.add_argument(
        "--annotate",
        action="store_true",
        help="also write annotated.mp4 (video inputs: faces boxed and labelled) and report.html (charts)",
    )
    p.add_argument(
        "--per-track",
        action="store_true",
        help="with --annotate: add per-person timelines and a per-track table to report.html (singles people out)",
    )
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser(
        "batch", help="many recordings at once: Ray workers (or a local process pool), one output folder each"
    )
    p.add_argument("inputs", nargs="+", help="recordings: files, folders (searched recursively) or glob patterns")
    p.add_argument("--out", required=True, help="output folder: <out>/<recording>/ per recording + batch_summary.csv")
    p.add_argument("--workers", type=int, default=2, help="parallel workers (default 2; each loads the models once)")
    p.add_argument("--address", help="join an existing Ray cluster: auto, or ray://HOST:10001 (default: local Ray)")
    p.add_argument("--local", action="store_true", help="a local process pool even when Ray is installed")
    p.add_argument(
        "--chunk-minutes",
        type=float,
        default=30.0,
        help="split videos longer than 1.5x this into chunks on several workers, tracks stitched (0: never)",
    )
    _pipeline_options(p)
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("sessions", help="analysis sessions saved in the database: list, show, export, delete, compare")
    actions = p.add_subparsers(dest="action", required=True)
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        help="SQLite file path or SQLAlchemy URL (default: DATABASE_URL, CLASSMOOD_DB or ~/.classmood/sessions.db)",
    )
    db.add_argument(
        "--min-faces", type=int, help="k for class-level numbers (default: the k each session was analysed with)"
    )
    actions.add_parser("list", parents=[db], help="all sessions, newest first")
    q = actions.add_parser("show", parents=[db], help="one session's settings, summary and class mood")
    q.add_argument("id", type=_session_id)
    q = actions.add_parser("export", parents=[db], help="write faces, class_mood and session.json")
    q.add_argument("id", type=_session_id)
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--format", choices=["csv", "parquet"], default="csv")
    q = actions.add_parser("delete", parents=[db], help="remove a session and all its rows")
    q.add_argument("id", type=_session_id)
    q = actions.add_parser("compare", parents=[db], help="overall expression shares, valence and faces of two sessions")
    q.add_argument("a", type=_session_id)
    q.add_argument("b", type=_session_id)
    p.set_defaults(func=_cmd_sessions)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from classmood.analysis.analyze import prepare_out
    from classmood.vision.sources import open_source

    # Everything that can be refused is refused before anything is opened, written or saved.
    config = _config(args)
    if args.per_track and not args.annotate:
        raise ClassmoodError("--per-track adds to report.html, which --annotate writes; add --annotate")
    source = open_source(args.input)  # a bad input fails here: no folder or session row is created for it
    try:
        prepare_out(args.out)
        store = _open_session_store(args.db) if args.save else None
    except BaseException:
        source.close()
        raise
    try:
        return _analyze_and_save(args, source, config, store)
    finally:
        if store is not None:
            store.close()


def _analyze_and_save(args: argparse.Namespace, source: Any, config: Any, store: SessionStore | None) -> int:
    from dataclasses import asdict

    from classmood.analysis.analyze import analyze
    from classmood.store import recorder_for

    with recorder_for(store, "cli", str(args.input), asdict(config)) as recorder:
        if recorder.error:
            source.close()
            raise ClassmoodError(recorder.error)
        result = analyze(
            source,
            args.out,
            config,
            progress=sys.stderr.isatty(),
            annotate=args.annotate,
            per_track=args.per_track,
            on_update=lambda update, done: recorder.add(update),
            stop=getattr(args, "stop", None),
        )  # Ctrl-C or SIGTERM: the recorder closes the session as stopped, with what was saved
        recorder.finish(result.summary)
    s = result.summary
    print(
        f"{s['frames_analysed']} of {s['frames']} frames analysed, {s['faces']} faces, {s['tracks']} tracks, "
        f"{s['analysed_fps']} analysed frames/s -> {args.out}"
    )
    if s.get("skipped_frames"):
        print(f"classmood: warning: skipped {s['skipped_frames']} damaged or unreadable frames", file=sys.stderr)
    if s["truncated"]:
        print(f"classmood: warning: {_ended_early(args.input, source)}; what was read is saved", file=sys.stderr)
    if store is not None:
        if recorder.error:  # the files in --out are complete; the session is not (and is marked so)
            print(f"classmood: error: {recorder.error}", file=sys.stderr)
            return 1
        print(f"saved as session {recorder.session_id} ({store!r})")
    return 0


def _ended_early(name: str, source: Any) -> str:
    """Where a truncated input stopped, against the length its container declares."""
    at, length = getattr(source, "ended_at_s", None), getattr(source, "duration_s", None)
    if at is not None and length:
        return f"{name} ended early, at {at:.1f} s of the {length:.1f} s its container declares (truncated file?)"
    return f"{name} ended early (truncated, or the device went away)"


def _open_session_store(url: str | None = None) -> SessionStore:
    from classmood.store import open_store

    return open_store(url)


def _cmd_sessions(args: argparse.Namespace) -> int:
    from classmood.store.engine import check_db

    store = _open_session_store(check_db(args.db))
    try:
        _sessions_action(store, args)
    finally:
        store.close()  # a PostgreSQL connection left open warns when collected
    return 0


def _k_note(session_id: int, note: str | None) -> None:
    """Say on stderr that a read asked for a k below the session's floor and was raised to it."""
    if note:
        print(f"classmood: note: session {session_id}: {note}", file=sys.stderr)


def _sessions_action(store: SessionStore, args: argparse.Namespace) -> None:
    from classmood.analytics.privacy import check_min_faces
    from classmood.containers import NOTE

    k = None if args.min_faces is None else check_min_faces(args.min_faces)
    _check_k(k)
    if args.action in ("show", "export"):
        _k_note(args.id, store.read_k(args.id, k)[1])
    if args.action == "list":
        table = store.list_sessions()
        print(table.to_string(index=False) if len(table) else f"no sessions in {store!r}")
    elif args.action == "show":
        meta = store.session(args.id)
        meta["summary"] = store.summary(args.id, k)  # class numbers under the k asked for
        for key, value in meta.items():
            print(f"{key:11s} {json.dumps(value) if isinstance(value, dict) else value}")
        counts = store.list_sessions().set_index("id").loc[args.id]
        print(f"{counts['faces']} faces, {counts['tracks']} tracks, {counts['bins']} bins, {counts['duration_s']} s")
        bins = store.bins(args.id, k)
        if len(bins):
            cols = [
                *("start_s", "end_s", "frames", "faces", "tracks", "suppressed", "valence", "negative_share"),
                *("facing_share", "looking_down_share", "flags"),
            ]
            print(bins[cols].to_string(index=False))
        print(f"({NOTE})")
    elif args.action == "export":
        _named("--out", args.out)
        for path in store.export(args.id, args.out, args.format, min_faces=k):
            print(f"wrote {path}")
    elif args.action == "delete":
        store.delete(args.id)
        print(f"deleted session {args.id}")
    elif args.action == "compare":
        table = store.compare(args.a, args.b, min_faces=k)
        for sid, note in table.attrs.get("k_notes", {}).items():
            _k_note(sid, note)
        table.columns = [f"session {args.a}", f"session {args.b}", f"{args.b} - {args.a}"]
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
        print(f"({NOTE}; shares and valence from unsuppressed bins, facing from bins with k faces clearly oriented)")


def _cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from classmood.analysis.batch import run_batch
    from classmood.store import default_url
    from classmood.store.engine import as_url

    config = _config(args, threads=1)  # one inference thread per worker: the workers are the parallelism
    if not (math.isfinite(args.chunk_minutes) and args.chunk_minutes >= 0):
        raise ClassmoodError(
            f"--chunk-minutes must be a number of minutes >= 0 (0: never split), not {args.chunk_minutes}"
        )
    db_url = (as_url(args.db) if args.db is not None else default_url()) if args.save else None
    if db_url:
        _open_session_store(db_url).close()  # a bad database fails before any work
    bar = tqdm(unit="recording", desc="recordings", disable=not sys.stderr.isatty())
    frames = 0

    def on_row(row: dict[str, Any], done: int, total: int) -> None:
        nonlocal frames
        frames += int(row.get("frames") or 0)
        bar.total = total
        bar.n = done
        bar.set_postfix(frames=frames, refresh=False)
        bar.refresh()
        if row["status"] == "failed":
            print(f"classmood: {row['recording']}: failed: {row['error']}", file=sys.stderr)

    try:
        rows = run_batch(
            args.inputs,
            args.out,
            config,
            workers=args.workers,
            address=args.address,
            db_url=db_url,
            use_ray=False if args.local else None,
            chunk_s=args.chunk_minutes * 60 if args.chunk_minutes else None,
            on_row=on_row,
            notice=lambda line: print(line, file=sys.stderr),
        )
    finally:
        bar.close()
    failed = [r for r in rows if r["status"] == "failed"]
    skipped = sum(str(r["status"]).startswith("skipped") for r in rows)
    print(
        f"{len(rows) - len(failed) - skipped} analysed, {skipped} already done, {len(failed)} failed "
        f"-> {Path(args.out) / 'batch_summary.csv'}"
    )
    return 1 if failed else 0
