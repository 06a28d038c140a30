"""Robustness benchmark (``classmood bench --robust``): how the expression models read faces a real call degrades.

FER2013 PublicTest faces go through each degradation of ``degradations.CONDITIONS`` (size, blur,
codec, light, cover, pose and the composite "call") and, as the most realistic check, are also
rendered into a 640x368 gallery, coded with H.264 at a call's bitrate and read back through the
face detector and the pipeline's own crops. Per condition and model it reports accuracy, the share
of neutral faces read as a negative expression (angry, disgust, fear, sad), the share of happy
faces read as happy (smiles recognised) and, where a model answers ``uncertain``, the coverage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classmood.benchmarks.degradations import CONDITIONS, SIZE, through_h264
from classmood.data import load_split
from classmood.expression.model import load_model
from classmood.expression.readout import UNCERTAIN, Readout
from classmood.labels import EMOTIONS

NEGATIVE_IDX = [EMOTIONS.index(e) for e in ("angry", "disgust", "fear", "sad")]
HAPPY, NEUTRAL = EMOTIONS.index("happy"), EMOTIONS.index("neutral")
LABEL_SETS = {"fer2013": "FER2013", "ferplus": "FER+ majority"}


@dataclass
class FaceSet:
    """Degraded faces with their true labels; ``px`` is each face's size in the frame (None = unknown)."""

    name: str
    group: str
    faces: np.ndarray
    labels: np.ndarray
    px: np.ndarray | None = None
    recall: float | None = None  # gallery only: faces the detector found


