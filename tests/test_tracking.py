"""Ids that survive what real calls do: re-layouts, zooms and cuts (appearance cues in memory only)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from classmood.containers import Detections
from classmood.vision.tracker import IoUTracker

skimage_data = pytest.importorskip("skimage.data", reason="the test faces are scikit-image's sample photos")


def _people() -> list[tuple[np.ndarray, np.ndarray]]:
    """Three real head-and-shoulders crops (astronaut, cameraman, Grace Hopper) and their face boxes."""
    import matplotlib.cbook

    from classmood.imageio import read_image

    hopper = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photos = [
        (cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR), (178, 63, 267, 175)),
        (cv2.cvtColor(skimage_data.camera(), cv2.COLOR_GRAY2BGR), (195, 113, 255, 193)),
        (hopper, (182, 121, 353, 332)),
    ]
    out = []
    for img, (x1, y1, x2, y2) in photos:
        w, h = x2 - x1, y2 - y1
        cx1, cy1 = max(0, x1 - w // 2), max(0, y1 - h // 3)
        crop = img[cy1 : y2 + h // 2, cx1 : x2 + w // 2]
        out.append((crop, np.array([x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1], np.float32)))
    return out


def _frame(order: list[int], sizes: list[int], places: list[tuple[int, int]]) -> tuple[np.ndarray, Detections]:
    frame = np.full((720, 1280, 3), 30, np.uint8)
    boxes = []
    for person, size, (x, y) in zip(order, sizes, places, strict=True):
        crop, box = _people()[person]
        s = size / crop.shape[0]
        small = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        frame[y : y + small.shape[0], x : x + small.shape[1]] = small
        boxes.append(box * s + np.array([x, y, x, y], np.float32))
    return frame, Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32))


GALLERY = [(40, 60), (460, 60), (880, 60)]


def test_ids_follow_faces_through_a_relayout_and_a_zoom() -> None:
    tracker = IoUTracker(reassociate=True)
    frame, dets = _frame([0, 1, 2], [260] * 3, GALLERY)
    first = tracker.update(dets, 0.0, frame)
    ids = {p: int(t) for p, t in zip([0, 1, 2], first.track_id, strict=True)}
    frame, dets = _frame([0, 1, 2], [260] * 3, GALLERY)
    tracker.update(dets, 0.5, frame)
    # the tiles re-flow: everyone moves to another place
    frame, dets = _frame([2, 0, 1], [260] * 3, GALLERY)
    moved = tracker.update(dets, 1.0, frame)
    assert [int(t) for t in moved.track_id] == [ids[2], ids[0], ids[1]]
    # speaker view: one face large in the middle
    frame, dets = _frame([1], [600], [(340, 60)])
    zoomed = tracker.update(dets, 1.5, frame)
    assert int(zoomed.track_id[0]) == ids[1]


def test_no_id_crosses_a_cut_to_a_different_face() -> None:
    tracker = IoUTracker(reassociate=True)
    frame, dets = _frame([0, 1], [260, 260], GALLERY[:2])
    before = tracker.update(dets, 0.0, frame)
    tracker.update(dets, 0.5, frame)
    # a cut: other people exactly where the first ones were
    frame, dets = _frame([2, 2], [260, 260], GALLERY[:2])
    after = tracker.update(dets, 1.0, frame)
    assert not set(after.track_id.tolist()) & set(before.track_id.tolist())


def test_without_appearance_overlap_hands_ids_to_whoever_sits_there() -> None:
    """The old behaviour, kept behind reassociate=False, shows what the appearance cues prevent."""
    tracker = IoUTracker(reassociate=False)
    frame, dets = _frame([0, 1], [260, 260], GALLERY[:2])
    before = tracker.update(dets, 0.0, frame)
    frame, dets = _frame([2, 2], [260, 260], GALLERY[:2])
    after = tracker.update(dets, 1.0, frame)
    assert set(after.track_id.tolist()) == set(before.track_id.tolist())


def test_event_scoring_counts_ids_per_person_and_ids_carried_across_the_cut() -> None:
    from classmood.benchmarks.events import score

    box_a, box_b = np.array([0, 0, 50, 50], np.float32), np.array([100, 0, 150, 50], np.float32)
    truth = [[(1, box_a), (2, box_b)], [(1, box_a), (2, box_b)], [(101, box_a)]]  # a cut before frame 2

    def dets(*ids: int) -> Detections:
        boxes = np.stack([box_a, box_b][: len(ids)])
        return Detections(boxes, np.ones(len(ids)), np.array(ids))

    clean = score([(0, dets(7, 8)), (1, dets(7, 8)), (2, dets(9))], truth, {(1, 2)})
    assert clean["ids_per_person"] == 1.0 and clean["id_switches"] == 0 and clean["ids_carried_across_the_cut"] == 0
    assert clean["recall"] == 1.0 and clean["recall_covered"] == 1.0
    churn = score([(0, dets(7, 8)), (1, dets(7, 5)), (2, dets(7))], truth)
    assert churn["id_switches"] == 1 and churn["ids_carried_across_the_cut"] == 1
    assert churn["ids_given_to_several_people"] == 1 and churn["ids_per_person"] == 1.333  # (1 + 2 + 1) / 3


def test_a_face_covered_for_a_moment_stays_present_as_uncertain() -> None:
    """A hand over the mouth hides a face from the detector: for up to coast_s it is still counted, under
    its id, as uncertain (never read); a tile that no longer shows the face is not carried on."""
    tracker = IoUTracker(reassociate=True)
    frame, dets = _frame([0, 1, 2], [200, 200, 200], GALLERY)
    for t in range(4):
        seen = tracker.update(dets, t * 0.5, frame)
    ids = seen.track_id.tolist()
    covered = frame.copy()
    x1, y1, x2, y2 = (int(v) for v in dets.xyxy[0])
    covered[(y1 + y2) // 2 : y2, x1:x2] = (140, 160, 200)  # a hand over the lower half of face 0
    covered[dets.xyxy[2, 1].astype(int) :, 880:] = 30  # face 2 left its tile: background only
    missed = dets[np.array([1])]  # the detector finds only face 1
    now = tracker.coast(covered, tracker.update(missed, 2.0, covered), 2.0)
    assert sorted(now.track_id.tolist()) == sorted(ids[:2])  # face 0 coasted, face 2 gone
    coasted = now.track_id == ids[0]
    assert now.uncertain[coasted].all() and not now.uncertain[~coasted].any()
    later = tracker.coast(covered, tracker.update(missed, 5.0, covered), 5.0)  # hidden longer than coast_s
    assert later.track_id.tolist() == [ids[1]]
