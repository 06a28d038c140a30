"""Classification metrics shared by training and evaluation (NumPy only, so the runtime needs no PyTorch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from classmood.labels import EMOTIONS, NUM_CLASSES


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """7x7 counts, rows = truth, columns = prediction, FER2013 label order."""
    return np.bincount(y_true * NUM_CLASSES + y_pred, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def confusion_scores(cm: np.ndarray) -> dict[str, Any]:
    """accuracy, macro-F1, n and per-class recall (keyed by class word) from a confusion matrix.

    ``cm`` is 7x7 (rows truth, columns prediction) or 7x8, whose 8th column counts faces a readout
    left uncertain: a miss for their class and nobody's false alarm. The one place these scores are
    computed, for the raw argmax (``classification_metrics``) and the deployed readout alike."""
    tp = np.diag(cm[:, :NUM_CLASSES])
    support = cm.sum(axis=1)
    predicted = cm[:, :NUM_CLASSES].sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros(NUM_CLASSES), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(NUM_CLASSES), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(NUM_CLASSES), where=denom > 0)
    present = support > 0
    n = int(cm.sum())
    return {
        "accuracy": float(tp.sum() / max(1, n)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "n": n,
        "per_class_recall": {name: float(r) for name, r in zip(EMOTIONS, recall, strict=True)},
    }


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """accuracy, macro-F1, n, per-class recall (keyed by class word) and the confusion matrix."""
    cm = confusion_matrix(np.asarray(y_true, dtype=np.int64), np.asarray(probs).argmax(axis=1))
    return {**confusion_scores(cm), "confusion": cm.tolist()}
