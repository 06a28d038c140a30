"""Classification metrics shared by training and evaluation (NumPy only, so the runtime needs no PyTorch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from classmood.labels import EMOTIONS, NUM_CLASSES


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """7x7 counts, rows = truth, columns = prediction, FER2013 label order."""
    return np.bincount(y_true * NUM_CLASSES + y_pred, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """accuracy, macro-F1, n, per-class recall (keyed by class word) and the confusion matrix."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(probs).argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    recall = np.divide(tp, support, out=np.zeros(NUM_CLASSES), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(NUM_CLASSES), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(NUM_CLASSES), where=denom > 0)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / max(1, len(y_true))),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "n": len(y_true),
        "per_class_recall": {name: float(r) for name, r in zip(EMOTIONS, recall, strict=True)},
        "confusion": cm.tolist(),
    }
