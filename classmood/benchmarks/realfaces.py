"""``classmood bench --real``: real photographs and video frames, faces boxed and labelled by eye, read
through the whole pipeline exactly as a user's image would be (detect, refine, gate, crop, model, readout).

Synthetic degradations of FER2013 crops flatter the models (a model that reads 9-13 % of calm
PublicTest faces as negative under simulated calls read 19-25 % of calm real faces as negative).
This benchmark is the check that does not flatter: real faces from public repositories and Python
wheels (``bench/realfaces/SOURCES.md`` lists every source and licence), each face boxed and given
an apparent expression by eye (or ``unclear``), split by source image into a ``tune`` part (the
readout's thresholds and priors may be chosen on it) and a ``report`` part (only ever reported).

Per split and model:

- **found**: labelled faces matched by a pipeline box (IoU >= 0.3, one-to-one, Hungarian);
- **read**: matched faces the readout did not call uncertain (the share a teacher's numbers rest on);
- **accuracy**: read faces with a clear label whose reading equals it;
- **calm read negative**: faces labelled neutral, read, whose reading is angry, disgust, fear or sad
  (the shares a class-mood view shows are over faces read, so this is what a teacher would see);
- **smiles recognised**: faces labelled happy, read, whose reading is happy;
- 95 % Wilson intervals, because a few hundred faces leave several points of doubt.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "bench" / "realfaces"
LABELS_FILE = "labels.csv"
UNCLEAR = "unclear"
NEGATIVE = {"angry", "disgust", "fear", "sad"}
MATCH_IOU = 0.3
SPLITS = ("tune", "report")


@dataclass
class LabelledFace:
    image: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    expression: str  # a class word or "unclear"
    split: str
    kind: str = ""  # call, webcam, room (classrooms, meetings), group (group photos), portrait


@dataclass
class FaceResult:
    face: LabelledFace
    found: bool
    reading: str | None = None  # a class word, "uncertain", or None when not found


@dataclass
class RealFaces:
    root: Path
    faces: list[LabelledFace] = field(default_factory=list)

    @property
    def images(self) -> list[str]:
        return sorted({f.image for f in self.faces})


def load_labels(root: str | Path = DEFAULT_DIR) -> RealFaces:
    """The labelled faces in ``root/labels.csv`` (``image,face,x,y,w,h,expression,split,source_id``)."""
    root = Path(root)
    path = root / LABELS_FILE
    if not path.is_file():
        raise ClassmoodError(f"{path}: no labels file (the real-face benchmark lives in bench/realfaces/)")
    out = RealFaces(root)
    with open(path, encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            try:
                x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
                expression, split = row["expression"].strip().lower(), row["split"].strip().lower()
                image = row["image"].strip()
            except (KeyError, ValueError, AttributeError):
                raise ClassmoodError(f"{path}, line {n}: expected image,face,x,y,w,h,expression,split") from None
            if expression not in (*EMOTIONS, UNCLEAR) or split not in SPLITS or w <= 0 or h <= 0:
                raise ClassmoodError(f"{path}, line {n}: bad expression {expression!r}, split {split!r} or box")
            if not (root / image).is_file():
                raise ClassmoodError(f"{path}, line {n}: image {image} is missing")
            kind = (row.get("kind") or "").strip().lower()
            out.faces.append(LabelledFace(image, (x, y, x + w, y + h), expression, split, kind))
    return out


def match(truth: np.ndarray, found: np.ndarray, min_iou: float = MATCH_IOU) -> dict[int, int]:
    """One-to-one matching of labelled boxes to pipeline boxes: {truth index: found index}."""
    if not len(truth) or not len(found):
        return {}
    from scipy.optimize import linear_sum_assignment

    from classmood.vision.tracker import iou_matrix

    iou = iou_matrix(np.asarray(truth, np.float32), np.asarray(found, np.float32))
    rows, cols = linear_sum_assignment(-iou)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou}


def read_faces(data: RealFaces, model: str, detector: str | None = None) -> tuple[list[FaceResult], int]:
    """Every labelled face's pipeline reading with ``model``, and the number of pipeline boxes that
    matched no labelled face (boxes on posters, avatars, background)."""
    from classmood.containers import Frame
    from classmood.imageio import read_image
    from classmood.pipeline import Analyzer, PipelineConfig
    from classmood.vision.detectors import DEFAULT_DETECTOR

    analyzer = Analyzer(PipelineConfig(model=model, detector=detector or DEFAULT_DETECTOR, rate_hz=0))
    results: list[FaceResult] = []
    extra = 0
    for i, image_name in enumerate(data.images):
        analyzer.forget_faces()  # unrelated photos: nothing carries over, as in `analyze` on a folder
        image = read_image(data.root / image_name)
        update = analyzer.process(Frame(i, float(i), image))
        dets = update.detections
        faces = [f for f in data.faces if f.image == image_name]
        pairs = match(np.array([f.box for f in faces]).reshape(-1, 4), dets.xyxy)
        extra += len(dets) - len(pairs)
        for j, face in enumerate(faces):
            if j not in pairs:
                results.append(FaceResult(face, False))
                continue
            d = pairs[j]
            reading = "uncertain" if dets.uncertain[d] else EMOTIONS[int(np.argmax(dets.probs[d]))]
            results.append(FaceResult(face, True, reading))
    return results, extra


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(centre - half, 4), round(centre + half, 4))


def _share(k: int, n: int) -> dict[str, Any]:
    return {"value": round(k / n, 4) if n else None, "k": k, "n": n, "ci95": wilson(k, n)}


def score(results: list[FaceResult], split: str, by_kind: bool = True) -> dict[str, Any]:
    """The figures of one split (see the module docstring), also per kind of scene."""
    rows = [r for r in results if r.face.split == split]
    kinds = sorted({r.face.kind for r in rows if r.face.kind}) if by_kind else []
    found = [r for r in rows if r.found]
    read = [r for r in found if r.reading != "uncertain"]
    clear = [r for r in read if r.face.expression != UNCLEAR]
    calm = [r for r in read if r.face.expression == "neutral"]
    smiles = [r for r in read if r.face.expression == "happy"]
    unclear_found = [r for r in found if r.face.expression == UNCLEAR]
    confusion: dict[str, dict[str, int]] = {}
    for r in found:
        confusion.setdefault(r.face.expression, {}).setdefault(str(r.reading), 0)
        confusion[r.face.expression][str(r.reading)] += 1
    return {
        "faces": len(rows),
        "found": _share(len(found), len(rows)),
        "read": _share(len(read), len(found)),
        "accuracy": _share(sum(r.reading == r.face.expression for r in clear), len(clear)),
        "calm_read_negative": _share(sum(r.reading in NEGATIVE for r in calm), len(calm)),
        "smiles_recognised": _share(sum(r.reading == "happy" for r in smiles), len(smiles)),
        "unclear_read_uncertain": _share(sum(r.reading == "uncertain" for r in unclear_found), len(unclear_found)),
        "confusion": confusion,
        **(
            {"by_kind": {k: score([r for r in rows if r.face.kind == k], split, by_kind=False) for k in kinds}}
            if kinds
            else {}
        ),
    }


def run(models: list[str], root: str | Path = DEFAULT_DIR, detector: str | None = None) -> dict[str, Any]:
    """Both splits for every model (shipped names or .onnx paths), one run."""
    data = load_labels(root)
    counts = {
        s: {e: sum(f.split == s and f.expression == e for f in data.faces) for e in (*EMOTIONS, UNCLEAR)}
        for s in SPLITS
    }
    out: dict[str, Any] = {"root": str(root), "images": len(data.images), "labels": counts, "models": {}}
    for name in models:
        results, extra = read_faces(data, name, detector)
        out["models"][name] = {"unmatched_boxes": extra, **{s: score(results, s) for s in SPLITS}}
    return out


def format_table(result: dict[str, Any], split: str = "report") -> str:
    """A plain-text table of one split, a line per model."""
    head = f"{'model / kind of scene':34s} found   read  accuracy  calm->negative  smiles  (95% CI: calm->neg / smiles)"
    lines = [f"real faces, {split} split: {sum(result['labels'][split].values())} faces", head]
    rows = []
    for name, m in result["models"].items():
        path = Path(name)
        rows.append((f"{path.parent.name}/{path.name}" if path.suffix == ".onnx" else name, m[split]))
        rows += [(f"  {kind}", sub) for kind, sub in m[split].get("by_kind", {}).items()]
    for name, s in rows:
        v = {
            k: float("nan") if s[k]["value"] is None else s[k]["value"]
            for k in s
            if isinstance(s[k], dict) and "value" in s[k]
        }
        lines.append(
            f"{name[:34]:34s} {v['found']:5.1%} {v['read']:6.1%}  {v['accuracy']:7.1%}  "
            f"{v['calm_read_negative']:13.1%}  {v['smiles_recognised']:6.1%}  "
            f"({s['calm_read_negative']['ci95'][0]:.0%}-{s['calm_read_negative']['ci95'][1]:.0%} / "
            f"{s['smiles_recognised']['ci95'][0]:.0%}-{s['smiles_recognised']['ci95'][1]:.0%})"
        )
    return "\n".join(lines)
