"""The face gate: boxes outside the frame, too small, drawn, listed or duplicated never reach the classifier."""

from __future__ import annotations

import numpy as np
import pytest

from classmood.containers import Detections
from classmood.vision.gate import FaceGate, GateConfig, flatness, listed
from tests.test_vision import gallery


def _dets(boxes: list[list[float]], scores: list[float] | None = None) -> Detections:
    b = np.array(boxes, np.float32)
    return Detections(b, np.array(scores or [0.9] * len(b), np.float32))


def test_flat_icons_are_not_faces_and_shaded_faces_are() -> None:
    frame, boxes = gallery(rows=1, cols=2, face_px=90)
    icon = np.zeros((60, 60, 3), np.uint8)
    icon[:] = (200, 120, 90)
    frame[10:70, 10:70] = icon
    flat = flatness(frame, np.array([[10, 10, 70, 70], *[b.tolist() for b in boxes]], np.float32))
    assert flat[0] > 0.9 and (flat[1:] < 0.7).all()


def test_a_column_of_small_equal_boxes_is_a_list() -> None:
    column = [[1020, 100 + 30 * i, 1040 + (i % 2), 125 + 30 * i] for i in range(5)]
    gallery_faces = [[100, 100, 180, 200], [400, 120, 470, 210], [700, 90, 790, 200]]
    flags = listed(np.array(column + gallery_faces, np.float32))
    assert flags[:5].all() and not flags[5:].any()
    # a thumbnail strip beside the speaker: small faces in one column, but people sit differently
    strip = [[1020 + 7 * (i % 3), 100 + 90 * i, 1075 + 5 * (i % 2), 170 + 90 * i] for i in range(5)]
    assert not listed(np.array([*strip, [100, 100, 500, 600]], np.float32)).any()


def test_geometry_checks_and_one_box_per_face() -> None:
    frame, boxes = gallery(rows=1, cols=2, face_px=100)
    gate = FaceGate(GateConfig(onet_accept=0.0, onet_with_score=(0.0, 0.0)))  # geometry only
    face = boxes[0].tolist()
    x1, y1, x2, y2 = face
    candidates = [
        face,  # the face
        [x1 + 5, y1 + 30, x2 + 5, y2 + 30],  # a second box on its lower half (a mask and the chin)
        [x1 + 10, y1 + 10, x2 - 10, y2 - 10],  # a box inside it
        [-60, 10, 20, 110],  # mostly outside the frame
        [300, 10, 310, 22],  # 12 px: too small to read
        [10, 100, 130, 125],  # 5:1, not a face's shape
    ]
    kept = gate(frame, _dets(candidates, [0.95, 0.7, 0.6, 0.9, 0.9, 0.9]))
    assert len(kept) == 1 and np.allclose(kept.xyxy[0], face)
    assert gate.last_rejected["duplicate"] == 2 and gate.last_rejected["outside"] == 1
    assert gate.last_rejected["size"] == 1 and gate.last_rejected["shape"] == 1


def test_the_second_opinion_keeps_real_faces_and_drops_texture() -> None:
    frame, boxes = gallery(rows=3, cols=3, face_px=90)
    rng = np.random.default_rng(0)
    frame[130:230, 140:220] = rng.integers(0, 255, (100, 80, 3), dtype=np.uint8)  # noise between two faces
    dets = _dets([*(b.tolist() for b in boxes), [140, 130, 220, 230]], [0.9] * len(boxes) + [0.6])
    gate = FaceGate()
    kept = gate(frame, dets)
    assert len(kept) == len(boxes) and gate.last_rejected["second opinion"] == 1
    # a box continuing a face confirmed on the previous frame is not checked again
    assert len(gate(frame, dets, confirmed=dets.xyxy)) == len(boxes) + 1


def test_gate_removes_clutter_on_call_screenshots() -> None:
    pytest.importorskip("skimage", reason="the clutter scenes use scikit-image's sample photos")
    from classmood.benchmarks.clutter import run_clutter_bench

    result = run_clutter_bench(range(2000, 2004))
    without, with_gate = result["variants"]["without gate"], result["variants"]["with gate"]
    assert without["false_positives"] >= 10  # the scenes do fool the detector: avatars, icons, ...
    assert with_gate["false_positives"] <= without["false_positives"] // 5
    assert with_gate["recall"] >= without["recall"] - 0.03
