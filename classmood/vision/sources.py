"""Frame sources: an image, a folder of images, a video file, a webcam or the screen, as one iterator of frames.

Every source yields ``Frame``s (0-based index in the input, time in seconds, 8-bit BGR image).
Problems a user can cause (missing, empty, undecodable input; a FIFO or device; absent webcam)
raise a one-line ``ClassmoodError`` before the first frame. Video files are read with PyAV
(FFmpeg, ``VideoFile``): every frame is timed by its own timestamp, so variable-frame-rate
recordings (Zoom, OBS) keep their real times. A file that stops before the length its container
declares (a cut download or copy) ends the stream with ``truncated`` set, so whatever was
analysed stays usable; frames the decoder refuses on the way (damage) are skipped and counted
(``skipped``), like unreadable images in a folder. A folder of unrelated photos is
``independent`` (no face is followed from one photo to the next); numbered frames of one
sequence are not. Live sources (webcam, screen) never end by themselves; the caller stops
iterating. Screen capture lives in ``classmood.vision.screen``, ``FrameSource`` and the video reader
in ``classmood.vision.frame_source``.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2

from classmood.data.folders import IMAGE_SUFFIXES
from classmood.errors import ClassmoodError
from classmood.imageio import image_size, read_image
from classmood.vision.frame_source import FrameSource, VideoFile

VIDEO_SUFFIXES = {".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".y4m"}


def _is_sequence(images: list[Path]) -> bool:
    """Numbered frames of one recording (``frame_0001.png``, ``frame_0002.png``, ...) rather than separate photos.

    One name stem with consecutive numbers and one image size; anything else (holiday photos,
    a folder of portraits) is analysed photo by photo.
    """
    if len(images) < 2:
        return False
    parts = [re.fullmatch(r"(.*?)(\d+)", p.stem) for p in images]
    if any(m is None for m in parts):
        return False
    stems = {(m.group(1), p.suffix.lower()) for m, p in zip(parts, images, strict=True) if m is not None}
    numbers = sorted(int(m.group(2)) for m in parts if m is not None)
    if len(stems) != 1 or numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        return False
    try:
        sizes = {image_size(p) for p in images[:: max(1, len(images) // 20)]}
    except ClassmoodError:
        return False
    return len(sizes) == 1 and None not in sizes


def open_source(spec: str | Path) -> FrameSource:
    """``webcam:N``, ``screen``/``screen:N``/``screen:X,Y,W,H``, an image file, a folder of images, or a video file."""
    text = str(spec)
    if text == "screen" or text.startswith("screen:"):
        from classmood.vision.screen import open_screen

        return open_screen(text)
    if text == "webcam" or text.startswith("webcam:"):
        number = text.split(":", 1)[1] if ":" in text else "0"
        if not number.isdigit() or len(number) > 4:
            raise ClassmoodError(f"{text}: a webcam is webcam or webcam:N with N a device number (0, 1, ...)")
        device = int(number)
        cap = cv2.VideoCapture(device)
        if not cap.isOpened():
            raise ClassmoodError(f"webcam {device} is not available")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if 0 < fps < 1000 else 30.0
        return FrameSource(f"webcam:{device}", fps, None, "webcam", _capture=cap)
    path = Path(text)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ClassmoodError(f"{path}: no such file or folder") from None
    except (OSError, ValueError) as exc:  # a link loop, a folder on the way without permission, a NUL in the name
        raise ClassmoodError(f"{path}: cannot open ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        images = _folder_images(path)
        if not images:
            raise ClassmoodError(f"{path}: no images in this folder")
        return FrameSource(str(path), 1.0, len(images), "images", _images=images, independent=not _is_sequence(images))
    if not stat.S_ISREG(info.st_mode):
        # a FIFO or socket would block the first read forever; a device is not a recording
        raise ClassmoodError(f"{path}: not a regular file ({_file_kind(info.st_mode)}); give a video, image or folder")
    if info.st_size == 0:
        raise ClassmoodError(f"{path}: empty file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        read_image(path)  # fail now, not mid-stream
        return FrameSource(str(path), 1.0, 1, "image", _images=[path])
    video = VideoFile(path)
    frames = video.frames()
    try:
        first = next(frames)
    except StopIteration:
        video.close()
        raise ClassmoodError(f"{path}: no decodable frames (corrupt or truncated video?)") from None
    return FrameSource(
        str(path),
        video.fps,
        video.declared_frames or _estimated_frames(video),
        "video",
        _video=video,
        duration_s=video.duration_s,
        declared_frames=video.declared_frames,
        _first=_chain(first, frames),
    )


def _chain(first: tuple[float, Any], rest: Iterator[tuple[float, Any]]) -> Iterator[tuple[float, Any]]:
    yield first
    yield from rest


def _estimated_frames(video: VideoFile) -> int | None:
    """A frame count for progress bars where the container declares none: its duration at the nominal rate."""
    if video.duration_s is None:
        return None
    return round(video.duration_s * video.fps) or None


def container_length(path: str | Path) -> tuple[float | None, int | None]:
    """(duration in seconds, frame count) of a video as its container declares them (see ``VideoFile``);
    (None, None) for a file PyAV cannot open."""
    try:
        video = VideoFile(path)
    except ClassmoodError:
        return None, None
    video.close()
    return video.duration_s, video.declared_frames


def _folder_images(folder: Path) -> list[Path]:
    """The folder's images: regular files (or links to them) with an image suffix, sorted by name.

    A FIFO, socket or device named like an image would block or never end when read; they are
    left out like any other file that is not an image.
    """
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise ClassmoodError(f"{folder}: cannot list this folder ({exc.strerror or exc})") from None
    images = []
    for p in entries:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            if stat.S_ISREG(p.stat().st_mode):
                images.append(p)
        except OSError:
            continue  # a broken link, a link loop: not an image
    return images


def _file_kind(mode: int) -> str:
    for test, word in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device")):
        if test(mode):
            return word
    return "a block device" if stat.S_ISBLK(mode) else "not a file"
