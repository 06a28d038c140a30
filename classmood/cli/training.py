"""Training-side commands: ``train``, ``models``, ``export`` (and shipping a model), ``calibrate``,
``report`` (PyTorch where needed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from classmood.errors import ClassmoodError


def add_parsers(sub: Any) -> None:
    _add_train(sub)
    _add_models(sub)
    _add_export(sub)
    _add_quantize(sub)
    _add_calibrate(sub)
    _add_report(sub)


def _add_train(sub: Any) -> None:
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


def _add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list architectures with parameter counts and MACs per face (needs PyTorch)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_models)


def _add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="export a training checkpoint to ONNX (needs PyTorch)")
    p.add_argument("checkpoint", help="a best.pt/last.pt written by 'classmood train'")
    p.add_argument("--out", help="output .onnx (default: next to the checkpoint)")
    p.add_argument(
        "--tta",
        choices=["none", "flip", "flip_scale"],
        default="flip",
        help="test-time augmentation baked into the graph (flip_scale: 6 views, 3x flip's time)",
    )
    p.add_argument("--ship", help="install as a shipped model (accurate, fast) and record its PublicTest metrics")
    p.add_argument("--data", help="dataset for --ship's PublicTest measurement (default: the run's data)")
    p.add_argument(
        "--average-with",
        action="append",
        metavar="CHECKPOINT",
        help="another checkpoint to average with (repeatable): one file, the mean of the networks' probabilities",
    )
    p.add_argument(
        "--fit-unreadable",
        action="store_true",
        help="fit the learnt unreadable head on --data's Training split (needs FER+ votes) before exporting",
    )
    p.set_defaults(func=_cmd_export)


def _add_quantize(sub: Any) -> None:
    p = sub.add_parser("quantize", help="an int8 copy of an ONNX expression model, calibrated on Training faces")
    p.add_argument("model", help="shipped model name (accurate, fast) or .onnx path (the float file)")
    p.add_argument("--data", default="../shared/data/fer2013", help="FER2013: Training calibrates, PublicTest measures")
    p.add_argument("--out", help="output .onnx (default: beside the model, NAME.int8.onnx)")
    p.add_argument("--ship", action="store_true", help="install as the shipped model's int8 copy")
    p.add_argument("--faces", type=int, default=2000, help="Training faces that calibrate the activation ranges")
    p.add_argument("--method", choices=["minmax", "entropy", "percentile"], default="minmax", help="range calibrator")
    p.set_defaults(func=_cmd_quantize)


def _add_calibrate(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate", help="fit a model's temperature, add the classroom prior and the uncertain rule (needs onnx)"
    )
    p.add_argument("model", help="shipped model name (accurate, fast) or .onnx path")
    p.add_argument("--data", default="../shared/data/fer2013", help="FER2013 with PublicTest (the selection split)")
    p.add_argument("--temperature", type=float, help="use this temperature instead of fitting one")
    p.add_argument(
        "--neutral", type=float, help="classroom prior: this share of faces at rest (e.g. 0.5); default: no prior"
    )
    p.add_argument("--happy", type=float, help="classroom prior: this share of faces smiling (with --neutral)")
    p.add_argument("--class-weight-power", type=float, default=0.5, help="the training run's class_weight_power")
    p.add_argument("--min-confidence", type=float, default=0.0, help="uncertain below this top probability")
    p.add_argument("--min-face-px", type=float, default=0.0, help="uncertain below this face-box height in pixels")
    p.add_argument("--min-detail", type=float, default=0.0, help="uncertain below this crop detail (readout.detail)")
    p.add_argument(
        "--max-unreadable",
        type=float,
        default=0.0,
        help="uncertain above this predicted unreadable share (models with the learned head; 0 = off)",
    )
    p.add_argument(
        "--labels",
        choices=["auto", "fer2013", "ferplus"],
        default="auto",
        help="labels the temperature is fitted to (auto: those the model was taught, from its metadata)",
    )
    p.add_argument("--write", action="store_true", help="store the readout in the model file's metadata")
    p.set_defaults(func=_cmd_calibrate)


def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="write docs/models.md and confusion-matrix images from training runs")
    p.add_argument("--runs", default="docs/runs", help="folder of run folders holding run.json")
    p.add_argument("--out", default="docs/models.md")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--readme", help="also refresh the shipped-model table in this README (between its markers)")
    p.add_argument("--experiments", default="docs/experiments.md", help="the experiment log to write ('' to skip)")
    p.set_defaults(func=_cmd_report)


def _cmd_train(args: argparse.Namespace) -> int:
    try:
        from classmood.training.train import TrainConfig, train
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
        from classmood.training.parallel import train_in_parallel

        return train_in_parallel(recipes, args)
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
    from classmood.models import model_factory

    model_factory(cfg.arch)  # an unknown architecture is refused before any data is read
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


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        from classmood.training.ship import export_checkpoint
    except ImportError as exc:
        raise ClassmoodError(f"export needs PyTorch: pip install 'classmood[train]' ({exc})") from None
    out, val = export_checkpoint(
        Path(args.checkpoint),
        args.out,
        args.tta,
        ship=args.ship,
        data=args.data,
        fit_unreadable=args.fit_unreadable,
        average_with=[Path(p) for p in args.average_with or []],
    )
    if val is not None:
        print(f"shipped {args.ship}: PublicTest accuracy {val['accuracy']:.4f}, macro-F1 {val['macro_f1']:.3f}")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit a model's temperature on PublicTest, add the classroom prior and the uncertain rules,
    print what they change (raw and deployed side by side, on FER2013's labels and on FER+'s
    majority where the data has votes) and, with --write, store them in the model."""
    from classmood.data import ferplus as fp
    from classmood.data import load_split
    from classmood.expression.calibrate import expected_calibration_error, fit_model_temperature
    from classmood.expression.model import load_model
    from classmood.expression.readout import Readout

    model = load_model(args.model, precision="float")  # the readout is fitted on (and written into) the float file
    split = load_split(args.data, "PublicTest")
    raw, unreadable = model.predict(split.images, raw=True)
    labels = args.labels if args.labels != "auto" else model.metadata.get("classmood.targets", "fer2013")
    if labels == "ferplus" and split.votes is None:
        raise ClassmoodError(f"--labels ferplus needs {fp.VOTES_FILE} in {args.data}")
    if args.max_unreadable and unreadable is None:
        raise ClassmoodError(f"{args.model} has no unreadable head (train with unreadable_head = true)")
    if args.temperature is not None:
        temperature = args.temperature
    else:
        temperature = fit_model_temperature(raw, split.labels, split.votes, labels)
    try:
        readout = Readout(
            temperature,
            _classroom_prior(args, model.metadata),
            args.min_confidence,
            args.min_face_px,
            args.min_detail,
            args.max_unreadable,
        )
    except ValueError as exc:
        raise ClassmoodError(f"invalid readout: {exc}") from None
    print(f"{model.name} on PublicTest (n={len(split.labels)}), temperature fitted to {labels} labels")
    ece_raw, ece = (expected_calibration_error(p, split.labels) for p in (raw, Readout(temperature).calibrate(raw)))
    print(f"  temperature {temperature:g}: expected calibration error (FER2013 labels) {ece_raw:.4f} -> {ece:.4f}")
    _print_readout_effect(split, raw, unreadable, readout, args.max_unreadable)
    print(f"  readout: {readout.describe()}")
    if args.write:
        _write_readout(args.model, readout)
    return 0


