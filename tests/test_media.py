"""Media read right: real timestamps (variable frame rate), cut files vs damaged frames, upright and
correctly scaled images, files that are not files, and a disk that fills up.

Every video here is made with PyAV the way the recorders that break naive readers make them:
Zoom and OBS write a frame only when the picture changes (irregular timestamps, a nominal rate
that says nothing about them), a download or copy that stops leaves the container's header
declaring a length the data does not have.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from classmood.analysis.chunks import analyze_chunk, plan_chunks, stitch, video_length
from classmood.cli import main
from classmood.containers import Frame
from classmood.errors import ClassmoodError
from classmood.imageio import read_image
from classmood.pipeline import Analyzer, PipelineConfig
from classmood.vision.sources import open_source
from tests.test_pipeline import write_video
from tests.test_vision import gallery


def write_timed_video(path: Path, frames: list[np.ndarray], times_ms: list[int], **options: str) -> Path:
    """H.264 with each frame at its own timestamp (milliseconds), as a variable-frame-rate recorder writes it.

    The stream's nominal rate is 30 fps whatever the timestamps say (what OBS declares).
    """
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for image, ms in zip(frames, times_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# A static screen share: 30 fps for the first second, then one frame a second until 20 s.
VFR_TIMES_MS = list(range(0, 1000, 33)) + list(range(1000, 20001, 1000))


@pytest.fixture(scope="module")
def vfr_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vfr")
    frame, _ = gallery(rows=1, cols=2, face_px=80)
    frames = [np.roll(frame, i % 7, axis=1) for i in range(len(VFR_TIMES_MS))]
    return {ext: write_timed_video(root / f"screen.{ext}", frames, VFR_TIMES_MS) for ext in ("mkv", "mp4")}


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_variable_frame_rate_frames_keep_their_own_times(vfr_clips: dict[str, Path], ext: str) -> None:
    """Index / nominal fps put this 20-s clip at 1.7 s and called the rest 550 damaged frames."""
    src = open_source(vfr_clips[ext])
    frames = list(src)
    assert [round(f.time_s * 1000) for f in frames] == VFR_TIMES_MS
    assert [f.index for f in frames] == list(range(len(VFR_TIMES_MS)))
    assert src.skipped == 0 and not src.truncated


def test_variable_frame_rate_analysis_rate_follows_the_timestamps(vfr_clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["analyze", str(vfr_clips["mkv"]), "--out", str(out), "--rate", "2", "--bin", "5", "--min-faces", "1"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_frames"] == 0 and summary["truncated"] is False
    with open(out / "faces.csv") as fh:
        times = sorted({float(line.split(",")[1]) for line in list(fh)[1:]})
    # 2 Hz over the dense first second (0, 0.528), then every 1-s frame: the analysis reaches 20 s
    assert times[:3] == [0.0, 0.528, 1.0] and times[-1] == 20.0 and len(times) == 22
    bins = (out / "class_mood.csv").read_text().splitlines()
    assert bins[-1].startswith("20.0,")  # the last 5-s bin starts at 20 s


def test_chunks_of_a_variable_frame_rate_recording_match_the_unsplit_run(vfr_clips: dict[str, Path]) -> None:
    """A chunk seeks by time: OpenCV's seek counted frames at the nominal rate and ran off the end."""
    config = PipelineConfig(rate_hz=2.0, bin_s=1.0, min_faces=1)
    path = vfr_clips["mkv"]
    length, _, _ = video_length(path)
    plan = plan_chunks(length, 6.0, config.bin_s, config.rate_hz)
    assert len(plan) == 4 and plan[-1][1] == pytest.approx(20.033, abs=0.01)
    chunks = [analyze_chunk(path, a, b, 2.0, config) for a, b in plan]
    _, analysed, _ = stitch(chunks)
    alone = _unsplit(path, config)
    assert analysed == alone and alone[-1] == (len(VFR_TIMES_MS) - 1, 20.0)
    assert not any(c.truncated for c in chunks) and sum(c.skipped for c in chunks) == 0


def _unsplit(path: Path, config: PipelineConfig) -> list[tuple[int, float]]:
    """(frame, time) of every frame an unsplit run analyses."""
    src, analyzer = open_source(path), Analyzer(config)
    analysed = []
    for frame in src.frames(analyzer.due):
        analyzer.process(frame)
        analysed.append((frame.index, round(frame.time_s, 3)))
    return analysed


