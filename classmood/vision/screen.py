"""Screen capture as a live frame source (``screen``, ``screen:N``, ``screen:X,Y,W,H``), via mss.

For analysing a video call as it happens: the whole primary monitor (``screen``), monitor ``N``
as mss numbers them (``screen:N``; 1 is the primary, 0 all monitors together) or a region in
screen pixels (``screen:X,Y,W,H``, e.g. the call window). Frames come at most ``fps`` times a
second (the capture sleeps, never bursts), until the caller stops iterating; ``time_s`` is
monotonic-clock time since the first grab. Screenshots are BGRA; frames are 8-bit BGR.

Problems (no display, no such monitor, a region off the screen, a malformed spec) raise a
one-line ``ClassmoodError`` when the source is opened, before the first frame: opening grabs one
test frame. Each iteration opens its own mss handle, so a source opened in one thread can be
read in another (X11 handles do not like to cross threads).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from classmood.errors import ClassmoodError, one_line
from classmood.vision.frame_source import FrameSource

DEFAULT_FPS = 10.0
USAGE = "screen, screen:N (monitor N; 1 = primary, 0 = all) or screen:X,Y,W,H (a region in pixels)"


@dataclass(frozen=True)
class ScreenSpec:
    """What to capture: monitor ``monitor`` (mss index), or ``region`` (left, top, width, height)."""

    monitor: int | None = 1
    region: tuple[int, int, int, int] | None = None

    @property
    def name(self) -> str:
        if self.region is not None:
            return "screen:" + ",".join(map(str, self.region))
        return f"screen:{self.monitor}"


def parse_screen_spec(spec: str) -> ScreenSpec:
    """``screen`` -> primary monitor; ``screen:N`` -> monitor N; ``screen:X,Y,W,H`` -> region."""
    text = spec.strip()
    if text == "screen":
        return ScreenSpec(1)
    if not text.startswith("screen:"):
        raise ClassmoodError(f"{spec!r} is not a screen source; use {USAGE}")
    try:
        nums = [int(p) for p in text[len("screen:") :].split(",")]
    except ValueError:
        raise ClassmoodError(f"{spec!r}: expected {USAGE}") from None
    if len(nums) == 1 and nums[0] >= 0:
        return ScreenSpec(nums[0])
    if len(nums) == 4:
        x, y, w, h = nums
        if w <= 0 or h <= 0:
            raise ClassmoodError(f"{spec!r}: region width and height must be positive")
        return ScreenSpec(None, (x, y, w, h))
    raise ClassmoodError(f"{spec!r}: expected {USAGE}")


def _xerror() -> type[BaseException]:
    """mss's X11 connection error class where it has one (mss >= 10), else a class nothing raises."""
    try:
        from mss.linux.xcbhelpers import XError

        return XError
    except ImportError:
        return _NeverRaised


class _NeverRaised(Exception):
    pass


def _new_mss() -> Any:
    import mss

    factory = getattr(mss, "MSS", None) or mss.mss  # mss >= 10.2 deprecates mss.mss()
    return factory()


def _to_bgr(shot: Any) -> np.ndarray:
    """An mss screenshot (BGRA) as a contiguous H x W x 3 uint8 BGR array."""
    image = np.asarray(shot)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image, dtype=np.uint8)


def _area(spec: ScreenSpec, monitors: list[dict[str, int]]) -> dict[str, int]:
    if spec.region is None:
        n = int(spec.monitor or 0)
        if n >= len(monitors):
            have = len(monitors) - 1
            raise ClassmoodError(f"{spec.name}: no monitor {n} (this display has {have}; 0 = all of them together)")
        m = monitors[n]
        return {"left": m["left"], "top": m["top"], "width": m["width"], "height": m["height"]}
    x, y, w, h = spec.region
    if monitors:
        a = monitors[0]  # the bounding box of all monitors
        if x < a["left"] or y < a["top"] or x + w > a["left"] + a["width"] or y + h > a["top"] + a["height"]:
            raise ClassmoodError(
                f"{spec.name}: region is not inside the screen ({a['width']}x{a['height']} at {a['left']},{a['top']})"
            )
    return {"left": x, "top": y, "width": w, "height": h}


def open_screen(spec: str = "screen", fps: float = DEFAULT_FPS) -> FrameSource:
    """Open a screen-capture source (see the module docstring); fails now if nothing can be captured."""
    parsed = parse_screen_spec(spec)
    try:
        from mss import ScreenShotError
    except ImportError as exc:
        raise ClassmoodError(f"screen capture needs mss: pip install mss ({exc})") from None
    # mss's X11 backend raises its own XError (not a ScreenShotError) when the display refuses the connection
    errors = (ScreenShotError, OSError, RuntimeError, ValueError, _xerror())
    try:
        sct = _new_mss()
        monitors = list(sct.monitors)
    except errors as exc:
        raise ClassmoodError(f"cannot capture the screen: no display ({one_line(exc)})") from None
    try:
        area = _area(parsed, monitors)
        _to_bgr(sct.grab(area))  # fail now, not mid-stream
    except errors as exc:
        raise ClassmoodError(f"cannot capture {parsed.name}: {one_line(exc)}") from None
    finally:
        sct.close()
    return FrameSource(parsed.name, float(fps), None, "screen", live=partial(_capture, area=area, fps=fps))


def _capture(source: FrameSource, area: dict[str, int], fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """Grab ``area`` at most ``fps`` times a second until the consumer stops (or the display goes away)."""
    from mss import ScreenShotError

    interval = 1.0 / fps if fps > 0 else 0.0
    try:
        sct = _new_mss()
    except (ScreenShotError, OSError, RuntimeError, _xerror()):
        source.truncated = True  # the display went away between opening and capturing
        return
    try:
        start = due = time.monotonic()
        while True:
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
                now = time.monotonic()
            due = max(due + interval, now)  # a slow consumer lowers the rate; it never causes a burst
            try:
                shot = sct.grab(area)
            except (ScreenShotError, OSError, _xerror()):
                source.truncated = True  # display closed or monitor unplugged: keep what was analysed
                return
            yield now - start, _to_bgr(shot)
    finally:
        sct.close()
