"""``classmood batch``: many recordings, each analysed exactly as ``classmood analyze`` would, on Ray.

Recordings are scheduled largest first onto a pool of workers. On Ray each worker is an actor that
loads the face detector and the ONNX model once and then analyses whole recordings with the same
``analyze`` code as the CLI; ``DIR/<recording stem>/`` gets exactly the files ``classmood analyze``
writes for that recording alone. Without Ray (``pip install 'classmood[cluster]'``) the same
workers run in a local process pool, and the batch says so once.

What goes to a worker: the recording's path (every worker must see the same files: one machine, or
a shared file system on a cluster), the output folder, the pipeline settings and, with ``--save``,
the database URL; what comes back: one summary row. Nothing else leaves a worker.

Robust and resumable: a recording that fails is listed with its error and the batch goes on; a
finished recording leaves ``DIR/<stem>/batch.json`` (its input's size and modification time), so
the same command run again skips it; Ctrl-C or SIGTERM stops the workers and keeps every finished
recording, and a batch killed outright (SIGKILL, OOM) takes its workers with it (``_die_with``).
A recording whose session could not be saved whole is "failed" (its files are right; it runs
again next time). ``DIR/batch_summary.csv`` has one row per recording (status, duration, faces,
tracks, class-level shares where k allows, wall time, error).

Output folders are named by ``output_names``, the one place a recording's name becomes a path:
always a plain folder directly inside ``DIR``, never ``.``/``..``, a hidden name, a file of the
batch's own (``batch_summary.csv``), a symlink, or another recording's folder.
"""

from __future__ import annotations

import csv
import ctypes
import glob
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS
from classmood.pipeline import PipelineConfig
from classmood.store import liveness
from classmood.vision.sources import VIDEO_SUFFIXES

SUMMARY_COLUMNS = [
    "recording",
    "output",
    "status",
    "duration_s",
    "frames",
    "frames_analysed",
    "skipped_frames",
    "faces",
    "tracks",
    *[f"share_{e}" for e in EMOTIONS],
    "valence",
    "uncertain_share",
    "wall_s",
    "worker",
    "session_id",
    "error",
]
DONE_FILE = "batch.json"
SUMMARY_FILE = "batch_summary.csv"
RESERVED = (SUMMARY_FILE, f".{SUMMARY_FILE}.tmp")  # the batch's own files in DIR: no recording is named so
MAX_NAME_BYTES = 120  # file systems allow 255 bytes a name; room for a "-N" suffix and a margin
# Kept in a name: letters and digits of any script, and punctuation that is safe everywhere.
_UNSAFE = re.compile(r"[^\w\-.,+=@() \[\]]")
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
WATCH_S = 1.0  # how often a worker checks that the batch that started it still runs