@pytest.fixture(scope="module")
def cut_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Whole and cut (60 % of the bytes) copies of an 8-s 25-fps recording, as MP4 with its index first
    (what streaming exports write), Matroska and AVI."""
    root = tmp_path_factory.mktemp("cut")
    frame, _ = gallery(rows=1, cols=2, face_px=80)
    frames = [np.roll(frame, i, axis=1) for i in range(200)]
    clips: dict[str, Path] = {}
    for name, options in (("lesson.mp4", {"movflags": "faststart"}), ("lesson.mkv", {})):
        whole = write_timed_video(root / name, frames, [40 * i for i in range(200)], **options)
        clips[name] = whole
        clips[f"cut_{name}"] = root / f"cut_{name}"
        clips[f"cut_{name}"].write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    avi = root / "lesson.avi"
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, frame.shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    clips["lesson.avi"], clips["cut_lesson.avi"] = avi, root / "cut_lesson.avi"
    clips["cut_lesson.avi"].write_bytes(avi.read_bytes()[: int(avi.stat().st_size * 0.6)])
    return clips


@pytest.mark.parametrize("name", ["lesson.mp4", "lesson.mkv", "lesson.avi"])
def test_a_cut_file_ended_early_and_its_frames_are_not_damaged(cut_clips: dict[str, Path], name: str) -> None:
    whole = open_source(cut_clips[name])
    assert len(list(whole)) == 200 and not whole.truncated and whole.skipped == 0
    cut = open_source(cut_clips[f"cut_{name}"])
    frames = list(cut)
    assert 20 < len(frames) < 180
    assert cut.truncated and cut.skipped == 0  # before: the missing frames were "damaged"
    assert cut.ended_at_s == pytest.approx(frames[-1].time_s) == (len(frames) - 1) * 0.04


def test_the_cli_says_ended_early_not_damaged(cut_clips: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["analyze", str(cut_clips["cut_lesson.mp4"]), "--out", str(out), "--min-faces", "1"]) == 0
    err = capsys.readouterr().err
    assert "ended early, at " in err and "of the 8.0 s its container declares" in err
    assert "damaged" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["truncated"] is True and summary["skipped_frames"] == 0


def test_chunks_of_a_cut_file_say_truncated(cut_clips: dict[str, Path], tmp_path: Path) -> None:
    from classmood.analysis.chunks import write_chunked_outputs

    config = PipelineConfig(rate_hz=2.0, bin_s=1.0, min_faces=1)
    path = cut_clips["cut_lesson.mkv"]
    chunks = [analyze_chunk(path, a, b, 1.0, config) for a, b in plan_chunks(8.0, 3.0, 1.0, 2.0)]
    assert [c.truncated for c in chunks] == [False, True, True] and sum(c.skipped for c in chunks) == 0
    summary, _, _ = write_chunked_outputs(path, tmp_path / "out", chunks, config, 1.0)
    assert summary["truncated"] is True and summary["skipped_frames"] == 0


def test_damaged_frames_are_counted_by_the_decoder_and_chunks_agree(tmp_path: Path) -> None:
    """Garbage in the middle: the decoder refuses those packets; the stream goes on to its end."""
    frame, _ = gallery(rows=1, cols=2, face_px=80)
    video = write_video(tmp_path / "v.mp4", [np.roll(frame, i, axis=1) for i in range(200)], fps=25.0)
    data = bytearray(video.read_bytes())
    n = len(data)
    data[n // 3 : n // 3 + n // 5] = np.random.default_rng(0).integers(0, 256, n // 5, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    src = open_source(damaged)
    frames = list(src)
    assert not src.truncated and src.skipped == 200 - len(frames) > 20
    assert frames[-1].time_s == pytest.approx(7.96) and frames[-1].index == 199  # its place in the file
    config = PipelineConfig(rate_hz=2.0, bin_s=1.0, min_faces=1)
    chunks = [analyze_chunk(damaged, a, b, 1.0, config) for a, b in plan_chunks(8.0, 4.0, 1.0, 2.0)]
    _, analysed, _ = stitch(chunks)
    assert analysed == _unsplit(damaged, config)  # the same frames, with the same indices
    assert not any(c.truncated for c in chunks) and sum(c.skipped for c in chunks) >= src.skipped


def test_a_video_recorded_sideways_is_turned_upright(tmp_path: Path) -> None:
    """A phone's portrait recording: landscape pixels and a display matrix saying 'turn 90 degrees'."""
    import struct

    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :16] = 255  # the left quarter is white
    video = write_timed_video(tmp_path / "phone.mp4", [image] * 3, [0, 100, 200])
    data = bytearray(video.read_bytes())
    at = data.index(b"tkhd") + 4 + 4 + 20 + 8 + 8  # version-0 track header: its 3x3 matrix
    data[at : at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)  # 90 clockwise
    video.write_bytes(bytes(data))
    first = next(iter(open_source(video)))
    assert first.image.shape == (64, 32, 3)  # as OpenCV showed it: turned clockwise, the white on top
    assert first.image[:16].mean() > 200 and first.image[20:].mean() < 30


