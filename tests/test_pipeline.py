"""The video pipeline end to end on small generated inputs: outputs, tracking, and bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from classmood.analysis.analyze import analyze
from classmood.errors import ClassmoodError
from classmood.labels import FACE_COLUMNS
from classmood.pipeline import PipelineConfig
from tests.test_vision import gallery


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def gallery_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    return write_video(tmp_path_factory.mktemp("video") / "class.mp4", [frame] * 30)  # 3 s at 10 fps


def test_analyze_writes_faces_mood_and_summary(gallery_video: Path, tiny_run: Path, tmp_path: Path) -> None:
    config = PipelineConfig(model=str(tiny_run / "model.onnx"), rate_hz=2.0, bin_s=1.0, min_faces=5)
    result = analyze(gallery_video, tmp_path / "out", config)
    with open(tmp_path / "out" / "faces.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == FACE_COLUMNS
        rows = list(reader)
    assert len(rows) == 6 * 6  # 6 faces x 6 analysed frames (2 per second over 3 s)
    assert sorted({int(r["frame"]) for r in rows}) == [0, 5, 10, 15, 20, 25]
    assert len({r["track_id"] for r in rows}) == 6  # still faces keep their pseudonymous ids
    assert all(
        abs(sum(float(r[f"p_{e}"]) for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")) - 1)
        < 1e-3
        for r in rows
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["frames"], summary["frames_analysed"], summary["faces"], summary["tracks"]) == (30, 6, 36, 6)
    assert summary["detector"] == "libface" and summary["truncated"] is False
    with open(tmp_path / "out" / "class_mood.csv", newline="") as fh:
        bins = list(csv.DictReader(fh))
    assert [float(b["faces"]) for b in bins] == [6.0, 6.0, 6.0]
    assert result.summary == summary


def test_no_faces_gives_an_empty_valid_result(tiny_run: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "empty_room.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 10)
    result = analyze(video, tmp_path / "out", PipelineConfig(model=str(tiny_run / "model.onnx")))
    assert result.faces == [] and result.summary["faces"] == 0
    assert (tmp_path / "out" / "faces.csv").read_text().strip() == ",".join(FACE_COLUMNS)


@pytest.mark.parametrize("kind", ["alpha", "16bit"])
def test_odd_image_formats(kind: str, tiny_run: Path, tmp_path: Path) -> None:
    frame, _ = gallery(rows=1, cols=2)
    image = cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA) if kind == "alpha" else frame.astype(np.uint16) * 257
    path = tmp_path / f"{kind}.png"
    cv2.imwrite(str(path), image)
    result = analyze(path, None, PipelineConfig(model=str(tiny_run / "model.onnx"), min_faces=1))
    assert len(result.faces) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"just some text, not a video\n" * 50, "not a video or image"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "not a video or image|no decodable frames"),
    ],
)
def test_unreadable_inputs_fail_with_one_line(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "lecture.mp4"
    path.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "classmood.cli", "analyze", str(path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("classmood: error:")
    assert any(m in proc.stderr for m in message.split("|")), proc.stderr


def test_truncated_video_keeps_what_was_read(gallery_video: Path, tiny_run: Path, tmp_path: Path) -> None:
    data = gallery_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    try:
        result = analyze(cut, tmp_path / "out", PipelineConfig(model=str(tiny_run / "model.onnx")))
    except ClassmoodError as exc:  # a cut mp4 may lose its index: then nothing is decodable
        assert "no decodable frames" in str(exc) or "not a video" in str(exc)
        return
    assert (tmp_path / "out" / "summary.json").is_file()
    assert result.summary["frames"] <= 30


def test_missing_webcam_is_a_clear_error() -> None:
    from classmood.vision.sources import open_source

    with pytest.raises(ClassmoodError, match="webcam 7 is not available"):
        open_source("webcam:7")


def test_python_api_stream_and_analyze(gallery_video: Path, tiny_run: Path) -> None:
    import classmood

    config = PipelineConfig(model=str(tiny_run / "model.onnx"), rate_hz=1.0, bin_s=1.0, min_faces=1)
    updates = list(classmood.stream(gallery_video, config))
    *analysed, final = updates
    assert [u.frame.index for u in analysed] == [0, 10, 20] and not any(u.final for u in analysed)
    assert all(len(u.detections) == 6 for u in analysed)
    assert [len(u.bins) for u in updates] == [0, 1, 1, 1]  # each 1-s bin as soon as it closes, the last at the end
    assert final.final and len(final.detections) == 0 and final.bins[0].start_s == 2.0
    result = classmood.analyze(gallery_video, config=config)
    assert len(result.faces) == 18 and result.summary["tracks"] == 6
    df = result.to_pandas()
    assert list(df.columns) == FACE_COLUMNS and len(df) == 18
    assert df.groupby("track_id").size().tolist() == [3] * 6


def test_frames_between_analyses_are_skipped_but_counted(tmp_path: Path) -> None:
    from classmood.vision.sources import open_source

    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(20)]
    src = open_source(write_video(tmp_path / "ramp.mp4", frames, fps=10.0))
    wanted = list(src.frames(lambda t: t >= 1.45))
    assert [f.index for f in wanted] == [15, 16, 17, 18, 19]
    assert abs(float(wanted[0].image.mean()) - 150) < 8  # the right frame was decoded, not a neighbour
    assert src.frames_read == 20


def test_unreadable_faces_are_uncertain_everywhere(gallery_video: Path, tiny_run: Path, tmp_path: Path) -> None:
    """Faces the model's readout cannot read are counted as uncertain: in faces.csv, the bins and the
    summary, never as an expression, and the class shares are over the faces that were read."""
    pytest.importorskip("onnx")
    import shutil

    from classmood.expression.readout import Readout
    from classmood.training.ship_readout import write_readout

    model = tmp_path / "strict.onnx"
    shutil.copy(tiny_run / "model.onnx", model)
    write_readout(model, Readout(min_face_px=1000))  # every face in this video is too small to read
    config = PipelineConfig(model=str(model), rate_hz=2.0, bin_s=1.0, min_faces=5)
    result = analyze(gallery_video, tmp_path / "out", config)
    assert result.faces and {f["emotion"] for f in result.faces} == {"uncertain"}
    # k counts the faces read: faces were present in every bin, none was read, so no class number shows
    assert all(b.faces > 0 and b.read_faces == 0 and b.suppressed and b.shares is None for b in result.bins)
    assert result.summary["class"]["shares"] is None and result.summary["class"]["valence"] is None
    with open(tmp_path / "out" / "class_mood.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(float(r["faces"]) > 0 and r["valence"] == "" and r["share_happy"] == "" for r in rows)

    everyone = analyze(gallery_video, None, PipelineConfig(model=str(model), bin_s=1.0, uncertain=False))
    assert "uncertain" not in {f["emotion"] for f in everyone.faces}
    assert all(b.uncertain_share == 0.0 and b.shares is not None for b in everyone.bins)


def test_face_rows_are_compact_and_read_back_as_the_rows_written() -> None:
    from classmood.analytics.face_rows import FaceRows

    rows = [
        {
            "frame": i,
            "time_s": i / 2,
            "track_id": i % 3,
            "x": 1.5,
            "y": 2.0,
            "w": 30.0,
            "h": 31.5,
            "det_score": 0.91,
            "emotion": "uncertain" if i == 4 else "happy",
            **{f"p_{e}": 1 / 7 for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")},
            "yaw": 40.0 if i % 2 else 3.5,
            "pitch": -2.0,
            "roll": 0.5,
            "facing": "away" if i % 2 else "toward",
        }
        for i in range(2000)
    ]
    table = FaceRows(rows[:5])
    table.extend(rows[5:])
    assert len(table) == 2000 and table == rows and table[4]["emotion"] == "uncertain" and table[-1] == rows[-1]
    assert list(table.to_pandas().columns) == FACE_COLUMNS
    assert table.nbytes < 200 * 2000 * 2  # ~136 bytes a row (plus growth room), not ~1.3 KB of dicts


def test_the_runtime_path_imports_no_pytorch(gallery_video: Path, tmp_path: Path) -> None:
    """analyze (with a report and a saved session), the live worker and the app's logic run without PyTorch."""
    import subprocess
    import sys

    code = (
        "import sys, classmood\n"
        "from classmood.live import LiveSession\n"
        "from classmood.app import uploads, auth\n"
        "from classmood.store import open_store\n"
        f"classmood.analyze({str(gallery_video)!r}, {str(tmp_path / 'o')!r}, annotate=True)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'onnxscript'))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
