"""Box geometry, in one place: pairwise overlaps of xyxy boxes and greedy non-maximum suppression.

The tracker matches by IoU, the gate and the refiner drop a box that lies inside another
(overlap of the smaller), the chunk stitching pairs tracks across chunk boundaries by IoU, and
the benchmarks pair found boxes with labelled ones: all of them read the same two matrices from
here. ``nms`` is YuNet's (libfacedetection's greedy NMS, line for line what the students' browsers
run in ``static/student.js``), so it stays a plain loop rather than a vectorised variant whose
ties could order differently.
"""

from __future__ import annotations

import numpy as np

NMS_IOU = 0.3  # libfacedetection's


def intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise intersection areas (N, M) of xyxy boxes, and each side's areas."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    return inter, (a[:, 2:] - a[:, :2]).prod(axis=1), (b[:, 2:] - b[:, :2]).prod(axis=1)


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over the smaller box's area, (N, M): 1 when one box lies inside the other."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    inter, area_a, area_b = intersections(a, b)
    return inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (N, 4) and b (M, 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    inter, area_a, area_b = intersections(a, b)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first (ties keep the earlier box)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept: list[int] = []
    for i in order:
        ok = True
        for j in kept:
            iw = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            ih = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            inter = max(0.0, float(iw)) * max(0.0, float(ih))
            if inter / max(float(area[i] + area[j]) - inter, 1e-6) > iou:
                ok = False
                break
        if ok:
            kept.append(i)
    return np.array(kept, np.int64)
