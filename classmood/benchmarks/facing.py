"""Facing the screen on real faces (issue 24): the real-face benchmark's faces labelled by eye for head
orientation (``bench/realfaces/facing.csv``), found by the pipeline's detector, their apparent pose
estimated by each method in the same run (``vision/landmarks.POSE_METHODS``: the detectors' five
points, ``vision/pose.py``, or MediaPipe's 468-point face mesh, ``vision/landmarks.py``) and scored:
per-face toward/away balanced accuracy and the error of the class share facing, per split. Each
method's rule limits are chosen on the tune split only (one grid for all) and then reported on both,
so the report split's figure is what a new class would see. The face mesh's cost (ms per face on this
machine's CPU, one thread) is measured in the same run.
"""

from __future__ import annotations

import csv
import itertools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from classmood.analytics.privacy import DEFAULT_MIN_FACES
from classmood.benchmarks.realfaces import DEFAULT_DIR, SPLITS, load_labels, matched_detections, pipeline_for
from classmood.errors import ClassmoodError
from classmood.expression.speed import cpu_name
from classmood.vision.landmarks import FACING_POSE, POSE_METHODS, FaceLandmarker, mesh_pose
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


ESTIMATORS = {
    "five": "5 detector landmarks, generic 3D face, SQPnP",
    "dense": "468-point face mesh, its own 3D axes (five-point fallback)",
    "contour": "468-point face mesh, nose vs cheeks / eyes-chin in 2D (five-point fallback)",
}


def estimate_poses(
    root: str | Path = DEFAULT_DIR, methods: tuple[str, ...] = POSE_METHODS
) -> tuple[dict[str, np.ndarray], list[str], list[str], dict[str, Any], list[str]]:
    """(N, 3) pose of every labelled face as the pipeline finds it (NaN where not found) for each of
    ``methods`` (``vision/landmarks.POSE_METHODS``), each face's split and label, the face mesh's cost
    (crop, network and mapping back, timed per frame over the matched faces) and each face's image."""
    data = load_labels(root)
    labels = load_facing(root)
    if len(labels) != len(data.faces):
        raise ClassmoodError(f"{FACING_FILE} has {len(labels)} rows, labels.csv {len(data.faces)}")
    poses = {m: np.full((len(data.faces), 3), np.nan, np.float32) for m in methods}
    dense = [m for m in methods if m != "five"]
    landmarker = FaceLandmarker(threads=1) if dense else None
    seconds, faces, mesh_missed = 0.0, 0, 0
    for image, index, dets, pairs in matched_detections(data, pipeline_for("fast")):
        if not pairs:
            continue
        rows = [index[k] for k in pairs]
        found = list(pairs.values())
        boxes, five = dets.xyxy[found], dets.landmarks[found]
        base = head_pose(five, boxes)
        if "five" in poses:
            poses["five"][rows] = base
        if landmarker is None:
            continue
        t0 = time.perf_counter()
        marks, _ = landmarker.landmarks(image, boxes, five[:, :2])
        seconds += time.perf_counter() - t0
        faces += len(found)
        mesh_missed += int((~np.isfinite(marks[:, 0, 0])).sum())
        for m in dense:
            poses[m][rows] = mesh_pose(marks, m, base)
    cost = {
        "mesh_faces": faces,
        "mesh_ms_per_face": 1000 * seconds / faces if faces else float("nan"),
        "mesh_said_no_face": mesh_missed,
        "threads": 1,
        "cpu": f"{cpu_name()}, {os.cpu_count()} logical CPUs",
    }
    return poses, [f.split for f in data.faces], labels, cost, [f.image for f in data.faces]


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


def image_shares(
    words: np.ndarray, labels: np.ndarray, found: np.ndarray, images: np.ndarray, k: int = DEFAULT_MIN_FACES
) -> list[dict[str, Any]]:
    """Per image with at least k faces labelled toward or away and found (one class at one moment: what one
    bin of the dashboard shows): the share facing, labelled vs estimated, as ``score`` counts them."""
    out = []
    for image in sorted(set(images.tolist())):
        mine = images == image
        s = score(words[mine], labels[mine], found[mine])
        if s["faces"] >= k and np.isfinite(s["share_estimated"]):
            keys = ("faces", "share_labelled", "share_estimated", "share_error")
            out.append({"image": image, **{key: s[key] for key in keys}})
    return out


