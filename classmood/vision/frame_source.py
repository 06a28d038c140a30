"""An opened input as one iterator of frames (``FrameSource``), and the video-file reader under it (``VideoFile``).

``vision/sources.py`` opens what the user named (a file, a folder, a webcam) and ``vision/screen.py``
a screen; both hand back a ``FrameSource``, which lives here so that neither imports the other. A
live source (a screen, the soak benchmark's gallery) is a ``live`` callable: given the source, it
yields (time, BGR image) until its consumer stops or it sets ``truncated`` and ends.
"""

from __future__ import annotations

import math
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from classmood.containers import Frame
from classmood.errors import ClassmoodError
from classmood.imageio import read_image, to_bgr8

MAX_BAD_FRAMES = 250  # consecutive failed webcam reads before the webcam counts as gone (10 s at 25 fps)
DECODER_DELAY = 32  # frames a decoder may still hold (reordering, frame threads) when its input stops


def declared_length_s(duration_s: float | None, declared_frames: int | None, fps: float) -> float:
    """A video's length as its container declares it: the longer of the declared duration and the
    declared frame count at the nominal rate. The two agree for a constant frame rate, and either
    may be missing or short (an AVI cut before its index declares a short duration, a Matroska file
    no frame count)."""
    return max(duration_s or 0.0, (declared_frames or 0) / fps)


def stopped_early(last_s: float, widest_gap_s: float, fps: float, end_s: float) -> bool:
    """Did decoding that reached ``last_s`` stop well before ``end_s``: by more than twice the widest gap
    between two frames, and at least a second and two frames? Then the file ended early (a cut
    download or copy) and what is missing is not damage. The rule for whole files and chunks alike."""
    return last_s + max(1.0, 2 * widest_gap_s, 2.0 / fps) < end_s


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

    @property
    def length_s(self) -> float:
        """The declared length in seconds (``declared_length_s``; 0 when the container says nothing)."""
        return declared_length_s(self.duration_s, self.declared_frames, self.fps)

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
    # a live source's frames as (time_s, BGR), given the source (to set ``truncated`` when it goes away)
    live: Callable[[FrameSource], Iterator[tuple[float, np.ndarray]]] | None = field(default=None, repr=False)

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
        if self.live is not None:
            for index, (time_s, image) in enumerate(self.live(self)):
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
        if stopped_early(last, widest, self.fps, declared_length_s(self.duration_s, self.declared_frames, self.fps)):
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