def read_scores(labels: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """What a teacher would see: accuracy, calm faces read negative, smiles recognised, coverage.

    ``pred`` holds a label per face, ``UNCERTAIN`` (-1) where the model declined to read it; an
    uncertain face counts as not read correctly, neither as negative nor as happy.
    """
    if len(labels) == 0:  # e.g. a gallery in which the detector found no face
        return {"accuracy": 0.0, "accuracy_read": 0.0, "coverage": 0.0, "neutral_as_negative": 0.0,
                "happy_recognised": 0.0, "happy_as_negative": 0.0, "n": 0}  # fmt: skip
    read = pred != UNCERTAIN
    neutral, happy = labels == NEUTRAL, labels == HAPPY
    negative = np.isin(pred, NEGATIVE_IDX)
    return {
        "accuracy": float((pred == labels).mean()),
        "accuracy_read": float((pred[read] == labels[read]).mean()) if read.any() else 0.0,
        "coverage": float(read.mean()),
        "neutral_as_negative": float(negative[neutral].mean()) if neutral.any() else 0.0,
        "happy_recognised": float((pred[happy] == HAPPY).mean()) if happy.any() else 0.0,
        "happy_as_negative": float(negative[happy].mean()) if happy.any() else 0.0,
        "n": len(labels),
    }


GALLERIES = (  # (rows, cols), face widths, call bitrate: 16 people at ~30-45 px, 25 at ~22-34 px
    ((4, 4), (28, 44), 400),
    ((5, 5), (22, 34), 400),
)


def gallery_faces(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    grid: tuple[int, int] = (4, 4),
    face_px: tuple[int, int] = (28, 44),
    kbps: int = 400,
) -> FaceSet:
    """PublicTest faces in a 640x368 gallery, H.264 at ``kbps``, found by the detector and cropped as the
    pipeline crops them."""
    from classmood.benchmarks.gallery import render_gallery_frames
    from classmood.vision.boxes import iou_matrix
    from classmood.vision.crops import face_crops
    from classmood.vision.detectors import create_detector

    frames, truth = render_gallery_frames(images, rng, grid=grid, face_px=face_px)
    decoded = through_h264(frames, kbps, rng)
    detector = create_detector("libface")
    crops, found_labels, sizes = [], [], []
    total = 0
    for frame, (idx, boxes) in zip(decoded, truth, strict=True):
        dets = detector.detect(frame)
        total += len(idx)
        if not len(dets):
            continue
        iou = iou_matrix(boxes, dets.xyxy)
        for t in range(len(idx)):
            j = int(iou[t].argmax())
            if iou[t, j] >= 0.3:
                crops.append(face_crops(frame, dets.xyxy[j : j + 1])[0])
                found_labels.append(labels[idx[t]])
                sizes.append(float(dets.xyxy[j, 3] - dets.xyxy[j, 1]))
    faces = np.array(crops, np.uint8).reshape(-1, SIZE, SIZE)
    return FaceSet(
        f"gallery {grid[0]}x{grid[1]} {face_px[0]}-{face_px[1]} px, {kbps} kbps",
        "gallery",
        faces,
        np.array(found_labels, np.int64),
        np.array(sizes, np.float32),
        recall=len(crops) / max(total, 1),
    )


def build_sets(
    images: np.ndarray, labels: np.ndarray, seed: int = 0, conditions: list[str] | None = None, gallery: bool = True
) -> list[FaceSet]:
    sets = []
    for cond in CONDITIONS:
        if conditions and cond.name not in conditions and cond.group not in conditions:
            continue
        rng = np.random.default_rng(seed)
        sets.append(FaceSet(cond.name, cond.group, cond.apply(images, rng), labels))
    if gallery:
        for grid, px, kbps in GALLERIES:
            sets.append(gallery_faces(images, labels, np.random.default_rng(seed), grid, px, kbps))
    return sets


def stratified_subset(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Indices of about ``limit`` faces keeping PublicTest's class mix (for quick runs)."""
    if not limit or limit >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [
        rng.permutation(np.flatnonzero(labels == c))[: max(1, round(limit * (labels == c).mean()))]
        for c in range(len(EMOTIONS))
    ]
    return np.sort(np.concatenate(keep))


def run_robust_bench(
    data: str | Path,
    models: list[str],
    limit: int = 0,
    seed: int = 0,
    conditions: list[str] | None = None,
    gallery: bool = True,
    raw_too: bool = True,
    label_set: str = "fer2013",
) -> dict[str, Any]:
    """Scores per model and condition; each model is read with its own shipped readout and, if
    ``raw_too``, also raw (arg-max of its probabilities, no calibration, prior or uncertain).

    ``label_set="ferplus"`` scores against FER+'s majority labels (the faces that have one) instead of
    FER2013's: a "calm face" is then one most of ten annotators called neutral.
    """
    split = load_split(data, "PublicTest")
    labels_all, usable = split.labels, np.ones(len(split.labels), bool)
    if label_set == "ferplus":
        from classmood.data import ferplus as fp
        from classmood.errors import ClassmoodError

        if split.votes is None:
            raise ClassmoodError(f"--labels ferplus needs {fp.VOTES_FILE} in {data}")
        labels_all = fp.majority_labels(split.votes)
        usable = labels_all >= 0
    elif label_set not in LABEL_SETS:
        raise ValueError(f"label_set must be fer2013 or ferplus, not {label_set!r}")
    images, labels_all = split.images[usable], labels_all[usable]
    keep = stratified_subset(labels_all, limit, seed)
    images, labels = images[keep], labels_all[keep]
    started = time.perf_counter()
    sets = build_sets(images, labels, seed, conditions, gallery)
    built_s = time.perf_counter() - started
    result: dict[str, Any] = {
        "data": f"FER2013 PublicTest, {len(labels)} faces, {LABEL_SETS[label_set]} labels"
        + (f" (stratified subset, seed {seed})" if limit else ""),
        "conditions": [{"name": s.name, "group": s.group, "n": len(s.labels), "recall": s.recall} for s in sets],
        "build_s": round(built_s, 1),
        "models": {},
    }
    for name in models:
        model = load_model(name)
        # the readout the pipeline uses
        readouts: dict[str, Readout] = {"shipped": model.readout}
        if raw_too and readouts["shipped"] != Readout():
            readouts["raw"] = Readout()
        scores: dict[str, dict[str, Any]] = {r: {} for r in readouts}
        for s in sets:
            probs, unreadable = model.predict(s.faces, raw=True)
            for rname, readout in readouts.items():
                pred = readout.decide(probs, s.faces, s.px, unreadable=unreadable)
                row = read_scores(s.labels, pred)
                scores[rname][s.name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        result["models"][name] = {"readouts": {r: readouts[r].describe() for r in readouts}, "scores": scores}
    return result


def format_table(result: dict[str, Any]) -> str:
    """One block per model and readout: a row per condition."""
    lines = [result["data"]]
    for c in result["conditions"]:
        if c["recall"] is not None:
            lines.append(f"{c['name']}: detector found {c['recall']:.1%} of the faces ({c['n']} read)")
    head = f"{'condition':32s} {'acc':>6s} {'neutral->neg':>12s} {'happy ok':>8s} {'happy->neg':>10s} {'coverage':>8s}"
    for name, m in result["models"].items():
        for rname, rows in m["scores"].items():
            lines += ["", f"{name} [{rname}: {m['readouts'][rname]}]", head]
            for cname, r in rows.items():
                lines.append(
                    f"{cname:32s} {r['accuracy']:6.1%} {r['neutral_as_negative']:12.1%} "
                    f"{r['happy_recognised']:8.1%} {r['happy_as_negative']:10.1%} {r['coverage']:8.1%}"
                )
    return "\n".join(lines)
