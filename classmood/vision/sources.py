"""Frame sources: an image, a folder of images, a video file, a webcam or the screen, as one iterator of frames.

Every source yields ``Frame``s (0-based index in the input, time in seconds, 8-bit BGR image).
Problems a user can cause (missing, empty, undecodable or truncated input; absent webcam) raise
a one-line ``ClassmoodError`` before the first frame, or end the stream early with
``truncated`` set after frames were read, so whatever was analysed stays usable. Live sources
(webcam, screen) never end by themselves; the caller stops iterating. Screen capture lives in
``classmood.vision.screen``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from classmood.data.folders import IMAGE_SUFFIXES
from classmood.errors import ClassmoodError
from classmood.imageio import read_image, to_bgr8

VIDEO_SUFFIXES = {".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".y4m"}


@dataclass
class Frame:
    index: int
    time_s: float
    image: np.ndarray  # H x W x 3 uint8 BGR


@dataclass
class FrameSource:
    """An opened input. Iterate it for frames; ``fps`` is the input's frame rate (1 for stills)."""

    name: str
    fps: float
    frame_count: int | None
    kind: str
    truncated: bool = field(default=False, init=False)
    _capture: cv2.VideoCapture | None = field(default=None, repr=False)
    _images: list[Path] = field(default_factory=list, repr=False)
    _first: np.ndarray | None = field(default=None, repr=False)  # already decoded while probing the file
    _live: Callable[[], Iterator[tuple[float, np.ndarray]]] | None = field(default=None, repr=False)  # (time_s, BGR)

    frames_read: int = field(default=0, init=False)  # input frames passed so far, wanted or not

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        """Release the video or webcam handle of a source that will not be read (iterating releases it too)."""
        if self._capture is not None:
            self._capture.release()

    def frames(self, want: Callable[[float], bool] | None = None) -> Iterator[Frame]:
        """The input's frames; with ``want``, only those whose time it accepts.

        Unwanted video frames are only grabbed, not converted to BGR: at a 2 Hz analysis rate on
        10 fps 1080p video that skips 4 of 5 colour conversions (measured: 15 ms per read() vs
        1.3 ms per grab()). ``frames_read`` counts every input frame, for progress bars.
        """
        if self._live is not None:
            for index, (time_s, image) in enumerate(self._live()):
                self.frames_read = index + 1
                if want is None or want(time_s):
                    yield Frame(index, time_s, image)
            return
        if self._capture is None:
            for i, path in enumerate(self._images):
                self.frames_read = i + 1
                if want is None or want(i / self.fps):
                    yield Frame(i, i / self.fps, read_image(path))
            return
        cap, index = self._capture, 0
        try:
            while True:
                time_s = index / self.fps
                if self._first is not None:
                    image, self._first = self._first, None
                elif want is None or want(time_s):
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
                else:
                    if not cap.grab():
                        break
                    index += 1
                    self.frames_read = index
                    continue
                index += 1
                self.frames_read = index
                if want is None or want(time_s):
                    yield Frame(index - 1, time_s, to_bgr8(image))
        finally:
            cap.release()
        if self.kind == "video" and self.frame_count and index < self.frame_count - 1:
            self.truncated = True


def open_source(spec: str | Path) -> FrameSource:
    """``webcam:N``, ``screen``/``screen:N``/``screen:X,Y,W,H``, an image file, a folder of images, or a video file."""
    text = str(spec)
    if text == "screen" or text.startswith("screen:"):
        from classmood.vision.screen import open_screen

        return open_screen(text)
    if text.startswith("webcam"):
        device = int(text.split(":", 1)[1]) if ":" in text else 0
        cap = cv2.VideoCapture(device)
        if not cap.isOpened():
            raise ClassmoodError(f"webcam {device} is not available")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        return FrameSource(f"webcam:{device}", fps, None, "webcam", _capture=cap)
    path = Path(text)
    if not path.exists():
        raise ClassmoodError(f"{path}: no such file or folder")
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ClassmoodError(f"{path}: no images in this folder")
        return FrameSource(str(path), 1.0, len(images), "images", _images=images)
    if path.stat().st_size == 0:
        raise ClassmoodError(f"{path}: empty file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        read_image(path)  # fail now, not mid-stream
        return FrameSource(str(path), 1.0, 1, "image", _images=[path])
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ClassmoodError(f"{path}: not a video or image OpenCV can decode")
    ok, first = cap.read()
    if not ok or first is None:
        cap.release()
        raise ClassmoodError(f"{path}: no decodable frames (corrupt or truncated video?)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if 0 < fps < 1000 else 25.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    return FrameSource(str(path), fps, count, "video", _capture=cap, _first=first)
