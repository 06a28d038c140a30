"""Bad input, table-driven: one clear line, exit 2, no traceback, and the previous outputs left intact.

Every case runs ``classmood analyze`` into a folder that holds a good earlier run's outputs; the
CLI must refuse with exit 2 and a one-line message, and those files must be byte-for-byte the
same afterwards. The Python API (``classmood.analyze``) must raise a one-line ``ClassmoodError``
for the same inputs. Then what is *not* an error: damaged frames in a video, a corrupt image in a
folder, and a folder of unrelated photos.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

import classmood
from classmood.cli import main
from classmood.errors import ClassmoodError
from classmood.pipeline import PipelineConfig
from tests.test_pipeline import write_video
from tests.test_vision import gallery


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's header, without the bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    frame, _ = gallery(rows=1, cols=2, face_px=80)
    good_png = root / "class.png"
    cv2.imwrite(str(good_png), frame)
    video = write_video(root / "good.mp4", [frame] * 10)
    files: dict[str, Path] = {"good_png": good_png, "good_video": video}

    def put(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)
        files[name] = root / name

    put("empty.mp4", b"")
    put("text.mp4", b"this is not a video\n" * 50)
    put("random.png", np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    put("bomb.png", png_claiming(100_000, 100_000))
    put("wide.png", png_claiming(60_000, 1_000))
    put("truncated.png", good_png.read_bytes()[:120])
    put("header_only.mp4", video.read_bytes()[:600])
    put("random.mp4", np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    put("a_file", b"x")
    (root / "empty_dir").mkdir()
    (root / "no_images").mkdir()
    (root / "no_images" / "notes.txt").write_text("no pictures here")
    (root / "only_bad_images").mkdir()
    (root / "only_bad_images" / "x.png").write_bytes(b"not a png")
    (root / "model.onnx").write_bytes(b"not an onnx model")
    for name in ("empty_dir", "no_images", "only_bad_images", "model.onnx"):
        files[name] = root / name
    return files


# (id, CLI arguments after the input, input name or literal, message fragment)
CASES: list[tuple[str, str, list[str], str]] = [
    ("missing file", "/no/such/lecture.mp4", [], "no such file"),
    ("empty video", "empty.mp4", [], "empty file"),
    ("text as video", "text.mp4", [], "not a video"),
    ("random bytes as video", "random.mp4", [], "not a video"),
    ("video header only", "header_only.mp4", [], "mp4"),
    ("random bytes as image", "random.png", [], "not an image"),
    ("bomb png header", "bomb.png", [], "too large"),
    ("very wide png header", "wide.png", [], "too large"),
    ("truncated png", "truncated.png", [], "truncated.png"),
    ("empty folder", "empty_dir", [], "no images"),
    ("folder without images", "no_images", [], "no images"),
    ("folder of unreadable images", "only_bad_images", [], "x.png"),
    ("webcam word", "webcam:abc", [], "webcam"),
    ("webcam negative", "webcam:-1", [], "webcam"),
    ("absent webcam", "webcam:97", [], "not available"),
    ("screen spec", "screen:abc", [], "screen"),
    ("screen region", "screen:0,0,-5,10", [], "screen"),
    ("bin zero", "good_video", ["--bin", "0"], "bin"),
    ("bin negative", "good_video", ["--bin", "-5"], "bin"),
    ("bin nan", "good_video", ["--bin", "nan"], "bin"),
    ("bin infinite", "good_video", ["--bin", "inf"], "bin"),
    ("rate negative", "good_video", ["--rate", "-1"], "rate"),
    ("rate nan", "good_video", ["--rate", "nan"], "rate"),
    ("rate infinite", "good_video", ["--rate", "inf"], "rate"),
    ("k zero", "good_video", ["--min-faces", "0"], "at least 1"),
    ("k negative", "good_video", ["--min-faces", "-2"], "at least 1"),
    ("unknown model", "good_video", ["--model", "nosuchmodel"], "nosuchmodel"),
    ("model not onnx", "good_video", ["--model", "model.onnx"], "model.onnx"),
    ("unknown detector", "good_video", ["--detector", "nosuch"], "nosuch"),
    ("db without save", "good_video", ["--db", "x.db"], "--save"),
    ("database url", "good_video", ["--save", "--db", "nosuchdialect://x/y"], "session database"),
    ("per-track without report", "good_video", ["--per-track"], "--annotate"),
]


def _resolve(inputs: dict[str, Path], name: str, args: list[str]) -> tuple[str, list[str]]:
    given = str(inputs[name]) if name in inputs else name
    return given, [str(inputs[a]) if a in inputs else a for a in args]


@pytest.fixture()
def previous(inputs: dict[str, Path], tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """An output folder holding a good run's files, and their bytes."""
    out = tmp_path / "out"
    assert main(["analyze", str(inputs["good_png"]), "--out", str(out), "--min-faces", "1"]) == 0
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