def _classroom_prior(args: argparse.Namespace, metadata: dict[str, str]) -> Any:
    """The class-balance weights for --neutral (and --happy), or None without --neutral."""
    from classmood.expression.calibrate import classroom_prior, model_train_prior, prior_weights

    if args.neutral is None:
        return None
    train_prior = model_train_prior(metadata, args.class_weight_power)
    # the other classes keep the proportions of the labels the model learnt
    base = train_prior if "classmood.train_prior" in metadata else None
    try:
        return prior_weights(classroom_prior(args.neutral, base, args.happy), train_prior)
    except ValueError as exc:
        raise ClassmoodError(f"invalid classroom prior: {exc}") from None


def _print_readout_effect(split: Any, raw: Any, unreadable: Any, readout: Any, max_unreadable: float) -> None:
    """Raw and deployed scores side by side on each label set, and what the unreadable rule flags."""
    import numpy as np

    from classmood.data import ferplus as fp
    from classmood.expression.evaluate import deployed_metrics, ferplus_metrics
    from classmood.expression.metrics import classification_metrics

    rows = [
        (
            "FER2013",
            classification_metrics(split.labels, raw),
            deployed_metrics(split.labels, raw, split.images, readout, unreadable),
        )
    ]
    plus = ferplus_metrics(split, raw, readout, unreadable)
    if plus is not None:
        rows.append(("FER+", plus, plus["deployed"]))
    for name, m, d in rows:
        print(f"  {name} labels, raw:      accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}")
        print(
            f"  {name} labels, deployed: accuracy {d['accuracy']:.4f}  macro-F1 {d['macro_f1']:.4f}  "
            f"coverage {d['coverage']:.1%}  accuracy of read faces {d['accuracy_read']:.4f}"
        )
        for cls in ("neutral", "happy", "sad", "angry", "fear"):
            print(f"    recall {cls:8s} {m['per_class_recall'][cls]:.2f} -> {d['per_class_recall'][cls]:.2f}")
    if unreadable is not None and split.votes is not None:
        share = fp.unreadable_share(split.votes)
        hard = share >= 0.3
        flagged = unreadable > max_unreadable if max_unreadable else np.zeros(len(raw), bool)
        print(
            f"  unreadable head: {int(hard.sum())} faces with >= 3 of 10 'unknown'/'not a face' votes; "
            f"the rule flags {flagged.mean():.1%} of all faces and {flagged[hard].mean():.1%} of those"
        )