def find_recordings(inputs: Iterable[str]) -> list[Path]:
    """Files, folders (their video files, recursively) and glob patterns -> recordings, each once."""
    found: list[Path] = []
    for given in inputs:
        matches = (
            [Path(m) for m in sorted(glob.glob(given, recursive=True))] if glob.has_magic(given) else [Path(given)]
        )
        if not matches:
            raise ClassmoodError(f"{given}: matches no file")
        for path in matches:
            if path.is_dir():
                found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            elif path.exists():
                found.append(path)
            else:
                raise ClassmoodError(f"{path}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ClassmoodError("no recordings found in " + ", ".join(inputs))
    return unique


def safe_name(stem: str) -> str:
    """A recording's stem as a name for a folder directly inside --out, whatever the stem holds.

    Characters that are not letters, digits or plain punctuation (separators, control characters,
    quotes, ``:*?<>|``) become ``_``; leading and trailing dots and spaces go (no ``.``, ``..`` or
    hidden name: ``...mp4`` stems to ``..``), Windows' device names get a ``_``, long names are cut
    to ``MAX_NAME_BYTES``; an empty result is ``recording``."""
    name = _UNSAFE.sub("_", unicodedata.normalize("NFC", stem)).strip(" .")
    while len(name.encode()) > MAX_NAME_BYTES:
        name = name[:-1]
    name = name.strip(" .") or "recording"
    if name.split(".")[0].upper() in _WINDOWS_DEVICES:
        name = f"_{name}"
    return name


def output_names(recordings: list[Path], out_dir: Path | None = None) -> dict[Path, str]:
    """One output folder name per recording (``safe_name`` of its stem), unique in any letter case
    (a.mp4, A.mkv, two lesson.mp4 in different folders: ``a``, ``A-2``...) and never one of the batch's
    own files; with ``out_dir``, never a name taken there by a file or a symlink (which would lead
    outside it)."""
    taken = {n.casefold() for n in RESERVED}

    def free(name: str) -> bool:
        if name.casefold() in taken:
            return False
        if out_dir is None:
            return True
        there = out_dir / name
        return not there.is_symlink() and (there.is_dir() or not there.exists())

    names: dict[Path, str] = {}
    for path in recordings:
        base = safe_name(path.stem)
        name, n = base, 1
        while not free(name):
            n += 1
            name = f"{base}-{n}"
        taken.add(name.casefold())
        names[path] = name
    return names


def _inside(out_dir: Path, name: str) -> Path:
    """``out_dir / name``, checked to be a folder directly inside ``out_dir`` (the last guard before writing)."""
    target = out_dir / name
    if target.is_symlink() or target.resolve().parent != out_dir.resolve() or name in (".", ".."):
        raise ClassmoodError(f"{name!r} is not a safe output folder inside {out_dir}")
    return target


def _die_with(parent: str | None) -> None:
    """End this worker when the batch that started it ends, also by SIGKILL, which no handler sees.

    On Linux the kernel sends SIGKILL when the parent process exits (``PR_SET_PDEATHSIG``; for a Ray
    actor the parent is Ray's raylet). Everywhere, when the batch runs on this host, a thread checks
    every ``WATCH_S`` that the batch's very process (its ``liveness`` stamp) still runs: this covers a
    parent that died before the call and a Ray actor whose raylet outlives the batch."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    stamp = liveness.parse(parent)
    if stamp is None or not stamp.here():
        return

    def watch() -> None:
        while stamp.alive() is not False:
            time.sleep(WATCH_S)
        os.kill(os.getpid(), signal.SIGKILL)  # the batch is gone: nothing will read this worker's result

    threading.Thread(target=watch, name="classmood-batch-watch", daemon=True).start()


def _fingerprint(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"input": str(path), "size": stat.st_size, "mtime": stat.st_mtime}


def is_done(path: Path, out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a finished analysis of this very file (same size and modification time)."""
    marker = out_dir / DONE_FILE
    try:
        done = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return bool(
        done.get("status") == "done" and {k: done.get(k) for k in ("input", "size", "mtime")} == _fingerprint(path)
    )


def summary_row(path: Path, out_dir: Path, summary: dict[str, Any] | None, status: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in SUMMARY_COLUMNS}
    row.update(recording=str(path), output=str(out_dir), status=status)
    if summary:
        numbers = summary.get("class") or {}
        shares = numbers.get("shares") or {}
        frames_analysed = summary.get("frames_analysed")
        row.update(
            frames=summary.get("frames"),
            frames_analysed=frames_analysed,
            skipped_frames=summary.get("skipped_frames"),
            faces=summary.get("faces"),
            tracks=summary.get("tracks"),
            valence=numbers.get("valence"),
            uncertain_share=numbers.get("uncertain_share"),
            **{f"share_{e}": shares.get(e) for e in EMOTIONS},
        )
    row.update(extra)
    return row


class RecordingWorker:
    """Loads the detector and the model once; then analyses whole recordings like ``classmood analyze``."""

    def __init__(
        self,
        config: dict[str, Any],
        db_url: str | None = None,
        parent: str | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        from classmood.expression.model import load_model
        from classmood.vision.detectors import create_detector

        _die_with(parent)  # ``parent``: the batch's liveness stamp
        self.config = PipelineConfig(**config)
        self.detector = create_detector(self.config.detector)
        self.model = load_model(self.config.model, threads=self.config.threads, precision=self.config.precision)
        self.db_url = db_url
        self.name = f"{os.uname().nodename}:{os.getpid()}"
        self.stop = stop or threading.Event()  # once set, the recording being analysed stops between two frames

    def run(self, recording: str, out_dir: str) -> dict[str, Any]:
        """Analyse one recording into ``out_dir``; never raises: a failure is a row with its error."""
        from classmood.analysis.analyze import analyze
        from classmood.store import open_store, recorder_for
        from classmood.vision.sources import open_source

        path, out = Path(recording), Path(out_dir)
        started = time.perf_counter()
        store = None
        try:
            source = open_source(path)
            duration = source.frame_count / source.fps if source.frame_count and source.fps else None
            store = open_store(self.db_url) if self.db_url else None
            with recorder_for(store, "cli", str(path), asdict(self.config)) as recorder:
                result = analyze(
                    source,
                    out,
                    self.config,
                    detector=self.detector,
                    model=self.model,
                    on_update=lambda u, d: recorder.add(u),
                    stop=self.stop,
                )
                recorder.finish(result.summary)
            if recorder.error:  # the files are right, the session is not whole
                raise ClassmoodError(recorder.error)
            summary = dict(result.summary)
            (out / DONE_FILE).write_text(json.dumps({"status": "done", **_fingerprint(path)}, indent=2))
            return summary_row(
                path,
                out,
                summary,
                "done",
                duration_s=None if duration is None else round(duration, 2),
                wall_s=round(time.perf_counter() - started, 2),
                worker=self.name,
                session_id=recorder.session_id,
            )
        except Exception as exc:  # a bad recording is reported, the batch goes on
            message = str(exc) if isinstance(exc, ClassmoodError) else f"{type(exc).__name__}: {exc}"
            return summary_row(
                path,
                out,
                None,
                "failed",
                wall_s=round(time.perf_counter() - started, 2),
                worker=self.name,
                error=message.splitlines()[0] if message else type(exc).__name__,
            )
        finally:
            if store is not None:
                store.close()

    def chunk(self, recording: str, start_s: float, end_s: float, overlap_s: float) -> Any:
        """One time chunk of a long recording (``analysis/chunks.py``); an error comes back as its message."""
        from classmood.analysis.chunks import analyze_chunk

        try:
            return analyze_chunk(recording, start_s, end_s, overlap_s, self.config, self.detector, self.model)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}".splitlines()[0]


Job = tuple[str, tuple[Any, ...]]  # a worker method ("run" or "chunk") and its arguments

_local_worker: RecordingWorker | None = None


def _local_init(config: dict[str, Any], db_url: str | None, parent: str | None = None) -> None:
    """A pool worker: Ctrl-C is the batch's to handle; SIGTERM (the batch stopping) stops its analysis
    between two frames, with its session closed as "stopped"."""
    global _local_worker
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _local_worker = RecordingWorker(config, db_url, parent, stop)


def _local_call(method: str, args: tuple[Any, ...]) -> Any:
    assert _local_worker is not None
    return getattr(_local_worker, method)(*args)


STOP_GRACE_S = 10.0  # how long stopped pool workers get to close their sessions before they are killed


def _run_local(jobs: list[Job], config: dict[str, Any], db_url: str | None, workers: int) -> Iterator[tuple[int, Any]]:
    context = get_context("spawn")  # ONNX Runtime's threads and fork do not mix
    init = (config, db_url, str(liveness.stamp()))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_local_init, initargs=init) as pool:
        futures = {pool.submit(_local_call, method, args): n for n, (method, args) in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            _stop_pool(pool, futures)
            raise


def _stop_pool(pool: ProcessPoolExecutor, futures: Iterable[Any]) -> None:
    """Stop a pool now (Ctrl-C, SIGTERM, an error): queued jobs are dropped, running ones stop between two
    frames (SIGTERM: their sessions close as "stopped"), and a worker still busy after ``STOP_GRACE_S``
    is killed - leaving the pool's block would otherwise wait for every running recording to end."""
    for future in futures:
        future.cancel()
    processes = list(getattr(pool, "_processes", {}).values())  # CPython's pool keeps its workers here
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _run_ray(
    jobs: list[Job], config: dict[str, Any], db_url: str | None, workers: int, address: str | None
) -> Iterator[tuple[int, Any]]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        else:
            # "local": a new Ray on this machine, never one left behind by an earlier `ray start`
            ray.init(
                address="local",
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
    try:
        actor: Any = ray.remote(num_cpus=1)(RecordingWorker)
        parent = str(liveness.stamp())  # actors on this host end with the batch, even a killed one
        pool: list[Any] = [actor.remote(config, db_url, parent) for _ in range(min(workers, len(jobs)))]
        pending: dict[Any, tuple[int, Any]] = {}
        queue = list(enumerate(jobs))
        idle = list(pool)
        try:
            while queue or pending:
                while queue and idle:
                    worker = idle.pop()
                    n, (method, args) = queue.pop(0)  # largest first: the order jobs came in
                    pending[getattr(worker, method).remote(*args)] = (n, worker)
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    n, worker = pending.pop(ref)
                    idle.append(worker)
                    yield n, ray.get(ref)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            for worker in pool:
                ray.kill(worker)
    finally:
        if started_here:
            ray.shutdown()


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_batch(
    inputs: Iterable[str],
    out: str | Path,
    config: PipelineConfig | None = None,
    workers: int = 2,
    address: str | None = None,
    db_url: str | None = None,
    use_ray: bool | None = None,
    on_row: Callable[[dict[str, Any], int, int], None] | None = None,
    notice: Callable[[str], None] = print,
    chunk_s: float | None = 1800.0,
    overlap_s: float = 10.0,
) -> list[dict[str, Any]]:
    """Analyse every recording in ``inputs`` into ``out/<stem>/`` and write ``out/batch_summary.csv``.

    A video longer than 1.5 x ``chunk_s`` is split into chunks of about ``chunk_s`` seconds that run on
    several workers and are stitched back (``analysis/chunks.py``); None keeps every recording whole.
    ``use_ray`` None: Ray when installed, else a local process pool (said once through ``notice``).
    ``on_row(row, done, total)`` is called as each recording finishes. Returns the summary rows.
    """
    from classmood.analysis.analyze import prepare_out, remove_stale_work
    from classmood.store.engine import as_url

    config = config or PipelineConfig()
    if db_url is not None:
        db_url = as_url(db_url)  # "" is refused: it would quietly save nothing
    if workers < 1:
        raise ClassmoodError(f"--workers must be at least 1, not {workers}")
    if chunk_s is not None and not chunk_s > 0:
        raise ClassmoodError(f"chunk length must be positive, not {chunk_s}")
    recordings = find_recordings(inputs)
    out_dir = prepare_out(out)
    remove_stale_work(out_dir)
    plan = _plan(recordings, out_dir, config, chunk_s, overlap_s)
    use_ray = _use_ray(use_ray, address, notice)
    started = time.perf_counter()
    try:
        if plan.jobs:
            settings = asdict(config)
            stream = (
                _run_ray(plan.jobs, settings, db_url, workers, address)
                if use_ray
                else _run_local(plan.jobs, settings, db_url, min(workers, len(plan.jobs)))
            )
            _collect(stream, plan, recordings, out_dir, config, db_url, started, on_row)
    finally:
        _write_summary(out_dir, recordings, plan.rows)  # also after Ctrl-C: every finished recording is listed
    return [plan.rows[p] for p in recordings if p in plan.rows]


@dataclass
class _Plan:
    """A batch's work: a job per recording (or per chunk of a long one), and rows of those done before."""

    names: dict[Path, str]  # each recording's output folder name
    rows: dict[Path, dict[str, Any]] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)
    chunked: dict[Path, list[Any]] = field(default_factory=dict)  # recording -> its chunks' results (None: not yet)
    owner: list[tuple[Path, int]] = field(default_factory=list)  # each job's recording, and which chunk it is


def _plan(
    recordings: list[Path], out_dir: Path, config: PipelineConfig, chunk_s: float | None, overlap_s: float
) -> _Plan:
    """Largest recordings first (they finish last); a recording whose outputs are complete is skipped."""
    from classmood.analysis.analyze import remove_stale_work

    plan = _Plan(names=output_names(recordings, out_dir))
    for path in sorted(recordings, key=lambda p: p.stat().st_size if p.exists() else 0, reverse=True):
        target = _inside(out_dir, plan.names[path])
        remove_stale_work(target)  # what a killed earlier batch left, also in folders of finished recordings
        if is_done(path, target):
            plan.rows[path] = _previous_row(out_dir, path) or summary_row(path, target, _read_summary(target), "done")
            plan.rows[path]["status"] = "skipped (done before)"
            continue
        chunks = _chunk_plan(path, config, chunk_s)
        if len(chunks) > 1:
            plan.chunked[path] = [None] * len(chunks)
            for part, (start, end) in enumerate(chunks):
                plan.jobs.append(("chunk", (str(path), start, end, overlap_s)))
                plan.owner.append((path, part))
        else:
            plan.jobs.append(("run", (str(path), str(target))))
            plan.owner.append((path, 0))
    return plan


def _use_ray(use_ray: bool | None, address: str | None, notice: Callable[[str], None]) -> bool:
    """Ray when asked for or (None) when installed, else a local process pool; refuse what cannot work."""
    if use_ray is None:
        use_ray = ray_available()
        if not use_ray:
            notice("classmood: Ray is not installed (pip install 'classmood[cluster]'): using a local process pool")
    elif use_ray and not ray_available():
        raise ClassmoodError("Ray is not installed: pip install 'classmood[cluster]'")
    if address and not use_ray:
        raise ClassmoodError("--address joins a Ray cluster, which needs Ray: pip install 'classmood[cluster]'")
    return use_ray


def _collect(
    stream: Iterator[tuple[int, Any]],
    plan: _Plan,
    recordings: list[Path],
    out_dir: Path,
    config: PipelineConfig,
    db_url: str | None,
    started: float,
    on_row: Callable[[dict[str, Any], int, int], None] | None,
) -> None:
    """Each finished job into its recording's row (a chunked one once all its chunks are in and stitched);
    batch_summary.csv rewritten after every recording, so it always lists what is finished."""
    total, done = len(recordings), len(plan.rows)
    for n, result in stream:
        path, part = plan.owner[n]
        if path in plan.chunked:
            parts = plan.chunked[path]
            parts[part] = result
            if any(p is None for p in parts):
                continue
            row = _finish_chunked(path, _inside(out_dir, plan.names[path]), parts, config, db_url, started)
        else:
            row = result
        plan.rows[path] = row
        done += 1
        _write_summary(out_dir, recordings, plan.rows)
        if on_row is not None:
            on_row(row, done, total)


def _chunk_plan(path: Path, config: PipelineConfig, chunk_s: float | None) -> list[tuple[float, float]]:
    """The chunks of a long video, or one "chunk" for a short one, an image, a folder or an unreadable file."""
    from classmood.analysis.chunks import plan_chunks, video_length

    if chunk_s is None or path.suffix.lower() not in VIDEO_SUFFIXES:
        return [(0.0, 0.0)]
    try:
        duration, _, _ = video_length(path)
    except ClassmoodError:
        return [(0.0, 0.0)]  # the worker reports the error
    if duration <= 1.5 * chunk_s:
        return [(0.0, duration)]
    return plan_chunks(duration, chunk_s, config.bin_s, config.rate_hz)


def _finish_chunked(
    path: Path, out: Path, parts: list[Any], config: PipelineConfig, db_url: str | None, started: float
) -> dict[str, Any]:
    """Stitch a chunked recording, write its files (and session), mark it done; returns its summary row."""
    from classmood.analysis.chunks import write_chunked_outputs

    errors = [p for p in parts if isinstance(p, str)]
    if errors:
        return summary_row(path, out, None, "failed", error=errors[0])
    try:
        summary, faces, raw = write_chunked_outputs(path, out, parts, config, time.perf_counter() - started)
        session_id = _save_chunked(path, config, db_url, summary, faces, raw) if db_url else None
        (out / DONE_FILE).write_text(json.dumps({"status": "done", **_fingerprint(path)}, indent=2))
    except Exception as exc:
        return summary_row(path, out, None, "failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
    duration = parts[-1].end_s
    return summary_row(
        path,
        out,
        summary,
        "done",
        duration_s=round(duration, 2),
        wall_s=summary.get("wall_s"),
        worker=f"{len(parts)} chunks",
        session_id=session_id,
    )


def _save_chunked(
    path: Path, config: PipelineConfig, db_url: str, summary: dict[str, Any], faces: Any, raw_bins: list[Any]
) -> int | None:
    """A stitched recording as one session: its merged rows and raw bins (the store applies k when read)."""
    from classmood.store import SessionRecorder, open_store

    store = open_store(db_url)
    try:
        with SessionRecorder(store, "cli", str(path), asdict(config)) as recorder:
            recorder.save(list(faces), raw_bins)
            recorder.finish(summary)
        if recorder.error:  # not saved, or not whole: the recording is not done
            raise ClassmoodError(recorder.error)
        return recorder.session_id
    finally:
        store.close()


def _read_summary(target: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((target / "summary.json").read_text()))
    except (OSError, ValueError):
        return None


def _previous_row(out_dir: Path, path: Path) -> dict[str, Any] | None:
    """The row a previous run of the batch wrote for this recording (kept when it is skipped)."""
    try:
        with open(out_dir / SUMMARY_FILE, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("recording") == str(path):
                    return {c: (row.get(c) or None) for c in SUMMARY_COLUMNS}
    except OSError:
        return None
    return None


def _write_summary(out_dir: Path, recordings: list[Path], rows: dict[Path, dict[str, Any]]) -> None:
    tmp = out_dir / RESERVED[1]
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        for path in recordings:
            if path in rows:
                writer.writerow({c: rows[path].get(c) for c in SUMMARY_COLUMNS})
    os.replace(tmp, out_dir / SUMMARY_FILE)
