"""``classmood bench``: every benchmark that prints measured figures."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("bench", help="faces/s of the shipped models on this CPU")
    _speed_and_pipeline_options(p)
    _recording_options(p)
    _real_face_and_hub_options(p)
    p.set_defaults(func=_cmd_bench)


def _speed_and_pipeline_options(p: argparse.ArgumentParser) -> None:
    """The models' speed (the default) and the video pipeline on a synthetic gallery."""
    p.add_argument("--model", action="append", help="shipped name or .onnx path (repeatable; default: all shipped)")
    p.add_argument("--threads", type=int, help="CPU threads (default: min(2, cores))")
    p.add_argument("--runs", type=int, default=15, help="timed runs per setting (median reported)")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--pipeline",
        action="store_true",
        help="instead: the video pipeline on a synthetic 7x7 1080p gallery vs a naive baseline (JSON)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="--pipeline: ms per analysed frame per stage (decode ... aggregate) at --rate 0, each shipped "
        "model's float file and int8 copy, with the CPU and its instruction sets",
    )
    p.add_argument("--repeats", type=int, default=3, help="--pipeline --profile: runs per setting (median)")
    p.add_argument(
        "--data", default="../shared/data/fer2013", help="FER2013 with PublicTest, for --pipeline, --robust, --events"
    )


def _recording_options(p: argparse.ArgumentParser) -> None:
    """The live worker, simulated calls, ids through events, clutter, memory over an hour, batch on Ray."""
    p.add_argument(
        "--live",
        action="store_true",
        help="instead: the live app's worker fed a 49-face 1080p gallery at 10 fps; UI-side latencies (JSON)",
    )
    p.add_argument(
        "--seconds", type=float, help="video length for --pipeline and --live (default 20) and --soak (default 3600)"
    )
    p.add_argument(
        "--robust",
        action="store_true",
        help="instead: accuracy, calm faces read negative and smiles recognised under real-call degradations",
    )
    p.add_argument(
        "--labels",
        choices=["fer2013", "ferplus"],
        default="fer2013",
        help="--robust: score against FER2013's labels or FER+'s annotator majority",
    )
    p.add_argument("--limit", type=int, default=0, help="--robust on a stratified subset of N PublicTest faces")
    p.add_argument(
        "--events",
        action="store_true",
        help="instead: ids per person through re-layouts, speaker view, screen share and a cut (needs PublicTest)",
    )
    p.add_argument(
        "--clutter",
        action="store_true",
        help="instead: precision and recall of the face boxes on call screenshots full of clutter, gate off and on",
    )
    p.add_argument(
        "--soak",
        action="store_true",
        help="instead: resident-memory slope over a simulated hour of a 640x368 gallery at 2 Hz (--seconds to change)",
    )
    p.add_argument(
        "--batch",
        action="store_true",
        help="instead: recordings per minute, a sequential loop vs classmood batch on Ray with 1 and 2 workers",
    )


