"""Expression commands on face crops: ``evaluate`` on a labelled dataset, ``predict`` on images."""

from __future__ import annotations

import argparse
import json
from typing import Any

NOTICE = (
    "classmood reports APPARENT facial expressions, not inner emotional states. Emotion inference in "
    "education institutions is prohibited in the EU (AI Act Art. 5(1)(f)); never use it to watch students during "
    "tests (high-risk, Annex III point 3(d)); use only with informed consent."
)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a model on a labelled dataset")
    p.add_argument("--data", required=True, help="FER2013 CSV (.csv/.csv.gz), compact-array folder or image folders")
    p.add_argument("--split", help="one split (e.g. PrivateTest, PublicTest; image folders: folder name or 'all')")
    p.add_argument("--model", help="shipped model name (accurate, fast) or .onnx path; default accurate")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="apparent expression of face-crop images")
    p.add_argument("images", nargs="*", help="image files, each one face crop (default: the bundled sample)")
    p.add_argument("--sample", action="store_true", help="also run the bundled sample face")
    p.add_argument("--model", help="shipped model name or .onnx path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_predict)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from classmood.expression.evaluate import evaluate, format_metrics

    results = evaluate(args.data, split=args.split, model=args.model)
    if args.json:
        print(json.dumps(next(iter(results.values())) if args.split else results))
    else:
        for name, metrics in results.items():
            print(format_metrics(name, metrics))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from classmood.expression.predict import format_prediction, predict_files, sample_face_path

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