def _write_readout(name: str, readout: Any) -> None:
    """Store the readout in the model file and, for a shipped model, in its int8 copy (and the manifest)."""
    from classmood.expression.model import resolve_model
    from classmood.training.ship_readout import write_readout

    path = resolve_model(name)
    write_readout(path, readout)
    print(f"wrote the readout into {path}")
    copy = resolve_model(name, "int8")
    if copy != path:  # a shipped model's int8 copy reads with the same readout
        write_readout(copy, readout)
        print(f"wrote the readout into {copy}")
        from classmood.weights.manifest import read_manifest, record_shipped

        entry = read_manifest().get(name)
        if entry and "int8" in entry:  # the manifest keeps the copy's size (the readout is in its metadata)
            entry["int8"]["file_bytes"] = copy.stat().st_size
            record_shipped(name, entry)


def _cmd_quantize(args: argparse.Namespace) -> int:
    from classmood.data import load_split
    from classmood.expression.model import int8_path, load_model, resolve_model, shipped_model_path
    from classmood.training.quantize import QuantizeConfig, calibration_faces, quantize_model
    from classmood.weights.shipped import SHIPPED

    if args.ship and args.model not in SHIPPED:
        raise ClassmoodError(f"--ship takes a shipped model ({', '.join(SHIPPED)}), not {args.model!r}")
    if args.faces < 1:
        raise ClassmoodError(f"--faces must be at least 1, not {args.faces}")
    source = resolve_model(args.model, "float")
    if args.ship:
        out = shipped_model_path(args.model, "int8")
    elif args.out:
        out = Path(args.out)
    else:
        out = int8_path(source)
    if out.resolve() == source.resolve():
        raise ClassmoodError(f"--out {out} is the model itself")
    config = QuantizeConfig(calibration_faces=args.faces, calibrate_method=args.method)
    train = load_split(args.data, "Training")
    quantize_model(source, out, calibration_faces(train.images, train.labels, config.calibration_faces), config)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, float {source.stat().st_size / 1e6:.1f} MB)")
    from classmood.expression.evaluate import evaluate

    measured = {}
    for tag, path in (("float", source), ("int8", out)):
        m = evaluate(args.data, "PublicTest", load_model(str(path)))["PublicTest"]
        plus = m.get("ferplus", {}).get("accuracy")
        measured[tag] = {"accuracy": m["accuracy"], "ferplus_accuracy": plus}
        print(f"  {tag:5s} PublicTest: FER2013 {m['accuracy']:.2%}" + (f", FER+ majority {plus:.2%}" if plus else ""))
    if args.ship:
        from classmood.weights.manifest import read_manifest, record_shipped

        entry = read_manifest().get(args.model, {})
        entry["int8"] = {
            "file_bytes": out.stat().st_size,
            "method": f"static QDQ, {args.method} on {args.faces} Training faces, per-channel weights",
            "val": measured["int8"],
        }
        record_shipped(args.model, entry)
        print(f"recorded in the manifest under {args.model}.int8")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        from classmood.training.model_report import build_report
    except ImportError as exc:
        raise ClassmoodError(
            f"the report needs PyTorch and matplotlib: pip install 'classmood[train]' ({exc})"
        ) from None
    if not Path(args.runs).is_dir():
        raise ClassmoodError(f"{args.runs}: no such folder of training runs")
    build_report(args.runs, args.out, threads=args.threads, readme=args.readme)
    print(f"wrote {args.out}")
    if args.experiments:
        from classmood.training.experiments import write_experiment_log

        print(f"wrote {write_experiment_log(args.runs, args.experiments)}")
    return 0
