"""Accuracy of an ONNX expression model on a labelled dataset split (the interface accuracy is judged by).

The top-level numbers are the raw model's (arg-max of its probabilities) against the dataset's own
labels, comparable with every published FER2013 result. When the model ships a readout (a
deployment prior, uncertain thresholds: see ``expression/readout.py``), ``deployed`` gives the same
metrics as a teacher would see them through that readout, with ``coverage`` the share of faces it read.

When the dataset folder has FER+'s ten-annotator votes (``data/ferplus.py``), ``ferplus`` gives the
same metrics against the FER+ majority label (faces with a single 7-class majority; ties, contempt,
unknown and not-a-face majorities left out), plus ``soft_cross_entropy``: the mean cross-entropy of
the model's probabilities against the annotators' vote distribution (lower is better; the entropy of
the votes themselves is its floor, given as ``vote_entropy``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from classmood.data import FaceSet, load_splits
from classmood.data import ferplus as fp
from classmood.expression.metrics import classification_metrics, confusion_scores
from classmood.expression.model import FER2013_OUTPUT, UNREADABLE_OUTPUT, ExpressionModel, load_model
from classmood.expression.readout import UNCERTAIN, Readout
from classmood.labels import NUM_CLASSES


def deployed_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    faces: np.ndarray,
    readout: Readout,
    unreadable: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of ``readout``'s decisions. An uncertain face is a miss for its class and nobody's
    false alarm; ``coverage`` is the share read, ``confusion`` has an 8th column for uncertain."""
    labels = np.asarray(labels, np.int64)
    pred = readout.decide(probs, faces, unreadable=unreadable)
    read = pred != UNCERTAIN
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES + 1), np.int64)
    np.add.at(cm, (labels, np.where(read, pred, NUM_CLASSES)), 1)
    scores = confusion_scores(cm)
    return {
        "accuracy": scores["accuracy"],
        "accuracy_read": float((pred[read] == labels[read]).mean()) if read.any() else 0.0,
        "coverage": float(read.mean()) if len(labels) else 0.0,
        "macro_f1": scores["macro_f1"],
        "per_class_recall": scores["per_class_recall"],
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
        names = [clf.probs_output, *([UNREADABLE_OUTPUT] if clf.has_unreadable else [])]
        graph = clf.outputs(faces.images, names + ([FER2013_OUTPUT] if clf.has_fer2013_head else []))
        probs, unreadable = graph[clf.probs_output], graph.get(UNREADABLE_OUTPUT)
        metrics = classification_metrics(faces.labels, probs)
        if clf.has_fer2013_head:
            # FER2013's labels scored on the head taught them (models/label_sets.py); the deployed head's
            # own score on them stays beside it, since that head is taught FER+'s annotators instead
            deployed_head = metrics
            metrics = classification_metrics(faces.labels, graph[FER2013_OUTPUT])
            metrics["deployed_head"] = {k: deployed_head[k] for k in ("accuracy", "macro_f1", "per_class_recall")}
        if clf.readout != Readout():
            metrics["deployed"] = deployed_metrics(faces.labels, probs, faces.images, clf.readout, unreadable)
        plus = ferplus_metrics(faces, probs, clf.readout, unreadable)
        if plus is not None:
            metrics["ferplus"] = plus
        out[name] = metrics
    return out


def ferplus_metrics(
    faces: FaceSet, probs: np.ndarray, readout: Readout | None = None, unreadable: np.ndarray | None = None
) -> dict[str, Any] | None:
    """Metrics against FER+'s majority labels and vote distributions, or None when ``faces`` has no votes."""
    if faces.votes is None:
        return None
    majority = fp.majority_labels(faces.votes)
    has = majority >= 0
    if not has.any():
        return None
    out = classification_metrics(majority[has], probs[has])
    soft = fp.soft_targets(faces.votes)
    voted = fp.has_votes(faces.votes) & (soft.sum(axis=1) > 0)
    logp = np.log(np.clip(np.asarray(probs, np.float64)[voted], 1e-12, 1.0))
    t = soft[voted].astype(np.float64)
    out["soft_cross_entropy"] = float(-(t * logp).sum(axis=1).mean())
    out["vote_entropy"] = float(-(t * np.log(np.clip(t, 1e-12, 1.0))).sum(axis=1).mean())
    out["n_voted"] = int(voted.sum())
    if readout is not None and readout != Readout():
        u = None if unreadable is None else unreadable[has]
        out["deployed"] = deployed_metrics(majority[has], probs[has], faces.images[has], readout, u)
    return out


def format_metrics(name: str, m: dict[str, Any]) -> str:
    """A short human-readable summary of one split's metrics."""
    recall = "  ".join(f"{k} {v:.2f}" for k, v in m["per_class_recall"].items())
    text = f"{name}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  n={m['n']}\n  recall: {recall}"
    head = m.get("deployed_head")
    if head:
        text = text.replace(": accuracy", ": accuracy (FER2013-label head)", 1) + (
            f"\n  the deployed head on these labels: accuracy {head['accuracy']:.4f}  macro-F1 {head['macro_f1']:.4f}"
        )
    d = m.get("deployed")
    if d:
        recall = "  ".join(f"{k} {v:.2f}" for k, v in d["per_class_recall"].items())
        text += (
            f"\n  deployed ({d['readout']}): accuracy {d['accuracy']:.4f} (read faces {d['accuracy_read']:.4f}, "
            f"coverage {d['coverage']:.1%})  macro-F1 {d['macro_f1']:.4f}\n  recall: {recall}"
        )
    plus = m.get("ferplus")
    if plus:
        text += "\n" + format_metrics(
            f"  {name} against FER+ majority labels (soft-label cross-entropy {plus['soft_cross_entropy']:.3f}, "
            f"votes' own entropy {plus['vote_entropy']:.3f})",
            plus,
        ).replace("\n", "\n  ")
    return text