# the rule's limits tried on the tune split, the same for every estimator
GRID = [
    FacingRule(max_yaw=y, max_down=d, max_up=u, margin=m)
    for y, d, u, m in itertools.product(range(14, 50, 2), (*range(0, 40, 3), 90), (20, 30, 90), (0, 2, 5))
]


def run(root: str | Path = DEFAULT_DIR, methods: tuple[str, ...] = POSE_METHODS) -> dict[str, Any]:
    """Each estimator's rule tuned on the tune split, then both splits scored with it, in one run."""
    all_poses, splits, labels, cost, images = estimate_poses(root, methods)
    split = np.array(splits)
    label = np.array(labels, dtype=object)
    image = np.array(images, dtype=object)
    tune = split == "tune"
    out: dict[str, Any] = {"facing_pose": FACING_POSE, "cost": cost, "methods": {}}
    if FACING_POSE in all_poses:  # what the pipeline ships: its pose and its fixed rule (vision/pose.py)
        poses = all_poses[FACING_POSE]
        words, found = facing(poses), np.isfinite(poses[:, 0])
        out["shipped"] = {
            "rule": FacingRule().__dict__,
            "splits": {
                s: {
                    **score(words[split == s], label[split == s], found[split == s]),
                    "images": image_shares(words[split == s], label[split == s], found[split == s], image[split == s]),
                }
                for s in SPLITS
            },
        }
    for method, poses in all_poses.items():
        found = np.isfinite(poses[:, 0])
        best = max(GRID, key=lambda r: score(facing(poses[tune], r), label[tune], found[tune])["balanced_accuracy"])
        out["methods"][method] = {
            "estimator": ESTIMATORS[method],
            "rule": best.__dict__,
            "found": float(found.mean()),
            "splits": {s: score(facing(poses[split == s], best), label[split == s], found[split == s]) for s in SPLITS},
        }
    return out


def format_table(result: dict[str, Any]) -> str:
    cost = result["cost"]
    lines = [
        "facing the screen on real faces: each estimator's rule chosen on tune (|yaw| <= Y, down <= D, up <= U, "
        f"margin M deg); `facing` uses {result['facing_pose']!r}",
        "method   split    found faces  balanced acc  toward recall  away recall  said unclear  share labelled /"
        " estimated (error)  not found toward/away  rule Y/D/U/M",
    ]
    for method, r in result["methods"].items():
        rule = r["rule"]
        for name, s in r["splits"].items():
            lines.append(
                f"{method:<8} {name:<8} {s['faces']:>11}  {s['balanced_accuracy']:>12.3f}  "
                f"{s['recall'][TOWARD]:>13.3f}  "
                f"{s['recall'][AWAY]:>11.3f}  {s['unclear_said']:>12.1%}  {s['share_labelled']:.3f} / "
                f"{s['share_estimated']:.3f} ({s['share_error']:.3f})  "
                f"{s['not_found'][TOWARD]:>10}/{s['not_found'][AWAY]:<10}  "
                f"{rule['max_yaw']:g}/{rule['max_down']:g}/{rule['max_up']:g}/{rule['margin']:g}"
            )
    for method, r in result["methods"].items():
        lines.append(f"{method}: {r['estimator']}")
    shipped = result.get("shipped")
    if shipped:
        rule = shipped["rule"]
        lines.append(
            f"shipped ({result['facing_pose']}, rule {rule['max_yaw']:g}/{rule['max_down']:g}/{rule['max_up']:g}/"
            f"{rule['margin']:g}), per image with >= {DEFAULT_MIN_FACES} faces labelled toward/away (one class, one "
            "moment): share labelled / estimated (error)"
        )
        for name, s in shipped["splits"].items():
            per = s["images"]
            worst = max((i["share_error"] for i in per), default=float("nan"))
            lines.append(
                f"  {name}: balanced acc {s['balanced_accuracy']:.3f}, {len(per)} images, share error max {worst:.3f}, "
                f"{sum(i['share_error'] <= 0.05 for i in per)} of {len(per)} within 0.05"
            )
            for i in per:
                lines.append(
                    f"    {i['image']:<40} {i['faces']:>3} faces  {i['share_labelled']:.3f} / "
                    f"{i['share_estimated']:.3f} ({i['share_error']:.3f})"
                )
    if cost["mesh_faces"]:
        lines.append(
            f"face mesh cost: {cost['mesh_ms_per_face']:.1f} ms per face (crop, network, mapping; {cost['mesh_faces']} "
            f"faces, {cost['threads']} thread, {cost['cpu']}); it said no face for {cost['mesh_said_no_face']}"
        )
    return "\n".join(lines)