@pytest.fixture(scope="module")
def faces_in() -> Callable[[np.ndarray], int]:
    """The faces the pipeline finds in one image (detector, gate, tracker: what analyze counts)."""

    def count(image: np.ndarray) -> int:
        analyzer = Analyzer(PipelineConfig(min_faces=1), detector, model)
        return len(analyzer.process(Frame(0, 0.0, image)).detections)

    first = Analyzer(PipelineConfig(min_faces=1))
    detector, model = first.detector, first.model
    return count


def test_exif_orientation_is_applied(tmp_path: Path, faces_in: Callable[[np.ndarray], int]) -> None:
    """A phone photo stored sideways with orientation 6: 0 faces before, the upright copy's 6 now."""
    from PIL import Image

    upright, _ = gallery(rows=2, cols=3, face_px=80)
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # orientation 6: turn it clockwise to show
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored[:, :, ::-1]).save(path, exif=exif, quality=95)
    assert faces_in(cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)) == 0  # the stored pixels
    image = read_image(path)
    assert image.shape == upright.shape and faces_in(image) == 6
    assert np.abs(image.astype(int) - upright).mean() < 3
    folder = tmp_path / "photos"  # and as a frame in a folder
    folder.mkdir()
    (folder / "a.jpg").write_bytes(path.read_bytes())
    assert [f.image.shape for f in open_source(folder)] == [upright.shape]


@pytest.mark.parametrize(
    ("kind", "convert"),
    [
        ("12-bit in 16-bit", lambda g: g.astype(np.uint16) * 16),  # max 4080: >> 8 made it black
        ("8-bit in 16-bit", lambda g: g.astype(np.uint16)),  # max 255: stays as it is
        ("16-bit", lambda g: g.astype(np.uint16) * 257),
        ("float 0..1", lambda g: g.astype(np.float32) / 255),
        ("float 0..1000", lambda g: g.astype(np.float32) * 1000 / 255),
        ("float with NaN and inf", lambda g: _with_bad_pixels(g.astype(np.float32) / 255)),
    ],
)
def test_deep_tiffs_are_scaled_by_their_real_range(
    tmp_path: Path, faces_in: Callable[[np.ndarray], int], kind: str, convert: Callable[[np.ndarray], np.ndarray]
) -> None:
    upright, _ = gallery(rows=2, cols=3, face_px=80)
    grey = cv2.cvtColor(upright, cv2.COLOR_BGR2GRAY)
    path = tmp_path / "deep.tif"
    assert cv2.imwrite(str(path), convert(grey))
    image = read_image(path)
    assert image.dtype == np.uint8 and faces_in(image) == 6, kind
    assert abs(float(image.mean()) - float(grey.mean())) < 25 or kind == "float 0..1000"


def _with_bad_pixels(image: np.ndarray) -> np.ndarray:
    image = image.copy()
    image[0, :5] = np.nan
    image[1, :5] = np.inf
    image[2, :5] = -np.inf
    return image


def test_to_uint8_edges() -> None:
    from classmood.imageio import to_uint8

    assert to_uint8(np.full((2, 2), np.nan, np.float32)).max() == 0  # nothing finite: black, no warning
    assert to_uint8(np.array([[0, 4095]], np.uint16)).tolist() == [[0, 255]]
    assert to_uint8(np.array([[0, 65535]], np.uint16)).tolist() == [[0, 255]]
    assert to_uint8(np.array([[0, 200]], np.uint16)).tolist() == [[0, 200]]
    assert to_uint8(np.array([[-1.0, 1.0]], np.float64)).tolist() == [[0, 255]]
    assert to_uint8(np.array([[0.0, 0.5, 1.0]], np.float32)).tolist() == [[0, 128, 255]]
    assert to_uint8(np.array([[-5, 5]], np.int16)).tolist() == [[0, 255]]
    assert to_uint8(np.array([[3, 200]], np.int32)).tolist() == [[3, 200]]