def assert_one_line_refusal(capsys: pytest.CaptureFixture, code: int, fragment: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("classmood: error: ") and fragment.lower() in err.lower(), err


@pytest.mark.parametrize(("name", "args", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_refuses_bad_input_and_keeps_previous_outputs(
    inputs: dict[str, Path],
    previous: tuple[Path, dict[str, bytes]],
    capsys: pytest.CaptureFixture,
    name: str,
    args: list[str],
    fragment: str,
) -> None:
    out, before = previous
    given, extra = _resolve(inputs, name, args)
    capsys.readouterr()
    assert_one_line_refusal(capsys, main(["analyze", given, "--out", str(out), *extra]), fragment)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing damaged, nothing left over


@pytest.mark.parametrize(
    ("out_of", "fragment"),
    [
        (lambda inputs, tmp: inputs["a_file"], "not a folder"),
        (lambda inputs, tmp: inputs["a_file"] / "sub", "cannot write"),
        (lambda inputs, tmp: Path("/proc/classmood-out"), "cannot write"),
    ],
    ids=["out is a file", "out under a file", "out not writable"],
)
def test_cli_refuses_an_unusable_output_folder(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, out_of: Callable, fragment: str
) -> None:
    code = main(["analyze", str(inputs["good_png"]), "--out", str(out_of(inputs, tmp_path))])
    assert_one_line_refusal(capsys, code, fragment)
    assert inputs["a_file"].read_bytes() == b"x"


API_CASES = [c for c in CASES if not c[2] or c[2][0] in ("--bin", "--rate", "--min-faces", "--model", "--detector")]


@pytest.mark.parametrize(("name", "args", "fragment"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_python_api_raises_one_line_errors(
    inputs: dict[str, Path], tmp_path: Path, name: str, args: list[str], fragment: str
) -> None:
    given, extra = _resolve(inputs, name, args)
    keys = {
        "--bin": "bin_s",
        "--rate": "rate_hz",
        "--min-faces": "min_faces",
        "--model": "model",
        "--detector": "detector",
    }
    settings = {}
    if extra:
        value: object = extra[1]
        settings[keys[extra[0]]] = value if extra[0] in ("--model", "--detector") else float(extra[1])
        if extra[0] == "--min-faces":
            settings["min_faces"] = int(extra[1])
    with pytest.raises(ClassmoodError) as info:
        classmood.analyze(given, tmp_path / "api", PipelineConfig(**settings))  # type: ignore[arg-type]
    assert "\n" not in str(info.value) and fragment.lower().lstrip("-") in str(info.value).lower()


def test_a_failing_run_keeps_the_previous_outputs(
    inputs: dict[str, Path], previous: tuple[Path, dict[str, bytes]]
) -> None:
    """A run that fails mid-way (here: the analysis raises on the 3rd frame) leaves the folder as it was."""
    out, before = previous
    calls = []

    def boom(update: object, done: object) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        classmood.analyze(inputs["good_video"], out, PipelineConfig(rate_hz=0), on_update=boom)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_damaged_frames_are_skipped_and_counted(tmp_path: Path) -> None:
    frame, _ = gallery(rows=1, cols=2, face_px=80)
    frames = [np.roll(frame, i, axis=1) for i in range(200)]
    video = write_video(tmp_path / "v.mp4", frames, fps=25.0)
    data = bytearray(video.read_bytes())
    n = len(data)
    data[n // 3 : n // 3 + n // 5] = np.random.default_rng(0).integers(0, 256, n // 5, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "out"
    assert main(["analyze", str(damaged), "--out", str(out), "--rate", "0", "--min-faces", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_frames"] > 0 and not summary["truncated"]
    assert summary["frames_analysed"] + summary["skipped_frames"] >= 190  # read past the damage to the end
    assert summary["frames_analysed"] > 120


def test_a_corrupt_image_in_a_folder_is_skipped(inputs: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"good{i}.png").write_bytes(inputs["good_png"].read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    assert main(["analyze", str(folder), "--out", str(out), "--min-faces", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_frames"] == 1 and summary["frames_analysed"] == 3 and summary["faces"] == 6


def test_unrelated_photos_are_analysed_one_by_one(inputs: dict[str, Path], tmp_path: Path) -> None:
    """Separate photos: no track, and no smoothed expression, carries from one photo to the next."""
    frame, _ = gallery(rows=1, cols=2, face_px=80)
    photos, sequence = tmp_path / "photos", tmp_path / "frames"
    photos.mkdir()
    sequence.mkdir()
    for i, name in enumerate(["beach.png", "party.png", "office.png"]):
        cv2.imwrite(str(photos / name), frame)
        cv2.imwrite(str(sequence / f"frame_{i:04d}.png"), frame)
    photo_result = classmood.analyze(photos, None, PipelineConfig(min_faces=1))
    frames_result = classmood.analyze(sequence, None, PipelineConfig(min_faces=1))
    assert photo_result.summary["tracks"] == 6  # 2 faces x 3 photos, none followed across photos
    assert frames_result.summary["tracks"] == 2  # numbered frames of one sequence: the same 2 faces
