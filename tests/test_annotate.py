"""``classmood analyze --annotate``: drawing faces, the annotated mp4, and the self-contained report.html."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from classmood.analysis.read_back import load_result
from classmood.analysis.report import report_from_dir, write_report
from classmood.cli import main
from classmood.containers import Detections, MoodBin
from classmood.labels import EMOTIONS
from classmood.pipeline import AnalysisResult
from classmood.vision.annotate import AnnotatedVideoWriter, HeldBoxes, draw_detections
from tests.test_pipeline import write_video
from tests.test_vision import gallery

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def _dets(boxes: list[list[float]], ids: list[int] | None = None, top: int = 3) -> Detections:
    n = len(boxes)
    probs = np.full((n, 7), 0.05, np.float32)
    probs[:, top] = 0.7
    return Detections(np.array(boxes, np.float32).reshape(n, 4), np.ones(n), np.array(ids or range(1, n + 1)), probs)


def test_draw_detections_marks_the_boxes_only() -> None:
    image = np.full((480, 640, 3), 40, np.uint8)
    out = draw_detections(image, _dets([[100, 150, 250, 300]], ids=[12]))
    assert out is not image and (image == 40).all()  # a copy; the input is untouched
    changed = (out != image).any(axis=2)
    assert changed[150, 100:250].mean() > 0.9 and changed[150:300, 100].mean() > 0.9  # top and left edges
    assert changed[110:150, 100:200].any()  # the "#12 happy 70%" label above the box
    assert not changed[400:, :].any() and not changed[:, 400:].any()  # nothing far away
    assert not changed[180:280, 130:220].any()  # the face itself stays visible


def test_draw_detections_edge_cases() -> None:
    image = np.full((240, 320, 3), 90, np.uint8)
    out = draw_detections(image, Detections.empty())
    assert out is not image and np.array_equal(out, image)
    # partly outside, fully outside, non-finite, untracked and unclassified faces: no error
    dets = Detections(
        np.array([[-50, -40, 60, 70], [280, 200, 400, 330], [500, 500, 600, 600], [np.nan, 0, 10, 10]], np.float32),
        np.ones(4),
    )
    out = draw_detections(image, dets)
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = (out != image).any(axis=2)
    assert changed[:70, :60].any() and changed[200:, 280:].any()
    assert not changed[100:180, 100:250].any()


def test_label_size_follows_the_face() -> None:
    image = np.full((1080, 1920, 3), 30, np.uint8)
    small = (draw_detections(image, _dets([[400, 400, 460, 460]])) != image).any(axis=2)
    large = (draw_detections(image, _dets([[400, 400, 700, 700]])) != image).any(axis=2)
    label_h = [int(m[300:400, 380:900].any(axis=1).sum()) for m in (small, large)]
    assert 8 <= label_h[0] < label_h[1] <= 60


def test_video_writer_downscales_wide_frames(tmp_path: Path) -> None:
    path = tmp_path / "wide.mp4"
    with AnnotatedVideoWriter(path, fps=5, max_width=640) as writer:
        for i in range(7):
            writer.write(np.full((361, 1283, 3), 20 * i, np.uint8), _dets([[100, 100, 300, 300]]))
    assert writer.frames == 7
    cap = cv2.VideoCapture(str(path))
    sizes = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        sizes.append(frame.shape[:2])
    assert len(sizes) == 7 and set(sizes) == {(180, 640)}  # even dimensions for yuv420p


@pytest.fixture(scope="module")
def moving_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    frames = [np.roll(frame, 3 * i, axis=1) for i in range(24)]  # 2.4 s at 10 fps, faces drift right
    return write_video(tmp_path_factory.mktemp("video") / "class.mp4", frames)


@pytest.fixture(scope="module")
def annotated_dir(moving_class: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("annotated") / "out"
    args = ["analyze", str(moving_class), "--out", str(out), "--annotate", "--per-track", "--bin", "1"]
    assert main([*args, "--min-faces", "1"]) == 0
    return out


def test_annotate_writes_a_playable_video_with_every_frame(annotated_dir: Path, moving_class: Path) -> None:
    cap = cv2.VideoCapture(str(annotated_dir / "annotated.mp4"))
    assert cap.isOpened()
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 24
    source = cv2.VideoCapture(str(moving_class))
    ok, first = source.read()
    assert ok and frames[0].shape == first.shape  # 480 x 208: small enough to keep its size
    with open(annotated_dir / "faces.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["frame"] == "0")
    x, y, w, h = (round(float(row[k])) for k in "xywh")
    diff = np.abs(frames[0].astype(int) - first.astype(int)).max(axis=2)
    assert diff[y, x : x + w].mean() > 40 and diff[y : y + h, x].mean() > 40  # the box is drawn...
    assert diff[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4].mean() < 15  # ...around the face


def _label_width(video: Path, source: Path, faces_csv: Path) -> int:
    """Columns changed in the label strip above the first face of the lower row, in the first frame."""
    with open(faces_csv, newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["frame"] == "0" and float(r["y"]) > 60)
    x, y, w = (round(float(row[k])) for k in "xyw")
    ok, drawn = cv2.VideoCapture(str(video)).read()
    ok2, plain = cv2.VideoCapture(str(source)).read()
    assert ok and ok2
    strip = np.abs(drawn.astype(int) - plain.astype(int)).max(axis=2)[y - 22 : y - 3, x : x + 3 * w] > 40
    return int(strip.any(axis=0).sum())


def test_the_annotated_video_shows_expressions_only_in_the_per_face_view(
    annotated_dir: Path, moving_class: Path, tmp_path: Path
) -> None:
    """Without --per-track a face gets its box and pseudonymous id only: how it looks is a per-face thing."""
    out = tmp_path / "plain"
    args = ["analyze", str(moving_class), "--out", str(out), "--annotate", "--bin", "1", "--min-faces", "1"]
    assert main(args) == 0
    with_expressions = _label_width(annotated_dir / "annotated.mp4", moving_class, annotated_dir / "faces.csv")
    ids_only = _label_width(out / "annotated.mp4", moving_class, out / "faces.csv")
    assert 5 < ids_only < 0.5 * with_expressions  # "#4" against "#4 neutral 62%"


def test_boxes_held_between_analyses_drop_after_a_cut_and_when_the_face_left() -> None:
    frame, boxes = gallery(rows=4, cols=5, face_px=80)  # a 20-person gallery
    held = HeldBoxes()
    held.hold(frame, _dets([list(b) for b in boxes]))
    rng = np.random.default_rng(0)
    noisy = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    assert held.on(noisy).track_id.tolist() == list(range(1, 21))  # the same scene: every box stays
    left = noisy.copy()
    x1, y1, x2, y2 = (int(v) for v in boxes[4])
    left[y1 - 10 : y2 + 10, x1 - 20 : x2 + 20] = 35  # face 5 left its tile
    assert held.on(left).track_id.tolist() == [1, 2, 3, 4, *range(6, 21)]
    other, _ = gallery(rows=6, cols=8, face_px=50)  # a re-layout: another grid in the same frame size
    other = cv2.resize(other, (frame.shape[1], frame.shape[0]))
    assert len(held.on(other)) == 0
    assert len(held.on(noisy)) == 0  # stale boxes never come back before the next analysis


def test_annotate_writes_a_self_contained_report(annotated_dir: Path) -> None:
    text = (annotated_dir / "report.html").read_text()
    # class mood, facing the screen, expression shares, per-person timelines
    assert text.count('<img alt="') == 4 and text.count('src="data:image/png;base64,') == 4
    assert "apparent facial expressions" in text and "AI Act, Art. 5(1)(f)" in text and "consent" in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing fetched from the network
    with open(annotated_dir / "faces.csv", newline="") as fh:
        ids = {r["track_id"] for r in csv.DictReader(fh)}
    assert len(ids) == 6
    assert all(f"<td>#{i}</td>" in text for i in ids)
    assert "Per-person view" in text and "single people out" in text  # asked for, and labelled
    assert {p.name for p in annotated_dir.iterdir()} == {
        "faces.csv",
        "class_mood.csv",
        "summary.json",
        "annotated.mp4",
        "report.html",
    }


def test_report_from_dir_matches_the_result(annotated_dir: Path, tmp_path: Path) -> None:
    result = load_result(annotated_dir)
    assert result.summary["faces"] == len(result.faces) > 0
    assert isinstance(result.faces[0]["track_id"], int) and isinstance(result.bins[0], MoodBin)
    path = report_from_dir(annotated_dir, tmp_path / "again.html", per_track=True)
    assert path.read_text().count("data:image/png;base64,") == 4
    default = report_from_dir(annotated_dir, tmp_path / "default.html").read_text()  # per-person view: off
    assert default.count("data:image/png;base64,") == 3 and "<td>#" not in default and "Per-person view" not in default


def test_image_input_gets_a_report_but_no_images(tmp_path: Path) -> None:
    frame, _ = gallery(rows=1, cols=2)
    cv2.imwrite(str(tmp_path / "still.png"), frame)
    out = tmp_path / "o"
    assert main(["analyze", str(tmp_path / "still.png"), "--out", str(out), "--annotate", "--min-faces", "1"]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"faces.csv", "class_mood.csv", "summary.json", "report.html"}
    assert not any(Path(n).suffix in IMAGE_SUFFIXES for n in names)


def test_no_annotate_no_extras_and_a_report_with_no_faces(tmp_path: Path) -> None:
    video = write_video(tmp_path / "empty_room.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 10)
    out = tmp_path / "o"
    assert main(["analyze", str(video), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"faces.csv", "class_mood.csv", "summary.json"}  # no --annotate
    text = report_from_dir(out).read_text()
    assert "No faces were found" in text and "data:image/png" not in text
    assert "AI Act" in text
    (out / "class_mood.csv").write_text("")  # an empty mood file (no frames) is fine too
    assert "No faces were found" in report_from_dir(out).read_text()


def test_report_shows_suppressed_bins_and_flags(tmp_path: Path) -> None:
    shares = {e: 1 / 7 for e in EMOTIONS}

    def mood_bin(i: int, faces: float, negative: float | None, flags: list[str]) -> MoodBin:
        ok = negative is not None
        return MoodBin(
            5.0 * i, 5.0 * i + 5, 10, faces, int(faces), not ok, shares if ok else None, shares if ok else None,
            0.1 if ok else None, negative, flags,
        )  # fmt: skip

    bins = [mood_bin(0, 8, 0.1, []), mood_bin(1, 2, None, ["faces_dropped"]), mood_bin(2, 8, 0.5, ["negative_jump"])]
    faces = [
        {"frame": k, "time_s": k / 2, "track_id": k % 3, "emotion": EMOTIONS[k % 7]} for k in range(30)
    ]  # only the columns the report reads
    result = AnalysisResult("lecture.mp4", faces, bins, {"input": "lecture.mp4", "rate_hz": 2.0})
    text = write_report(result, tmp_path).read_text()  # a folder gets report.html
    assert (tmp_path / "report.html").is_file()
    assert "1 of 3 moments had fewer than 5 faces read" in text and "hatched gaps" in text
    assert "0:05–0:10" in text and "0:10–0:15" in text
    assert "noticeably fewer faces than just before" in text and "more faces looked negative than just before" in text
    assert "faces_dropped" not in text and "negative_jump" not in text  # words, not column names
    # the headline: the mood score of the shown moments, what is hidden by k, the model, and the one-line rules
    assert re.search(r'"label">Mood score</div>\s*<div class="value">\+0\.10<', text)
    assert re.search(r'"label">Hidden by k</div>\s*<div class="value">33 %<', text)
    assert '"label">Model</div>' in text and "faces people call neutral average 0" in text
    assert "at least k = 5 faces read" in text


def test_report_escapes_what_comes_from_the_input(tmp_path: Path) -> None:
    """The template autoescapes: a file name (or any text from an input) cannot inject markup or script."""
    name = '<script>alert("x")</script><img src=x onerror=1>.mp4'
    result = AnalysisResult(name, [], [], {"input": name, "model": "<b>fast</b>"})
    text = write_report(result, tmp_path / "r.html").read_text()
    assert "<script>" not in text and "<img src=x" not in text and "<b>fast</b>" not in text
    assert "&lt;script&gt;" in text