def _in_thread(fn, timeout: float = 30.0):
    """Run fn in a thread; fail (instead of hanging the suite) if it does not return in time."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "blocked (reading a FIFO?)"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


def test_a_fifo_in_a_folder_is_not_read(tmp_path: Path) -> None:
    frame, _ = gallery(rows=1, cols=2, face_px=80)
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "frame_0001.png"), frame)
    cv2.imwrite(str(folder / "frame_0003.png"), frame)
    os.mkfifo(folder / "frame_0002.png")  # would block the first open() forever
    (folder / "frame_0004.png").symlink_to(folder / "frame_0004.png")  # a link loop
    src = _in_thread(lambda: open_source(folder))
    assert [p.name for p in src._images] == ["frame_0001.png", "frame_0003.png"]
    assert len(_in_thread(lambda: list(src))) == 2


def test_a_fifo_or_device_given_as_input_is_refused(tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "lecture.mp4"
    os.mkfifo(fifo)
    for given in (fifo, Path("/dev/null"), Path("/dev/zero")):
        code = _in_thread(lambda g=given: main(["analyze", str(g), "--out", str(tmp_path / "out")]))
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "not a regular file" in err, err
    for reader in (read_image, video_length):  # (batch plans chunks with video_length before any worker)
        with pytest.raises(ClassmoodError, match="not a regular file"):
            _in_thread(lambda r=reader: r(fifo))


@pytest.fixture()
def previous_run(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    frame, _ = gallery(rows=1, cols=2, face_px=80)
    video = write_video(tmp_path / "class.mp4", [frame] * 10)
    out = tmp_path / "out"
    assert main(["analyze", str(video), "--out", str(out), "--min-faces", "1"]) == 0
    return video, out, {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EIO])
@pytest.mark.parametrize("where", ["faces rows", "class mood", "summary"])
def test_a_write_failure_is_one_line_and_keeps_the_previous_outputs(
    previous_run: tuple[Path, Path, dict[str, bytes]], monkeypatch, capsys, code: int, where: str
) -> None:
    from classmood.analysis import analyze as analyze_module
    from classmood.analysis.faces_csv import FacesCsv

    video, out, before = previous_run

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    if where == "faces rows":
        monkeypatch.setattr(FacesCsv, "write_rows", fail)
    elif where == "class mood":
        monkeypatch.setattr(analyze_module, "_write_mood", fail)
    else:
        monkeypatch.setattr(analyze_module.json, "dumps", fail)
    capsys.readouterr()
    assert main(["analyze", str(video), "--out", str(out), "--rate", "0", "--min-faces", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("classmood: error: ") and os.strerror(code) in err and "unchanged" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing lost, no work folder left


def test_a_full_disk_for_real_is_one_line(previous_run: tuple[Path, Path, dict[str, bytes]]) -> None:
    """The process may write at most 1 kB per file (RLIMIT_FSIZE): faces.csv of 20 faces does not fit."""
    video, out, before = previous_run
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024)); "
        "from classmood.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "analyze", str(video), "--out", str(out), "--rate", "0", "--min-faces", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "File too large" in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(
    ("bin_s", "rate"),
    [(0.0004, 2.0), (1e-320, 2.0)],
)
def test_a_chunk_plan_with_a_tiny_bin_is_refused_not_divided_by_zero(bin_s: float, rate: float) -> None:
    with pytest.raises(ClassmoodError, match="bin"):
        plan_chunks(3600.0, 1800.0, bin_s, rate)


@pytest.mark.parametrize(
    ("bin_s", "rate", "chunks"),
    [
        (0.001, 2.0, 2),  # the smallest bin: a 1-ms grid
        (5.0, 1e-320, 2),  # one analysed frame in the whole recording: the bins alone make the grid
        (5.0, 5000.0, 2),  # every frame analysed: bins alone make the grid
        (1e300, 2.0, 1),  # one bin longer than the recording
        (7.0, 3.0, 2),
    ],
)
def test_chunk_plans_for_extreme_settings(bin_s: float, rate: float, chunks: int) -> None:
    plan = plan_chunks(3600.0, 1800.0, bin_s, rate)
    assert len(plan) == chunks and plan[0][0] == 0.0 and plan[-1][1] == 3600.0
    assert all(a < b for a, b in plan)


def test_a_tiny_bin_is_refused_by_the_cli(previous_run: tuple[Path, Path, dict[str, bytes]], capsys) -> None:
    video, out, before = previous_run
    for argv in (
        ["analyze", str(video), "--out", str(out), "--bin", "1e-320"],
        ["batch", str(video), "--out", str(out / "b"), "--bin", "0.0001", "--local"],
    ):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "bin" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
