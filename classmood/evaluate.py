"""Accuracy of an ONNX expression model on a labelled dataset split (the interface accuracy is judged by)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from classmood.data import load_splits
from classmood.inference import ExpressionModel, load_model
from classmood.metrics import classification_metrics


def evaluate(
    data: str | Path, split: str | None = None, model: str | ExpressionModel | None = None
) -> dict[str, dict[str, Any]]:
    """Metrics per split: {split: {accuracy, macro_f1, n, per_class_recall, confusion}}.

    ``split`` picks one split (case-insensitive); ``model`` is a shipped name, an ``.onnx`` path or a
    loaded model (default: the shipped ``accurate`` model).
    """
    splits = load_splits(data, [split] if split else None)
    clf = model if isinstance(model, ExpressionModel) else load_model(model)
    return {
        name: classification_metrics(faces.labels, clf.predict_proba(faces.images)) for name, faces in splits.items()
    }


def format_metrics(name: str, m: dict[str, Any]) -> str:
    """A short human-readable summary of one split's metrics."""
    recall = "  ".join(f"{k} {v:.2f}" for k, v in m["per_class_recall"].items())
    return f"{name}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  n={m['n']}\n  recall: {recall}"
