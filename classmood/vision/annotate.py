"""Drawing faces on frames: boxes, pseudonymous track ids and the apparent expression, and an mp4 writer.

``draw_detections`` is shared by ``classmood analyze --annotate`` and the live web app, so it is
cheap (one copy of the frame, a rectangle and one label per face) and sizes its lines and text
from each box: readable on a 640x480 webcam face and on the 60 px tiles of a 1080p gallery.

Each face's expression is a per-face thing: it is drawn only when asked for (``expressions``: the
app's per-face view, ``classmood analyze --per-track``); otherwise a box shows where a face was
found and its pseudonymous ``#id``, nothing about how it looks. ``HeldBoxes`` decides which
analysed faces are still drawn on the frames between two analyses: none after a cut or re-layout,
and none where the face has left.

``AnnotatedVideoWriter`` writes H.264 (``libx264`` through PyAV) in yuv420p with the index at the
front of the file, which is what browsers play. If PyAV or its ``libx264`` encoder is missing it
falls back to OpenCV's ``mp4v`` (MPEG-4 Part 2): always available in opencv-python wheels, but
most browsers will not play it, so it is a last resort that still opens in desktop players and
``cv2.VideoCapture``. Frames wider than ``max_width`` (1280) are downscaled before drawing and
encoding, which keeps encoding fast on 4K screen captures.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from classmood.containers import UNCERTAIN_WORD, Detections
from classmood.labels import EMOTIONS
from classmood.words import EXPRESSION_RGB  # one colour per expression: the boxes, the app and the report

UNCLASSIFIED_RGB = (230, 230, 230)
_BGR = [tuple(reversed(EXPRESSION_RGB[e])) for e in EMOTIONS]
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text_colour(bgr: tuple[int, ...]) -> tuple[int, int, int]:
    """Black on light label backgrounds, white on dark ones."""
    b, g, r = bgr[:3]
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def draw_detections(image: np.ndarray, dets: Detections, expressions: bool = True) -> np.ndarray:
    """A copy of the BGR ``image`` with each face's box, ``#id`` and (with ``expressions``) apparent expression.

    The box colour is the top expression's; faces not tracked or not classified yet get a light
    grey box and only the parts that are known, and faces too small or blurred to read are labelled
    ``uncertain`` on the same grey. Without ``expressions`` every box is the same light grey with
    its ``#id`` only. Boxes partly outside the frame are clipped.
    """
    if not expressions:
        dets = Detections(dets.xyxy, dets.score, dets.track_id)  # boxes and ids, nothing about the face
    out = image.copy()
    h, w = out.shape[:2]
    if len(dets) == 0 or h == 0 or w == 0:
        return out
    lim = 4 * max(h, w)  # keeps absurd coordinates from overflowing OpenCV's int maths
    for box, tid, probs, unsure in zip(dets.xyxy, dets.track_id, dets.probs, dets.uncertain, strict=True):
        if not np.isfinite(box).all():
            continue
        x1, y1, x2, y2 = (round(float(np.clip(v, -lim, lim))) for v in box)
        if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h or x2 <= x1 or y2 <= y1:
            continue
        side = min(x2 - x1, y2 - y1)
        thick = max(1, round(side / 40))
        parts = [f"#{int(tid)}"] if tid >= 0 else []
        colour: tuple[int, ...]
        if np.isfinite(probs).all() and unsure:
            colour = tuple(reversed(UNCLASSIFIED_RGB))
            parts.append(UNCERTAIN_WORD)
        elif np.isfinite(probs).all():
            k = int(np.argmax(probs))
            colour = _BGR[k]
            parts.append(f"{EMOTIONS[k]} {float(probs[k]) * 100:.0f}%")
        else:
            colour = tuple(reversed(UNCLASSIFIED_RGB))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA if thick > 1 else cv2.LINE_8)
        if not parts:
            continue
        text = " ".join(parts)
        scale = float(np.clip(side / 150, 0.38, 1.1))
        text_thick = 1 if scale < 0.75 else 2
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, text_thick)
        pad = max(2, round(th * 0.25))
        lh = th + base + pad
        # Above the box when there is room, else just inside its top edge; kept inside the frame.
        ty = y1 - lh if y1 - lh >= 0 else max(0, y1)
        ty = min(ty, h - lh)
        tx = int(np.clip(x1 - thick // 2, 0, max(0, w - tw - 2 * pad)))
        cv2.rectangle(out, (tx, ty), (tx + tw + 2 * pad, ty + lh), colour, cv2.FILLED)
        ink = _text_colour(colour)
        cv2.putText(out, text, (tx + pad, ty + th + pad // 2), _FONT, scale, ink, text_thick, cv2.LINE_AA)
    return out


class HeldBoxes:
    """The latest analysed faces, as drawn on the frames until the next analysis, minus those gone stale.

    Analyses run a few times a second; the frames between them show the last analysed boxes. After a
    cut, a re-layout or a screen share those boxes would sit on other people or on nothing (ghost
    boxes), and a face that left its tile would keep its box. So every held face is checked on each
    frame with the tracker's in-memory appearance cues: the whole frame must still correlate with the
    analysed one (``cut_correlation``, the tracker's cut rule), and the pixels in the box must still
    look like that face (``min_similarity``, the tracker's coasting rule); a face that fails is
    dropped until the next analysis. Nothing here is kept beyond the next analysed frame.
    """

    def __init__(self, min_similarity: float = 0.6, cut_correlation: float = 0.9) -> None:
        self.min_similarity, self.cut_correlation = min_similarity, cut_correlation
        self._dets = Detections.empty()
        self._signature: np.ndarray | None = None
        self._cues: tuple[np.ndarray, np.ndarray] | None = None

    def hold(self, image: np.ndarray, dets: Detections) -> Detections:
        """The faces of an analysed frame: drawn on it, and held for the frames after it; returns ``dets``."""
        from classmood.vision.appearance import describe, frame_signature

        self._dets = dets
        self._signature = frame_signature(image) if len(dets) else None
        self._cues = describe(image, dets.xyxy) if len(dets) else None
        return dets

    def on(self, image: np.ndarray) -> Detections:
        """The held faces still to draw on ``image``, a frame between two analyses."""
        from classmood.vision.appearance import describe, frame_signature, similarity

        if not len(self._dets) or self._signature is None or self._cues is None:
            return Detections.empty()
        if float(frame_signature(image) @ self._signature) < self.cut_correlation:
            self._dets, self._cues = Detections.empty(), None  # a cut or re-layout: every box is stale
            return self._dets
        thumbs, hists = describe(image, self._dets.xyxy)
        same = np.diag(similarity(self._cues[0], self._cues[1], thumbs, hists)) >= self.min_similarity
        if not same.all():
            self._dets = self._dets[same]
            self._cues = (self._cues[0][same], self._cues[1][same])
        return self._dets


def h264_available() -> bool:
    """Whether PyAV is installed with the ``libx264`` encoder (browser-playable mp4)."""
    try:
        import av

        av.codec.Codec("libx264", "w")
    except Exception:  # ImportError, or the encoder is not in this FFmpeg build
        return False
    return True


class AnnotatedVideoWriter:
    """Write frames to a browser-playable mp4; a context manager (``write(image)``, ``close()``).

    ``write(image, dets)`` draws ``dets`` (boxes in ``image``'s pixels) after any downscaling, so
    labels are sized for the output video. The frame size is fixed by the first frame; later
    frames of another size are resized to it. ``codec`` says what was used: ``"h264"`` or
    ``"mp4v"``.
    """

    def __init__(
        self, path: str | Path, fps: float, max_width: int = 1280, codec: str | None = None, expressions: bool = True
    ) -> None:
        self.path = Path(path)
        self.expressions = expressions  # draw each face's expression (the per-face view) or only its box and id
        self.fps = fps if 0 < fps < 1000 else 25.0
        self.max_width = max_width
        self.codec = codec or ("h264" if h264_available() else "mp4v")
        self.frames = 0
        self._size: tuple[int, int] | None = None  # output (width, height)
        self._container: Any = None
        self._stream: Any = None
        self._cv_writer: cv2.VideoWriter | None = None

    def __enter__(self) -> AnnotatedVideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open(self, width: int, height: int) -> None:
        scale = min(1.0, self.max_width / width)
        # yuv420p needs even dimensions
        w, h = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
        self._size = (w, h)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.codec == "h264":
            import av

            self._container = av.open(str(self.path), "w", options={"movflags": "+faststart"})
            stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"preset": "veryfast", "crf": "23"}
            self._stream = stream
        else:
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            self._cv_writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._cv_writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write an mp4v video here")

    def write(self, image: np.ndarray, dets: Detections | None = None) -> None:
        """Append one BGR uint8 frame, drawing ``dets`` on it if given."""
        ih, iw = image.shape[:2]
        if self._size is None:
            self._open(iw, ih)
        assert self._size is not None
        w, h = self._size
        if (iw, ih) != (w, h):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if w < iw else cv2.INTER_LINEAR)
            if dets is not None and len(dets):
                factor = np.array([w / iw, h / ih, w / iw, h / ih], np.float32)
                marks = dets.landmarks * factor[:2]
                dets = replace(dets, xyxy=dets.xyxy * factor, landmarks=marks)
        if dets is not None:
            image = draw_detections(image, dets, self.expressions)
        if self._stream is not None:
            import av

            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        elif self._cv_writer is not None:
            self._cv_writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Flush and finish the file (safe to call twice)."""
        if self._stream is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._stream = None
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._cv_writer is not None:
            self._cv_writer.release()
            self._cv_writer = None
