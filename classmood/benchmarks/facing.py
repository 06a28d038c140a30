"""Facing the screen on real faces (issue 24): the real-face benchmark's faces labelled by eye for head
orientation (``bench/realfaces/facing.csv``), found by the pipeline's detector, their apparent pose
estimated (``vision/pose.py``) and scored: per-face toward/away balanced accuracy and the error of the
class share facing, per split. The rule's limits are chosen on the tune split only (a small grid) and
then reported on both, so the report split's figure is what a new class would see.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import numpy as np

from classmood.benchmarks.realfaces import DEFAULT_DIR, load_labels, matched_detections, pipeline_for
from classmood.errors import ClassmoodError
from classmood.vision.pose import AWAY, FACING_WORDS, TOWARD, UNCLEAR, FacingRule, facing, head_pose

FACING_FILE = "facing.csv"


def load_facing(root: str | Path = DEFAULT_DIR) -> list[str]:
    """The facing label of each face, in ``labels.csv`` order."""
    path = Path(root) / FACING_FILE
    if not path.is_file():
        raise ClassmoodError(f"{path}: no facing labels")
    with open(path, encoding="utf-8", newline="") as fh:
        words = [row["facing"].strip().lower() for row in csv.DictReader(fh)]
    if any(w not in FACING_WORDS for w in words):
        raise ClassmoodError(f"{path}: facing must be one of {', '.join(FACING_WORDS)}")
    return words


def estimate_poses(root: str | Path = DEFAULT_DIR) -> tuple[np.ndarray, list[str], list[str]]:
    """(N, 3) pose of every labelled face as the pipeline finds it (NaN where not found), its split and label."""
    data = load_labels(root)
    labels = load_facing(root)
    if len(labels) != len(data.faces):
        raise ClassmoodError(f"{FACING_FILE} has {len(labels)} rows, labels.csv {len(data.faces)}")
    poses = np.full((len(data.faces), 3), np.nan, np.float32)
    for _, index, dets, pairs in matched_detections(data, pipeline_for("fast")):
        if pairs:
            pose = head_pose(dets.landmarks, dets.xyxy)
            for k, d in pairs.items():
                poses[index[k]] = pose[d]
    return poses, [f.split for f in data.faces], labels


def score(words: np.ndarray, labels: np.ndarray, found: np.ndarray) -> dict[str, Any]:
    """Over the faces labelled toward or away that the pipeline found: balanced accuracy (a face the
    estimate calls unclear counts as wrong), and the class share facing, labelled vs estimated (the share
    the dashboard would show: among the found faces it decided on). Faces not found are counted apart:
    a profile the detector misses is no face present to the pipeline."""
    sure = np.isin(labels, (TOWARD, AWAY))
    seen = sure & found
    truth, said = labels[seen], words[seen]
    recall = {w: float((said[truth == w] == w).mean()) if (truth == w).any() else float("nan") for w in (TOWARD, AWAY)}
    decided = np.isin(said, (TOWARD, AWAY))
    share_true = float((truth == TOWARD).mean()) if len(truth) else float("nan")
    share_est = float((said[decided] == TOWARD).mean()) if decided.any() else float("nan")
    return {
        "faces": int(seen.sum()),
        "not_found": {w: int((sure & ~found & (labels == w)).sum()) for w in (TOWARD, AWAY)},
        "balanced_accuracy": float(np.mean(list(recall.values()))),
        "recall": recall,
        "unclear_said": float((said == UNCLEAR).mean()) if len(said) else 0.0,
        "share_labelled": share_true,
        "share_estimated": share_est,
        "share_error": abs(share_est - share_true),
    }


def run(root: str | Path = DEFAULT_DIR) -> dict[str, Any]:
    """The rule tuned on the tune split, then both splits scored with it."""
    poses, splits, labels = estimate_poses(root)
    split = np.array(splits)
    label = np.array(labels, dtype=object)
    grid = [
        FacingRule(max_yaw=y, max_down=d, margin=m)
        for y, d, m in itertools.product(range(20, 46, 2), (10, 15, 20, 30, 90), (0, 2, 5))
    ]
    tune = split == "tune"
    found = np.isfinite(poses[:, 0])
    best = max(grid, key=lambda r: score(facing(poses[tune], r), label[tune], found[tune])["balanced_accuracy"])
    return {
        "estimator": "5 detector landmarks, generic 3D face, SQPnP",
        "rule": best.__dict__,
        "found": float(found.mean()),
        "splits": {
            s: score(facing(poses[split == s], best), label[split == s], found[split == s]) for s in ("tune", "report")
        },
    }


def format_table(result: dict[str, Any]) -> str:
    rule = result["rule"]
    lines = [
        f"facing the screen on real faces ({result['estimator']}); rule chosen on tune: |yaw| <= {rule['max_yaw']:g}, "
        f"down <= {rule['max_down']:g}, margin {rule['margin']:g} deg; found {result['found']:.1%}",
        "split    found faces  balanced acc  toward recall  away recall  said unclear  share labelled / estimated"
        " (error)  not found toward/away",
    ]
    for name, s in result["splits"].items():
        lines.append(
            f"{name:<8} {s['faces']:>11}  {s['balanced_accuracy']:>12.3f}  {s['recall'][TOWARD]:>13.3f}  "
            f"{s['recall'][AWAY]:>11.3f}  {s['unclear_said']:>12.1%}  {s['share_labelled']:.3f} / "
            f"{s['share_estimated']:.3f} ({s['share_error']:.3f})  {s['not_found'][TOWARD]}/{s['not_found'][AWAY]}"
        )
    return "\n".join(lines)
