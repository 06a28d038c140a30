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
iterating. Screen capture lives in ``classmood.vision.screen``.
"""

from __future__ import annotations

import math
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from classmood.containers import Frame
from classmood.data.folders import IMAGE_SUFFIXES
from classmood.errors import ClassmoodError
from classmood.imageio import image_size, read_image, to_bgr8

VIDEO_SUFFIXES = {".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".y4m"}
MAX_BAD_FRAMES = 250  # consecutive failed webcam reads before the webcam counts as gone (10 s at 25 fps)
DECODER_DELAY = 32  # frames a decoder may still hold (reordering, frame threads) when its input stops


class VideoFile:
    """A video file's first video stream, read with PyAV (FFmpeg).

    What OpenCV's reader could not give: each frame's presentation timestamp whatever the frame
    rate (its ``CAP_PROP_POS_MSEC`` is right, but its seeking and frame count assume a constant
    rate), seeking by time, the length the container declares, and the packets the decoder
    refused (damage), each of which OpenCV silently skipped. Frames are decoded in presentation
    order and converted to BGR (turned upright per the stream's display matrix, as OpenCV did)
    only when asked for (``image``), so frames between analyses cost a decode, no conversion.
    """

    def __init__(self, path: str | Path) -> None:
        import av

        self.path = str(path)
        try:
            regular = stat.S_ISREG(Path(path).stat().st_mode)
        except (OSError, ValueError):
            raise ClassmoodError(f"{path}: no such file") from None
        if not regular:  # FFmpeg would wait on a FIFO forever
            raise ClassmoodError(f"{path}: not a regular file")
        try:
            self._container: Any = av.open(self.path, metadata_errors="ignore")
        except (av.FFmpegError, OSError, ValueError, UnicodeError):
            raise ClassmoodError(f"{path}: not a video or image classmood can decode") from None
        if not self._container.streams.video:
            self._container.close()
            raise ClassmoodError(f"{path}: no video stream in this file (audio only?)")
        self.stream = self._container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame and slice threads, as OpenCV's reader used
        rate = self.stream.average_rate or self.stream.guessed_rate
        fps = float(rate) if rate else 0.0
        self.fps = fps if 0 < fps < 1000 else 25.0  # nominal: a variable rate's average
        self._base = self.stream.time_base
        self._start = self.stream.start_time or 0
        self.duration_s, self.declared_frames = _declared_length(self._container, self.stream)
        self.errors: list[float] = []  # the time of every packet the decoder refused (a damaged frame)

    def close(self) -> None:
        self._container.close()

    def frames(self, begin_s: float = 0.0) -> Iterator[tuple[float, Any]]:
        """(time_s, PyAV frame) in presentation order, from the key frame at or before ``begin_s``.

        A packet the decoder refuses is counted in ``errors`` and passed over; a file that cannot
        be read on (cut, or damaged past what the demuxer can skip) ends the frames there.
        """
        import av

        if begin_s > 0 and self._base:
            try:
                self._container.seek(self._start + int(begin_s / self._base), stream=self.stream, backward=True)
            except (av.FFmpegError, OSError, ValueError, OverflowError):
                self._container.seek(self._start, stream=self.stream, backward=True)
        packets = self._container.demux(self.stream)
        previous: float | None = None
        ended = False
        while not ended:
            try:
                packet = next(packets)  # the last one is empty: it flushes the decoder
            except StopIteration:
                return
            except (av.FFmpegError, OSError):
                packet, ended = None, True  # the file cannot be read on: it ends here (truncated, see FrameSource)
            try:
                frames = self.stream.decode(packet)  # None: the frames the decoder still holds
            except (av.FFmpegError, ValueError):
                self.errors.append(self._packet_time(packet, previous))
                continue
            for frame in frames:
                previous = self._time(frame, previous)
                yield previous, frame

    def _time(self, frame: Any, previous: float | None) -> float:
        """A frame's presentation time in seconds from the stream's start.

        A timestamp that is missing, does not advance past the previous frame's (a stream without
        timestamps) or leaps far beyond the declared end (a damaged one) gives way to the previous
        time + 1/fps (0 for the first frame).
        """
        stamp = frame.pts
        if stamp is not None and self._base:
            time_s = float((stamp - self._start) * self._base)
            beyond = self.duration_s is not None and time_s > self.duration_s + 60.0
            if time_s >= 0 and (previous is None or time_s > previous) and not beyond:
                return time_s
        return 0.0 if previous is None else previous + 1.0 / self.fps

    def _packet_time(self, packet: Any, previous: float | None) -> float:
        """A refused packet's time: its own stamp where it has one, else the last frame's."""
        stamp = None if packet is None else packet.pts if packet.pts is not None else packet.dts
        if stamp is not None and self._base:
            return float((stamp - self._start) * self._base)
        return 0.0 if previous is None else previous

    @staticmethod
    def image(frame: Any) -> np.ndarray:
        """A decoded frame as upright 8-bit BGR."""
        image = frame.to_ndarray(format="bgr24")
        turns = round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4  # counter-clockwise quarter turns
        return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def _declared_length(container: Any, stream: Any) -> tuple[float | None, int | None]:
    """(duration in seconds, frame count) as the container declares them; None where it does not say
    (Matroska and WebM declare no frame count; a file cut before its header was finished may declare
    no duration)."""
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # av.time_base: microseconds
    valid = duration is not None and math.isfinite(duration) and duration > 0
    return (duration if valid else None), (int(stream.frames) or None)


@dataclass
class FrameSource:
    """An opened input. Iterate it for frames; ``fps`` is the input's (nominal) frame rate (1 for stills)."""

    name: str
    fps: float
    frame_count: int | None
    kind: str
    truncated: bool = field(default=False, init=False)
    skipped: int = field(default=0, init=False)  # damaged video frames or unreadable images passed over
    independent: bool = False  # unrelated photos: every image is a scene of its own
    _capture: cv2.VideoCapture | None = field(default=None, repr=False)  # a webcam
    _images: list[Path] = field(default_factory=list, repr=False)
    _video: VideoFile | None = field(default=None, repr=False)  # a video file
    _first: Iterator[tuple[float, Any]] | None = field(default=None, repr=False)  # its frames, the first one probed
    _live: Callable[[], Iterator[tuple[float, np.ndarray]]] | None = field(default=None, repr=False)  # (time_s, BGR)

    frames_read: int = field(default=0, init=False)  # input frames passed so far, wanted or not
    duration_s: float | None = None  # a video's length as its container declares it (None: not declared)
    declared_frames: int | None = None  # a video's frame count as its container declares it (MP4, AVI)
    ended_at_s: float | None = field(default=None, init=False)  # a truncated video: its last frame's time

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        """Release the video or webcam handle of a source that will not be read (iterating releases it too)."""
        if self._capture is not None:
            self._capture.release()
        if self._video is not None:
            self._video.close()

    def frames(self, want: Callable[[float], bool] | None = None) -> Iterator[Frame]:
        """The input's frames; with ``want``, only those whose time it accepts.

        Unwanted video frames are only decoded, not converted to BGR: at a 2 Hz analysis rate on
        10 fps 1080p video that skips 4 of 5 colour conversions. ``frames_read`` counts every
        input frame, for progress bars.
        """
        if self._live is not None:
            for index, (time_s, image) in enumerate(self._live()):
                self.frames_read = index + 1
                if want is None or want(time_s):
                    yield Frame(index, time_s, image)
            return
        if self._video is not None:
            yield from self._file_frames(self._video, want)
            return
        if self._capture is not None:
            yield from self._webcam_frames(self._capture, want)
            return
        for i, path in enumerate(self._images):
            self.frames_read = i + 1
            if want is None or want(i / self.fps):
                try:
                    image = read_image(path)
                except ClassmoodError:
                    if len(self._images) == 1:
                        raise
                    self.skipped += 1  # one unreadable image does not abort the folder
                    continue
                yield Frame(i, i / self.fps, image)

    def _file_frames(self, video: VideoFile, want: Callable[[float], bool] | None) -> Iterator[Frame]:
        """A video file's frames at their own times (see ``VideoFile``); how it ended is decided in ``_ended``.

        A frame's index is its place in the container: frames decoded plus packets refused before it.
        """
        frames, self._first = (self._first or video.frames()), None
        decoded, last, widest = 0, 0.0, 0.0
        try:
            for time_s, frame in frames:
                if decoded:
                    widest = max(widest, time_s - last)
                decoded, last = decoded + 1, time_s
                self.frames_read = decoded
                if want is None or want(time_s):
                    yield Frame(decoded - 1 + len(video.errors), time_s, video.image(frame))
        finally:
            video.close()
        self._ended(decoded, last, widest, video.errors)

    def _ended(self, decoded: int, last: float, widest: float, errors: list[float]) -> None:
        """After a video's last frame: did the file end early (truncated), or were frames damaged on the way?

        The container declares its duration and, in MP4 and AVI, its frame count (at the nominal
        rate, a second duration). Decoding that stopped well before the declared end - by more than
        twice the widest gap between two frames, and at least a second - is a file that ended early
        (a cut download or copy): ``truncated``, with ``ended_at_s``; the half packet at the cut is
        not damage. Otherwise every refused packet is a damaged frame, and so is every frame the
        container declares that never came (``skipped``). A variable-frame-rate file without a
        declared frame count (Matroska, WebM) is not guessed at.
        """
        if decoded == 0:
            return
        end = max(self.duration_s or 0.0, (self.declared_frames or 0) / self.fps)
        if last + max(1.0, 2 * widest, 2.0 / self.fps) < end:
            self.truncated = True
            self.ended_at_s = round(last, 3)
            self.skipped += sum(1 for t in errors if t < last - DECODER_DELAY / self.fps)
        else:
            self.skipped += max(len(errors), (self.declared_frames or 0) - decoded)

    def _webcam_frames(self, cap: cv2.VideoCapture, want: Callable[[float], bool] | None) -> Iterator[Frame]:
        """A webcam's frames at index / fps (its driver stamps them with wall-clock time); a long run of
        failed reads is a webcam that went away."""
        index, failures = 0, 0
        try:
            while failures <= MAX_BAD_FRAMES:
                ok, image = cap.read()
                if not ok or image is None:
                    failures += 1
                    continue
                failures = 0
                time_s = index / self.fps
                index += 1
                self.frames_read = index
                if want is None or want(time_s):
                    yield Frame(index - 1, time_s, to_bgr8(image))
        finally:
            cap.release()


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
    source = FrameSource(
        str(path),
        video.fps,
        video.declared_frames or _estimated_frames(video),
        "video",
        _video=video,
        duration_s=video.duration_s,
        declared_frames=video.declared_frames,
    )
    source._first = _chain(first, frames)
    return source


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
