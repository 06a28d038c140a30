"""Enlarged second looks (vision/refine.py) find small gallery faces the fast whole-frame pass misses."""

from __future__ import annotations

import numpy as np

from classmood.vision import Detections, create_detector
from classmood.vision.boxes import iou_matrix
from classmood.vision.refine import FaceRefiner, add_new, scan_windows
from tests.test_vision import gallery


def _tiny_face_gallery() -> tuple[np.ndarray, np.ndarray]:
    """A 1080p frame whose 7x7 gallery holds 24 px faces: 12 px after the fast pass halves the frame."""
    grid, boxes = gallery(7, 7, face_px=24)
    frame = np.full((1080, 1920, 3), 35, np.uint8)
    frame[: grid.shape[0], : grid.shape[1]] = grid
    return frame, np.stack(boxes)


def _found(truth: np.ndarray, dets: Detections) -> int:
    return int((iou_matrix(truth, dets.xyxy).max(axis=1) >= 0.3).sum()) if len(dets) else 0


def test_scan_windows_cover_the_frame_with_overlap() -> None:
    windows = scan_windows(1920, 1080, window=480, overlap=120)
    covered = np.zeros((1080, 1920), bool)
    for x1, y1, x2, y2 in windows:
        assert 0 <= x1 < x2 <= 1920 and 0 <= y1 < y2 <= 1080
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    # any 120 px face lies wholly inside some window
    for cx in range(60, 1860, 97):
        for cy in range(60, 1020, 89):
            assert any(
                x1 <= cx - 60 and cx + 60 <= x2 and y1 <= cy - 60 and cy + 60 <= y2 for x1, y1, x2, y2 in windows
            )
    assert scan_windows(300, 200, window=480, overlap=120) == [(0, 0, 300, 200)]


def test_add_new_keeps_base_and_only_unseen_extras() -> None:
    base = Detections(np.array([[0, 0, 10, 10]]), np.array([0.9]))
    extra = Detections(np.array([[1, 1, 10, 10], [50, 50, 60, 60], [51, 51, 60, 60]]), np.array([0.8, 0.7, 0.6]))
    merged = add_new(base, extra)
    assert merged.xyxy.tolist() == [[0, 0, 10, 10], [50, 50, 60, 60]]
    inside = Detections(np.array([[2, 2, 6, 7]]), np.array([0.9]))  # IoU 0.2, but wholly inside the base box
    assert len(add_new(base, inside)) == 1


def test_refiner_finds_faces_too_small_for_the_fast_pass() -> None:
    frame, truth = _tiny_face_gallery()
    fast = create_detector("libface").detect(frame)
    refiner = FaceRefiner()
    refined = refiner.refine(frame, fast, expected=np.zeros((0, 4), np.float32))
    assert _found(truth, fast) < 25  # most 24 px faces are lost at half resolution
    assert _found(truth, refined) == len(truth)
    assert len(refined) == len(truth)  # no duplicates and no false faces on the dark tiles


def test_revisit_looks_again_where_a_track_expects_a_face() -> None:
    frame, truth = _tiny_face_gallery()
    refiner = FaceRefiner()
    again = refiner.revisit(frame, Detections.empty(), expected=truth[:5])
    assert _found(truth[:5], again) == 5
    # a box that a detection already covers is not searched again
    assert len(refiner.revisit(frame, Detections(truth[:5], np.ones(5)), expected=truth[:5])) == 0
    # nothing is invented where the track expects a face but the tile is empty
    empty = np.full_like(frame, 35)
    assert len(refiner.revisit(empty, Detections.empty(), expected=truth[:5])) == 0


def test_refiner_leaves_frames_the_fast_pass_sees_whole() -> None:
    frame, _ = gallery(2, 3, face_px=60)  # smaller than 960 px: the fast pass already ran at full size
    dets = create_detector("libface").detect(frame)
    assert FaceRefiner().refine(frame, dets, expected=np.zeros((0, 4), np.float32)) is dets


def _record_searches(refiner: FaceRefiner) -> list[tuple[int, int, int, int]]:
    """The list every region the refiner's detector searches from now on is appended to."""
    searched: list[tuple[int, int, int, int]] = []
    real = refiner.detector.detect_region

    def counting(image: np.ndarray, rect: tuple[int, int, int, int], zoom: float, threshold: float | None = None):
        searched.append(rect)
        return real(image, rect, zoom, threshold)

    refiner.detector.detect_region = counting  # type: ignore[method-assign]
    return searched


def test_unchanged_regions_keep_their_answer_and_changed_ones_are_searched_again() -> None:
    frame, truth = _tiny_face_gallery()
    refiner = FaceRefiner(scan_every=1)
    searched = _record_searches(refiner)
    none = np.zeros((0, 4), np.float32)
    first = refiner.refine(frame, Detections.empty(), truth)
    assert _found(truth, first) == len(truth) and len(searched) > len(truth)
    settled = refiner.refine(frame.copy(), Detections.empty(), first.xyxy)  # tracks now hold the found boxes
    searched.clear()
    again = refiner.refine(frame.copy(), Detections.empty(), settled.xyxy)
    assert _found(truth, again) == len(truth)
    assert searched == []  # a still frame is answered from memory
    moved = np.roll(frame, 40, axis=1)  # every face shifts: its windows and the scan windows changed
    shifted = refiner.refine(moved, Detections.empty(), none)
    assert len(searched) == 1  # nothing expected; the scan looks again, one changed window a frame
    sparse = FaceRefiner(scan_every=3)
    sparse.refine(frame, Detections.empty(), none)
    assert [len(sparse.refine(moved, Detections.empty(), none)) for _ in range(6)] == [
        0,
        0,
        49,
        0,
        0,
        0,
    ]  # every 3rd frame, then all seen
    assert _found(truth + np.float32([40, 0, 40, 0]), shifted) == len(truth)  # that window holds the whole grid


def test_faces_that_barely_moved_are_answered_from_memory_and_moved_ones_searched_again() -> None:
    frame, truth = _tiny_face_gallery()
    refiner = FaceRefiner(scan_every=0)
    searched = _record_searches(refiner)
    boxes = truth
    for _ in range(3):  # until the tracks hold the boxes the detector draws
        boxes = refiner.refine(frame, Detections.empty(), boxes).xyxy
    searched.clear()
    nudged = refiner.refine(np.roll(frame, 2, axis=1), Detections.empty(), boxes)
    assert searched == [] and len(nudged) == len(truth)  # a 2-px nudge (camera noise, rescaling) is no news
    moved = refiner.refine(np.roll(frame, 8, axis=1), Detections.empty(), boxes)
    assert len(searched) > 0 and _found(truth + np.float32([8, 0, 8, 0]), moved) == len(truth)
