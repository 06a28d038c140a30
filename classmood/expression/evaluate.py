"""Accuracy of an ONNX expression model on a labelled dataset split (the interface accuracy is judged by).

The top-level numbers are the raw model's (arg-max of its probabilities), comparable with every
published FER2013 result. When the model ships a readout (a deployment prior, uncertain
thresholds: see ``expression/readout.py``), ``deployed`` gives the same metrics as a teacher would
see them through that readout, with ``coverage`` the share of faces it read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from classmood.data import load_splits
from classmood.expression.metrics import classification_metrics
from classmood.expression.model import ExpressionModel, load_model
from classmood.expression.readout import UNCERTAIN, Readout
from classmood.labels import EMOTIONS, NUM_CLASSES


def deployed_metrics(labels: np.ndarray, probs: np.ndarray, faces: np.ndarray, readout: Readout) -> dict[str, Any]:
    """Metrics of ``readout``'s decisions. An uncertain face is a miss for its class and nobody's
    false alarm; ``coverage`` is the share read, ``confusion`` has an 8th column for uncertain."""
    labels = np.asarray(labels, np.int64)
    pred = readout.decide(probs, faces)
    read = pred != UNCERTAIN
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES + 1), np.int64)
    np.add.at(cm, (labels, np.where(read, pred, NUM_CLASSES)), 1)
    tp = np.diag(cm[:, :NUM_CLASSES]).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm[:, :NUM_CLASSES].sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros(NUM_CLASSES), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(NUM_CLASSES), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(NUM_CLASSES), where=precision + recall > 0)
    return {
        "accuracy": float(tp.sum() / max(1, len(labels))),
        "accuracy_read": float((pred[read] == labels[read]).mean()) if read.any() else 0.0,
        "coverage": float(read.mean()) if len(labels) else 0.0,
        "macro_f1": float(f1[support > 0].mean()) if (support > 0).any() else 0.0,
        "per_class_recall": {name: float(r) for name, r in zip(EMOTIONS, recall, strict=True)},
        "confusion": cm.tolist(),
        "readout": readout.describe(),
    }


def evaluate(
    data: str | Path, split: str | None = None, model: str | ExpressionModel | None = None
) -> dict[str, dict[str, Any]]:
    """Metrics per split: {split: {accuracy, macro_f1, n, per_class_recall, confusion[, deployed]}}.

    ``split`` picks one split (case-insensitive); ``model`` is a shipped name, an ``.onnx`` path or a
    loaded model (default: the shipped ``accurate`` model).
    """
    splits = load_splits(data, [split] if split else None)
    clf = model if isinstance(model, ExpressionModel) else load_model(model)
    out = {}
    for name, faces in splits.items():
        probs = clf.predict_proba(faces.images, raw=True)
        metrics = classification_metrics(faces.labels, probs)
        if clf.readout != Readout():
            metrics["deployed"] = deployed_metrics(faces.labels, probs, faces.images, clf.readout)
        out[name] = metrics
    return out


def format_metrics(name: str, m: dict[str, Any]) -> str:
    """A short human-readable summary of one split's metrics."""
    recall = "  ".join(f"{k} {v:.2f}" for k, v in m["per_class_recall"].items())
    text = f"{name}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  n={m['n']}\n  recall: {recall}"
    d = m.get("deployed")
    if d:
        recall = "  ".join(f"{k} {v:.2f}" for k, v in d["per_class_recall"].items())
        text += (
            f"\n  deployed ({d['readout']}): accuracy {d['accuracy']:.4f} (read faces {d['accuracy_read']:.4f}, "
            f"coverage {d['coverage']:.1%})  macro-F1 {d['macro_f1']:.4f}\n  recall: {recall}"
        )
    return text
