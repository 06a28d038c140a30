"""The ``classmood`` command: one entry point, one subcommand per job.

User mistakes (bad files, unknown names) end with a one-line ``classmood: error: ...`` and exit
status 2; heavy imports (PyTorch, ONNX Runtime) happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from classmood.errors import ClassmoodError, Stopped

NOTICE = (
    "classmood reports APPARENT facial expressions, not inner emotional states. Emotion inference in "
    "education institutions is prohibited in the EU (AI Act Art. 5(1)(f)); use only with informed consent."
)


def _train_in_parallel(recipes: list[str], args: argparse.Namespace) -> int:
    """Run several recipes at once as child processes (one GPU is far from busy with one small run).

    Each child's output goes to ``<out>/train.log``; flags given here (--data, --device, ...) apply
    to every recipe. Returns non-zero when any run failed.
    """
    import subprocess

    from classmood.train import TrainConfig

    passthrough: list[str] = []
    for flag in ("data", "device", "threads", "limit", "epochs"):
        value = getattr(args, flag)
        if value is not None:
            passthrough += [f"--{flag}", str(value)]
    if args.no_export:
        passthrough.append("--no-export")
    children = []
    for recipe in recipes:
        try:
            out = Path(TrainConfig.from_toml(recipe).out)
        except (ValueError, TypeError, OSError) as exc:
            raise ClassmoodError(f"bad training settings in {recipe}: {exc}") from None
        out.mkdir(parents=True, exist_ok=True)
        log = open(out / "train.log", "w")  # noqa: SIM115 - closed below, after the child exits
        cmd = [sys.executable, "-m", "classmood.cli", "train", "--recipe", recipe, *passthrough]
        children.append((recipe, out, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
        print(f"started {recipe} -> {out}/train.log", flush=True)
    failed = 0
    for recipe, out, log, child in children:
        code = child.wait()
        log.close()
        run = out / "run.json"
        if code == 0 and run.is_file():
            summary = json.loads(run.read_text())
            print(f"{recipe}: PublicTest {summary['val']['accuracy']:.4f} after {summary['epochs']} epochs", flush=True)
        else:
            failed += 1
            print(f"{recipe}: failed (exit {code}); see {out}/train.log", flush=True)
    return 1 if failed else 0


def _cmd_train(args: argparse.Namespace) -> int:
    try:
        from classmood.train import TrainConfig, train
    except ImportError as exc:
        raise ClassmoodError(f"training needs PyTorch: pip install 'classmood[train]' ({exc})") from None
    overrides = {
        "arch": args.arch,
        "data": args.data,
        "epochs": args.epochs,
        "out": args.out,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "device": args.device,
        "threads": args.threads,
        "limit": args.limit,
        "teacher": args.teacher,
        "export_onnx": False if args.no_export else None,
    }
    recipes = args.recipe or []
    if len(recipes) > 1:
        return _train_in_parallel(recipes, args)
    try:
        if recipes:
            cfg = TrainConfig.from_toml(recipes[0], **overrides)
        else:
            if not args.arch:
                raise ClassmoodError("give --arch NAME or --recipe FILE (see 'classmood models')")
            cfg = TrainConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
            if not args.out:
                cfg.out = f"runs/{cfg.arch}"
    except (ValueError, TypeError, OSError) as exc:
        raise ClassmoodError(f"bad training settings: {exc}") from None
    from classmood.models import list_models

    if cfg.arch not in list_models():
        raise ClassmoodError(f"unknown architecture {cfg.arch!r}; known: {', '.join(list_models())}")
    train(cfg)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    try:
        from classmood.models import count_macs, count_params, create_model, list_models
    except ImportError as exc:
        raise ClassmoodError(f"listing architectures needs PyTorch: pip install 'classmood[train]' ({exc})") from None
    rows: list[dict[str, Any]] = []
    for name in list_models():
        model = create_model(name)
        doc = (type(model).__doc__ or "").strip().splitlines()
        rows.append(
            {
                "name": name,
                "params": count_params(model),
                "macs_per_face": count_macs(model),
                "summary": doc[0] if doc else "",
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'architecture':20s} {'params':>10s} {'MACs/face':>12s}")
        for r in rows:
            print(f"{r['name']:20s} {r['params'] / 1e6:9.2f}M {r['macs_per_face'] / 1e6:11.1f}M")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from classmood.evaluate import evaluate, format_metrics

    results = evaluate(args.data, split=args.split, model=args.model)
    if args.json:
        print(json.dumps(next(iter(results.values())) if args.split else results))
    else:
        for name, metrics in results.items():
            print(format_metrics(name, metrics))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        from classmood.export import export_onnx
        from classmood.train import load_checkpoint
    except ImportError as exc:
        raise ClassmoodError(f"export needs PyTorch: pip install 'classmood[train]' ({exc})") from None
    from classmood.inference import SHIPPED_MODELS, shipped_model_path

    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise ClassmoodError(f"{ckpt}: no such checkpoint")
    run_json = ckpt.parent / "run.json"
    run = json.loads(run_json.read_text()) if run_json.is_file() else {}
    if args.ship and args.ship not in SHIPPED_MODELS:
        raise ClassmoodError(f"--ship takes one of {', '.join(SHIPPED_MODELS)}")
    out = shipped_model_path(args.ship) if args.ship else Path(args.out or ckpt.with_suffix(".onnx"))
    model = load_checkpoint(ckpt)
    meta = {"name": args.ship or ckpt.parent.name, "arch": run.get("arch", ""), "run": ckpt.parent.name}
    export_onnx(model, out, tta=args.tta, metadata=meta)
    if args.ship:
        from classmood.evaluate import evaluate
        from classmood.inference import load_model
        from classmood.weights_manifest import record_shipped

        data = args.data or run.get("config", {}).get("data")
        if not data:
            raise ClassmoodError("--ship needs --data to measure the shipped file on PublicTest")
        val = evaluate(data, "PublicTest", load_model(str(out)))["PublicTest"]
        record_shipped(
            args.ship,
            {
                "run": ckpt.parent.name,
                "arch": run.get("arch", ""),
                "tta": args.tta,
                "params": run.get("params"),
                "macs": run.get("macs"),
                "val": val,
                "train_seconds": run.get("train_seconds"),
                "hardware": run.get("hardware"),
                "distilled_from": run.get("distilled_from", []),
            },
        )
        print(f"shipped {args.ship}: PublicTest accuracy {val['accuracy']:.4f}, macro-F1 {val['macro_f1']:.3f}")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.events:
        from classmood.benchmarks.events import run_events_bench

        print(json.dumps(run_events_bench(args.data, seed=args.seed if args.seed else 1), indent=2))
        return 0
    if args.clutter:
        from classmood.benchmarks.clutter import TEST_SEEDS, run_clutter_bench

        clutter = run_clutter_bench(TEST_SEEDS)
        if not args.json:
            for v in clutter["variants"].values():
                v.pop("false_positive_boxes")
        print(json.dumps(clutter, indent=2))
        return 0
    if args.soak:
        from classmood.benchmarks.soak import run_soak

        soak = run_soak(seconds=args.seconds or 3600.0)
        if not args.json:
            soak.pop("samples")
        print(json.dumps(soak, indent=2))
        return 0
    if args.robust:
        from classmood.benchmarks.robust import format_table, run_robust_bench

        robust = run_robust_bench(args.data, args.model or ["fast", "accurate"], limit=args.limit, seed=args.seed)
        print(json.dumps(robust, indent=2) if args.json else format_table(robust))
        return 0
    if args.live:
        from classmood.live_bench import run_live_bench

        print(json.dumps(run_live_bench(seconds=args.seconds or 20.0), indent=2))
        return 0
    if args.pipeline:
        from classmood.gallery_bench import run_gallery_bench

        gallery = run_gallery_bench(args.data, seconds=args.seconds or 20.0)
        print(json.dumps(gallery, indent=2))
        return 0
    from classmood.bench import bench_models

    result = bench_models(args.model, threads=args.threads, runs=args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['cpu']}, {result['threads']} threads, median of {result['runs']} runs")
        for name, r in result["models"].items():
            print(
                f"  {name:10s} batch 1: {r['faces_per_s_batch1']:8.0f} faces/s   "
                f"batch 64: {r['faces_per_s_batch64']:8.0f} faces/s   ({r['file_mb']} MB, TTA {r['tta']})"
            )
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit a model's temperature on PublicTest, add the classroom prior and the uncertain rule,
    print what they change (raw and deployed side by side) and, with --write, store them in the model."""
    from classmood.data import load_split
    from classmood.evaluate import deployed_metrics
    from classmood.expression.calibrate import (
        classroom_prior,
        expected_calibration_error,
        fit_temperature,
        prior_weights,
        training_prior,
    )
    from classmood.expression.readout import Readout
    from classmood.inference import ENSEMBLE, load_model, resolve_model
    from classmood.metrics import classification_metrics

    if args.model == ENSEMBLE:
        raise ClassmoodError("calibrate one file at a time; the ensemble uses its first member's readout")
    model = load_model(args.model)
    split = load_split(args.data, "PublicTest")
    raw = model.predict_proba(split.images, raw=True)
    temperature = fit_temperature(raw, split.labels) if args.temperature is None else args.temperature
    prior = None
    if args.neutral is not None:
        prior = prior_weights(classroom_prior(args.neutral), training_prior(args.class_weight_power))
    try:
        readout = Readout(temperature, prior, args.min_confidence, args.min_face_px, args.min_detail)
    except ValueError as exc:
        raise ClassmoodError(f"invalid readout: {exc}") from None
    calibrated = Readout(temperature).calibrate(raw)
    metrics = classification_metrics(split.labels, raw)
    deployed = deployed_metrics(split.labels, raw, split.images, readout)
    print(f"{model.name} on PublicTest (n={len(split.labels)})")
    ece_raw, ece = (expected_calibration_error(p, split.labels) for p in (raw, calibrated))
    print(f"  temperature {temperature:g}: expected calibration error {ece_raw:.4f} -> {ece:.4f}")
    print(f"  raw:      accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}")
    print(
        f"  deployed: accuracy {deployed['accuracy']:.4f}  macro-F1 {deployed['macro_f1']:.4f}  "
        f"coverage {deployed['coverage']:.1%}  accuracy of read faces {deployed['accuracy_read']:.4f}"
    )
    for name in ("neutral", "happy", "sad", "angry", "fear"):
        print(
            f"    recall {name:8s} {metrics['per_class_recall'][name]:.2f} -> {deployed['per_class_recall'][name]:.2f}"
        )
    print(f"  readout: {readout.describe()}")
    if args.write:
        from classmood.training.ship_readout import write_readout

        path = resolve_model(args.model)
        write_readout(path, readout)
        print(f"wrote the readout into {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        from classmood.report import build_report
    except ImportError as exc:
        raise ClassmoodError(
            f"the report needs PyTorch and matplotlib: pip install 'classmood[train]' ({exc})"
        ) from None
    if not Path(args.runs).is_dir():
        raise ClassmoodError(f"{args.runs}: no such folder of training runs")
    build_report(args.runs, args.out, threads=args.threads, readme=args.readme)
    print(f"wrote {args.out}")
    if args.experiments:
        from classmood.experiments import write_experiment_log

        print(f"wrote {write_experiment_log(args.runs, args.experiments)}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from classmood.predict import format_prediction, predict_files, sample_face_path

    paths = list(args.images) + ([str(sample_face_path())] if args.sample or not args.images else [])
    preds = predict_files(paths, args.model)
    if args.json:
        print(
            json.dumps(
                [{"source": p.source, "expression": p.expression, "probabilities": p.probabilities} for p in preds],
                indent=2,
            )
        )
    else:
        print(NOTICE)
        for p in preds:
            print(format_prediction(p))
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from classmood.outputs import prepare_out
    from classmood.pipeline import PipelineConfig
    from classmood.vision.sources import open_source

    # Everything that can be refused is refused before anything is opened, written or saved.
    config = PipelineConfig(
        detector=args.detector, model=args.model, rate_hz=args.rate, bin_s=args.bin, min_faces=args.min_faces
    )
    if args.db and not args.save:
        raise ClassmoodError("--db names the session database for --save; add --save")
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


def _analyze_and_save(args: argparse.Namespace, source: Any, config: Any, store: Any) -> int:
    from dataclasses import asdict

    from classmood.outputs import analyze
    from classmood.store import AnalysisRecorder

    recorder = AnalysisRecorder(store, "cli", str(args.input), asdict(config)) if store is not None else None
    if recorder is not None and recorder.error:
        source.close()
        raise ClassmoodError(recorder.error)
    try:
        result = analyze(
            source,
            args.out,
            config,
            progress=sys.stderr.isatty(),
            annotate=args.annotate,
            per_track=args.per_track,
            on_update=recorder.on_update if recorder else None,
        )
    except (KeyboardInterrupt, Stopped):  # Ctrl-C or SIGTERM: what was analysed stays saved, files included
        if recorder:
            recorder.stopped()
        raise
    except Exception as exc:
        if recorder:
            recorder.failed(exc)
        raise
    except BaseException:
        if recorder:
            recorder.stopped()
        raise
    s = result.summary
    print(
        f"{s['frames_analysed']} of {s['frames']} frames analysed, {s['faces']} faces, {s['tracks']} tracks, "
        f"{s['analysed_fps']} analysed frames/s -> {args.out}"
    )
    if s.get("skipped_frames"):
        print(f"classmood: warning: skipped {s['skipped_frames']} damaged or unreadable frames", file=sys.stderr)
    if s["truncated"]:
        print(f"classmood: warning: {args.input} ended early (truncated?); what was read is saved", file=sys.stderr)
    if recorder is not None:
        recorder.finish(result)
        if recorder.error:
            print(f"classmood: warning: {recorder.error}", file=sys.stderr)
        else:
            print(f"saved as session {recorder.session_id} ({store!r})")
    return 0


def _open_session_store(url: str | None = None) -> Any:
    from classmood.store import open_store

    return open_store(url)


def _cmd_sessions(args: argparse.Namespace) -> int:
    store = _open_session_store(args.db)
    try:
        _sessions_action(store, args)
    finally:
        store.close()  # a PostgreSQL connection left open warns when collected
    return 0


def _sessions_action(store: Any, args: argparse.Namespace) -> None:
    from classmood.analytics.privacy import check_min_faces

    k = None if args.min_faces is None else check_min_faces(args.min_faces)
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
            cols = ["start_s", "end_s", "frames", "faces", "tracks", "suppressed", "valence", "negative_share", "flags"]
            print(bins[cols].to_string(index=False))
        print("(apparent facial expressions, not inner emotional states)")
    elif args.action == "export":
        for path in store.export(args.id, args.out, args.format, min_faces=k):
            print(f"wrote {path}")
    elif args.action == "delete":
        store.delete(args.id)
        print(f"deleted session {args.id}")
    elif args.action == "compare":
        table = store.compare(args.a, args.b, min_faces=k)
        table.columns = [f"session {args.a}", f"session {args.b}", f"{args.b} - {args.a}"]
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
        print("(apparent facial expressions, not inner emotional states; shares and valence from unsuppressed bins)")


def _cmd_app(args: argparse.Namespace) -> int:
    from classmood.app import auth, server

    if args.hash_password:
        print(auth.hash_password(server.read_new_password()))
        return 0
    return server.run_app(args.host, args.port, args.db, args.max_upload_mb)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classmood",
        description="Apparent facial expressions in online-class video, aggregated into class mood.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model on FER2013 (needs PyTorch)")
    p.add_argument(
        "--recipe",
        action="append",
        help="TOML recipe file (see recipes/); flags below override it. Repeat to train several at once",
    )
    p.add_argument("--arch", help="architecture name (classmood models)")
    p.add_argument("--data", help="FER2013 CSV, compact-array folder or image folders")
    p.add_argument("--epochs", type=int)
    p.add_argument("--out", help="run folder (default runs/<arch>)")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, help="CPU threads")
    p.add_argument("--limit", type=int, help="use only the first N training images")
    p.add_argument("--teacher", action="append", help="checkpoint to distil from (repeatable)")
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export at the end")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("models", help="list architectures with parameter counts and MACs per face (needs PyTorch)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("evaluate", help="accuracy of a model on a labelled dataset")
    p.add_argument("--data", required=True, help="FER2013 CSV (.csv/.csv.gz), compact-array folder or image folders")
    p.add_argument("--split", help="one split (e.g. PrivateTest, PublicTest; image folders: folder name or 'all')")
    p.add_argument("--model", help="shipped model name (accurate, fast, ensemble) or .onnx path; default accurate")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("export", help="export a training checkpoint to ONNX (needs PyTorch)")
    p.add_argument("checkpoint", help="a best.pt/last.pt written by 'classmood train'")
    p.add_argument("--out", help="output .onnx (default: next to the checkpoint)")
    p.add_argument(
        "--tta",
        choices=["none", "flip", "flip_scale"],
        default="flip",
        help="test-time augmentation baked into the graph (flip_scale: 6 views, 3x flip's time)",
    )
    p.add_argument(
        "--ship", help="install as a shipped model (accurate, fast, accurate_alt) and record its PublicTest metrics"
    )
    p.add_argument("--data", help="dataset for --ship's PublicTest measurement (default: the run's data)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("bench", help="faces/s of the shipped models on this CPU")
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
        "--data", default="../shared/data/fer2013", help="FER2013 with PublicTest, for --pipeline, --robust, --events"
    )
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
        "--seed", type=int, default=0, help="--robust: seed of the degradations and subset; --events: recording (1)"
    )
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "calibrate", help="fit a model's temperature, add the classroom prior and the uncertain rule (needs onnx)"
    )
    p.add_argument("model", help="shipped model name (accurate, fast, accurate_alt) or .onnx path")
    p.add_argument("--data", default="../shared/data/fer2013", help="FER2013 with PublicTest (the selection split)")
    p.add_argument("--temperature", type=float, help="use this temperature instead of fitting one")
    p.add_argument(
        "--neutral", type=float, help="classroom prior: this share of faces at rest (e.g. 0.5); default: no prior"
    )
    p.add_argument("--class-weight-power", type=float, default=0.5, help="the training run's class_weight_power")
    p.add_argument("--min-confidence", type=float, default=0.0, help="uncertain below this top probability")
    p.add_argument("--min-face-px", type=float, default=0.0, help="uncertain below this face-box height in pixels")
    p.add_argument("--min-detail", type=float, default=0.0, help="uncertain below this crop detail (readout.detail)")
    p.add_argument("--write", action="store_true", help="store the readout in the model file's metadata")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("report", help="write docs/models.md and confusion-matrix images from training runs")
    p.add_argument("--runs", default="docs/runs", help="folder of run folders holding run.json")
    p.add_argument("--out", default="docs/models.md")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--readme", help="also refresh the shipped-model table in this README (between its markers)")
    p.add_argument("--experiments", default="docs/experiments.md", help="the experiment log to write ('' to skip)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("analyze", help="faces, tracks and class mood of an image, folder, video, webcam or screen")
    p.add_argument("input", help="image, folder of images, video file, webcam:N, or screen / screen:N / screen:X,Y,W,H")
    p.add_argument("--out", required=True, help="output folder for faces.csv, class_mood.csv, summary.json")
    p.add_argument("--detector", default="libface", help="libface (fast, default) or mtcnn (accurate)")
    p.add_argument(
        "--model", default="fast", help="expression model: fast (default), accurate, ensemble, or .onnx path"
    )
    p.add_argument("--rate", type=float, default=2.0, help="analysed frames per second of input (0 = all)")
    p.add_argument("--bin", type=float, default=5.0, help="class-mood time bin in seconds")
    p.add_argument(
        "--min-faces",
        type=int,
        default=5,
        help="k: class-level numbers only from time bins with at least k faces (default 5; at least 1)",
    )
    p.add_argument("--save", action="store_true", help="also save as a session (DATABASE_URL or CLASSMOOD_DB)")
    p.add_argument("--db", help="with --save: SQLite file path or SQLAlchemy URL of the session database")
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

    p = sub.add_parser("predict", help="apparent expression of face-crop images")
    p.add_argument("images", nargs="*", help="image files, each one face crop (default: the bundled sample)")
    p.add_argument("--sample", action="store_true", help="also run the bundled sample face")
    p.add_argument("--model", help="shipped model name or .onnx path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_predict)

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
    q.add_argument("id", type=int)
    q = actions.add_parser("export", parents=[db], help="write faces, class_mood and session.json")
    q.add_argument("id", type=int)
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--format", choices=["csv", "parquet"], default="csv")
    q = actions.add_parser("delete", parents=[db], help="remove a session and all its rows")
    q.add_argument("id", type=int)
    q = actions.add_parser("compare", parents=[db], help="overall expression shares, valence and faces of two sessions")
    q.add_argument("a", type=int)
    q.add_argument("b", type=int)
    p.set_defaults(func=_cmd_sessions)

    p = sub.add_parser("app", help="the classroom web app (Streamlit) on http://localhost:8501")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; not loopback needs a password")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--db", help="session database: SQLite file path or SQLAlchemy URL (default: see 'sessions')")
    p.add_argument("--max-upload-mb", type=int, help="largest uploaded recording in MB (default 500)")
    p.add_argument(
        "--hash-password",
        action="store_true",
        help="instead: read a password and print its salted hash for CLASSMOOD_PASSWORD_HASH",
    )
    p.set_defaults(func=_cmd_app)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> str:
    return f"classmood: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    previous = _stop_on_sigterm() if args.command == "analyze" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return func(args)
    except ClassmoodError as exc:
        print(f"classmood: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("classmood: interrupted", file=sys.stderr)
        return 130
    except Stopped:
        print("classmood: stopped (SIGTERM); what was analysed is saved", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """SIGTERM (``kill``, a container stop, a service manager) stops like Ctrl-C: outputs and session kept."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: Any) -> None:
        from classmood.outputs import STOP_REQUESTED

        STOP_REQUESTED.set()  # the analysis stops between two frames, with everything saved

    return signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    sys.exit(main())
