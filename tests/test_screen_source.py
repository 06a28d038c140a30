"""Screen capture as a source: spec parsing, the no-display error, and capture with mss faked (or Xvfb)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import mss
import numpy as np
import pytest

from classmood.cli import main
from classmood.errors import ClassmoodError
from classmood.vision.screen import ScreenSpec, open_screen, parse_screen_spec
from classmood.vision.sources import open_source
from tests.test_vision import gallery

MONITORS = [
    {"left": 0, "top": 0, "width": 2560, "height": 1080},  # all monitors together
    {"left": 0, "top": 0, "width": 1920, "height": 1080},  # primary
    {"left": 1920, "top": 0, "width": 640, "height": 480},
]


class FakeMSS:
    """Stands in for ``mss.MSS()``: BGRA screenshots of a fixed picture, optionally failing after some grabs."""

    instances: ClassVar[list[FakeMSS]] = []
    options: ClassVar[dict[str, Any]] = {}  # what the next instances get (set by tests)

    def __init__(self, picture: np.ndarray | None = None, fail_after: int | None = None) -> None:
        self.monitors = MONITORS
        self.picture = picture
        self.fail_after = fail_after
        self.areas: list[dict[str, int]] = []
        self.closed = False
        FakeMSS.instances.append(self)

    def grab(self, area: dict[str, int]) -> np.ndarray:
        if self.fail_after is not None and len(self.areas) >= self.fail_after:
            raise mss.ScreenShotError("XGetImage() failed")
        self.areas.append(area)
        h, w = area["height"], area["width"]
        if self.picture is not None:
            bgra = np.dstack([np.resize(self.picture, (h, w, 3)), np.full((h, w), 255, np.uint8)])
            return bgra
        bgra = np.empty((h, w, 4), np.uint8)
        bgra[...] = (10, 20, 30, 255)  # B, G, R, alpha
        return bgra

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_mss(monkeypatch: pytest.MonkeyPatch) -> type[FakeMSS]:
    FakeMSS.instances, FakeMSS.options = [], {}

    def factory() -> FakeMSS:
        return FakeMSS(**FakeMSS.options)

    monkeypatch.setattr(mss, "MSS", factory, raising=False)
    monkeypatch.setattr(mss, "mss", factory)
    return FakeMSS


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("screen", ScreenSpec(1)),
        ("screen:0", ScreenSpec(0)),
        ("screen:2", ScreenSpec(2)),
        ("screen:100,50,640,360", ScreenSpec(None, (100, 50, 640, 360))),
        ("screen:-1920,0,800,600", ScreenSpec(None, (-1920, 0, 800, 600))),
    ],
)
def test_spec_parsing(spec: str, expected: ScreenSpec) -> None:
    assert parse_screen_spec(spec) == expected


@pytest.mark.parametrize(
    "spec", ["screen:1,2", "screen:", "screen:abc", "screen:-1", "screen:0,0,0,10", "screen:1,2,3"]
)
def test_bad_specs_are_one_line_errors(spec: str) -> None:
    with pytest.raises(ClassmoodError, match="screen") as info:
        open_source(spec)
    assert "\n" not in str(info.value)


def test_no_display_fails_at_open(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("the X11 no-display path is Linux-only")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ClassmoodError, match=r"^cannot capture the screen: no display \(") as info:
        open_source("screen")
    assert "\n" not in str(info.value)
    proc = subprocess.run(
        [sys.executable, "-m", "classmood.cli", "analyze", "screen:1", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")},
    )
    assert proc.returncode == 2 and proc.stderr.startswith("classmood: error: cannot capture the screen: no display")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "o").exists()


def test_capture_gives_bgr_frames_at_the_nominal_rate(fake_mss: type[FakeMSS]) -> None:
    src = open_source("screen")
    assert (src.name, src.kind, src.frame_count, src.fps) == ("screen:1", "screen", None, 10.0)
    src = open_screen("screen:2", fps=40)
    frames = list(itertools.islice(src, 5))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    for f in frames:
        assert f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 and f.image.flags.c_contiguous
        assert tuple(f.image[0, 0]) == (10, 20, 30)  # BGRA -> BGR, alpha dropped
    times = [f.time_s for f in frames]
    assert times[0] < 0.05 and all(b > a for a, b in itertools.pairwise(times))
    assert times[-1] - times[0] >= 4 / 40 * 0.9  # no faster than 40 frames/s
    live = fake_mss.instances[-1]
    assert live.areas[0] == {"left": 1920, "top": 0, "width": 640, "height": 480}
    assert all(m.closed for m in fake_mss.instances[:-1])  # the probes at open time


def test_region_and_monitor_checks(fake_mss: type[FakeMSS]) -> None:
    src = open_screen("screen:100,50,320,200", fps=100)
    frame = next(iter(src))
    assert frame.image.shape == (200, 320, 3)
    assert fake_mss.instances[-1].areas[0] == {"left": 100, "top": 50, "width": 320, "height": 200}
    with pytest.raises(ClassmoodError, match=r"no monitor 5 \(this display has 2"):
        open_source("screen:5")
    with pytest.raises(ClassmoodError, match="region is not inside the screen"):
        open_source("screen:2500,0,100,100")


def test_capture_failures(fake_mss: type[FakeMSS]) -> None:
    fake_mss.options["fail_after"] = 0
    with pytest.raises(ClassmoodError, match="cannot capture screen:1: XGetImage"):
        open_source("screen")
    fake_mss.options["fail_after"] = 3  # the display goes away mid-session
    src = open_screen("screen", fps=200)
    assert len(list(src)) == 3 and src.truncated


def test_analyze_a_screen_session(fake_mss: type[FakeMSS], tmp_path: Path) -> None:
    frame, _ = gallery(rows=2, cols=3, face_px=80)
    fake_mss.options.update(picture=frame, fail_after=7)
    h, w = frame.shape[:2]
    args = ["analyze", f"screen:0,0,{w},{h}", "--out", str(tmp_path), "--rate", "0", "--min-faces", "1", "--annotate"]
    assert main(args) == 0
    import cv2

    cap = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 7  # every grab until the display went away
    text = (tmp_path / "summary.json").read_text()
    assert '"faces": 42' in text and '"truncated": true' in text
    assert (tmp_path / "report.html").is_file()


def start_xvfb(size: str = "320x240x24") -> tuple[subprocess.Popen[bytes], str]:
    """An Xvfb server on a display number it picks itself (``-displayfd``: no clash with a stale lock or
    another test's server), once it is ready to take connections."""
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", size, "-nolisten", "tcp"], pass_fds=(write,)
    )
    os.close(write)
    with os.fdopen(read) as fh:
        number = fh.readline().strip()  # written once the server accepts connections
    if not number:
        xvfb.kill()
        raise RuntimeError("Xvfb did not start")
    return xvfb, f":{number}"


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_real_capture_under_xvfb(monkeypatch: pytest.MonkeyPatch) -> None:
    xvfb, display = start_xvfb()
    try:
        monkeypatch.setenv("DISPLAY", display)
        deadline = time.monotonic() + 5
        while True:
            try:
                src = open_source("screen")
                break
            except ClassmoodError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        frames = list(itertools.islice(src, 2))
        assert [f.image.shape for f in frames] == [(240, 320, 3)] * 2
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=5)