def _real_face_and_hub_options(p: argparse.ArgumentParser) -> None:
    """Real faces labelled by eye (expressions, facing), the student-side hub, the mood score."""
    p.add_argument(
        "--students",
        type=int,
        metavar="N",
        help="instead: N students at 1 update/s on the student-side hub (a few real Chromium, the rest light "
        "clients): delay to the teacher's view, hub CPU, browser inference time, browser vs server detector",
    )
    p.add_argument(
        "--real",
        action="store_true",
        help="instead: real photos and video frames labelled by eye, read through the whole pipeline "
        "(found, read, accuracy, calm faces read negative, smiles recognised; tune and report splits)",
    )
    p.add_argument(
        "--readout-grid",
        action="store_true",
        help="--real: one --model under a grid of readouts (classroom prior, uncertain rules) on the tune split",
    )
    p.add_argument(
        "--facing",
        action="store_true",
        help="instead: head orientation on the real faces labelled by eye for facing (toward / away / unclear): "
        "balanced accuracy and the class share's error of each pose estimate (five points, face mesh) in one run, "
        "rule chosen on tune, reported on both splits, and the face mesh's ms per face",
    )
    p.add_argument("--real-data", help="--real: folder with labels.csv and the images (default bench/realfaces)")
    p.add_argument("--detector", help="--real: face detector (libface, mtcnn, yunet; default libface)")
    p.add_argument("--browsers", type=int, default=2, help="--students: how many are real headless Chromium pages")
    p.add_argument(
        "--hostile",
        action="store_true",
        help="instead: a hostile client against a fresh student hub on loopback (2,000 unfinished connections, "
        "junk, code guessing, foreign Host/Origin): what it tried and what held (JSON)",
    )
    p.add_argument(
        "--mood",
        action="store_true",
        help="instead: the mood score's neutral weight fitted on FER+ Training, its mean per FER+ majority class "
        "on PublicTest for each shipped model, and a calm real video call read through the pipeline (JSON)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="--robust: seed of the degradations and subset; --events: recording (1)"
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    """The first benchmark whose option was given (``BENCHES``' order), else the models' speed."""
    run = next((run for wanted, run in BENCHES if wanted(args)), _speed)
    print(run(args))
    return 0


def _shipped(args: argparse.Namespace) -> list[str]:
    return args.model or ["fast", "accurate"]


def _mood(args: argparse.Namespace) -> str:
    from classmood.benchmarks.mood import run_mood_bench

    return json.dumps(run_mood_bench(args.data, _shipped(args)), indent=2)


def _hostile(args: argparse.Namespace) -> str:
    from classmood.benchmarks.hostile import run_hostile_bench

    return json.dumps(run_hostile_bench(), indent=2)


def _students(args: argparse.Namespace) -> str:
    from classmood.benchmarks.students import run_students_bench
    from classmood.errors import ClassmoodError

    if args.students < 1 or args.browsers < 0:
        raise ClassmoodError("--students needs at least 1 student and --browsers at least 0")
    return json.dumps(run_students_bench(args.students, args.browsers, seconds=args.seconds or 30.0), indent=2)


def _batch(args: argparse.Namespace) -> str:
    from classmood.benchmarks.batch import run_batch_bench

    return json.dumps(run_batch_bench(seconds=args.seconds or 120.0), indent=2)


def _events(args: argparse.Namespace) -> str:
    from classmood.benchmarks.events import run_events_bench

    return json.dumps(run_events_bench(args.data, seed=args.seed if args.seed else 1), indent=2)


def _clutter(args: argparse.Namespace) -> str:
    from classmood.benchmarks.clutter import TEST_SEEDS, run_clutter_bench

    clutter = run_clutter_bench(TEST_SEEDS)
    if not args.json:
        for v in clutter["variants"].values():
            v.pop("false_positive_boxes")
    return json.dumps(clutter, indent=2)


def _soak(args: argparse.Namespace) -> str:
    from classmood.benchmarks.soak import run_soak

    soak = run_soak(seconds=args.seconds or 3600.0)
    if not args.json:
        soak.pop("samples")
    return json.dumps(soak, indent=2)


def _facing(args: argparse.Namespace) -> str:
    from classmood.benchmarks import facing, realfaces

    result = facing.run(args.real_data or realfaces.DEFAULT_DIR)
    return json.dumps(result, indent=2) if args.json else facing.format_table(result)


def _readout_grid(args: argparse.Namespace) -> str:
    from classmood.benchmarks import realfaces
    from classmood.errors import ClassmoodError

    if not args.model or len(args.model) != 1:
        raise ClassmoodError("--readout-grid takes exactly one --model")
    rows = realfaces.readout_grid_for(args.model[0], args.data, args.real_data or realfaces.DEFAULT_DIR)
    return json.dumps(rows, indent=1) if args.json else realfaces.format_grid(rows)


def _real(args: argparse.Namespace) -> str:
    from classmood.benchmarks import realfaces

    real = realfaces.run(_shipped(args), args.real_data or realfaces.DEFAULT_DIR, detector=args.detector)
    if args.json:
        return json.dumps(real, indent=2)
    return realfaces.format_table(real, "tune") + "\n\n" + realfaces.format_table(real, "report")


def _robust(args: argparse.Namespace) -> str:
    from classmood.benchmarks.robust import format_table, run_robust_bench

    robust = run_robust_bench(args.data, _shipped(args), limit=args.limit, seed=args.seed, label_set=args.labels)
    return json.dumps(robust, indent=2) if args.json else format_table(robust)


def _live(args: argparse.Namespace) -> str:
    from classmood.benchmarks.live import run_live_bench

    return json.dumps(run_live_bench(seconds=args.seconds or 20.0), indent=2)


def _pipeline(args: argparse.Namespace) -> str:
    from classmood.benchmarks.pipeline import format_profile, run_gallery_bench, run_profile_bench

    if args.profile:
        profile = run_profile_bench(args.data, seconds=args.seconds or 10.0, repeats=args.repeats)
        return json.dumps(profile, indent=2) if args.json else format_profile(profile)
    return json.dumps(run_gallery_bench(args.data, seconds=args.seconds or 20.0), indent=2)


def _speed(args: argparse.Namespace) -> str:
    from classmood.benchmarks.speed import bench_models

    result = bench_models(args.model, threads=args.threads, runs=args.runs)
    if args.json:
        return json.dumps(result, indent=2)
    sets = ", ".join(result["instruction_sets"]) or "none of AVX2, AVX-512, AMX"
    lines = [f"{result['cpu']} ({sets}), {result['threads']} threads, median of {result['runs']} runs"]
    for name, r in result["models"].items():
        lines.append(
            f"  {name:16s} batch 1: {r['faces_per_s_batch1']:8.0f} faces/s   "
            f"batch 64: {r['faces_per_s_batch64']:8.0f} faces/s   ({r['file_mb']} MB, TTA {r['tta']})"
        )
    return "\n".join(lines)


# Which benchmark an invocation asks for: the first whose option is given (one per run).
BENCHES: list[tuple[Callable[[argparse.Namespace], bool], Callable[[argparse.Namespace], str]]] = [
    (lambda a: a.mood, _mood),
    (lambda a: a.hostile, _hostile),
    (lambda a: a.students is not None, _students),
    (lambda a: a.batch, _batch),
    (lambda a: a.events, _events),
    (lambda a: a.clutter, _clutter),
    (lambda a: a.soak, _soak),
    (lambda a: a.facing, _facing),
    (lambda a: a.real and a.readout_grid, _readout_grid),
    (lambda a: a.real, _real),
    (lambda a: a.robust, _robust),
    (lambda a: a.live, _live),
    (lambda a: a.pipeline, _pipeline),
]
