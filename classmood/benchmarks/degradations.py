"""What a video call does to a face, applied to 48x48 grey FER2013 crops (NumPy, OpenCV, PyAV; no PyTorch).

Real video-call faces are small (often under 48 px), soft, noisy, dim, low in contrast and coded
at a few hundred kbit/s; hands, masks and microphones cover part of them and heads turn. Each
function here takes ``(N, 48, 48)`` uint8 faces and returns degraded faces of the same shape, the
way the pipeline would see them: reduced to the size the face had in the call and enlarged back
to 48 px by the same interpolation ``vision/crops.py`` uses. The codecs are the real ones (OpenCV's
JPEG, libx264 through PyAV), so the benchmark does not share code with the training augmentation
it judges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

SIZE = 48
Faces = np.ndarray  # (N, 48, 48) uint8


def _each(faces: Faces, fn: Callable[[np.ndarray, int], np.ndarray]) -> Faces:
    out = np.empty_like(faces)
    for i, f in enumerate(faces):
        out[i] = np.clip(fn(f, i), 0, 255)
    return out


def resize_through(face: np.ndarray, px: int) -> np.ndarray:
    """The face as it looks when it was ``px`` pixels wide in the frame and the crop enlarged it to 48."""
    small = cv2.resize(face, (px, px), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


def downscale(faces: Faces, px: int) -> Faces:
    return _each(faces, lambda f, _: resize_through(f, px))


def gaussian_blur(faces: Faces, sigma: float) -> Faces:
    return _each(faces, lambda f, _: cv2.GaussianBlur(f, (0, 0), sigma))


def motion_blur(faces: Faces, length: int, rng: np.random.Generator) -> Faces:
    """A straight motion streak of ``length`` px in a random direction per face (head or camera motion)."""
    angles = rng.uniform(0, 180, len(faces))

    def one(f: np.ndarray, i: int) -> np.ndarray:
        k = np.zeros((length, length), np.float32)
        k[length // 2, :] = 1
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), float(angles[i]), 1.0)
        k = np.asarray(cv2.warpAffine(k, rot, (length, length)), np.float32)
        return cv2.filter2D(f, -1, k / max(k.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)

    return _each(faces, one)


def jpeg(faces: Faces, quality: int, px: int = SIZE) -> Faces:
    """JPEG at ``quality``, coded at the face's size in the frame (``px``), then enlarged to 48."""

    def one(f: np.ndarray, _: int) -> np.ndarray:
        small = cv2.resize(f, (px, px), interpolation=cv2.INTER_AREA) if px != SIZE else f
        _, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        dec = np.asarray(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE))
        return np.asarray(cv2.resize(dec, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)) if px != SIZE else dec

    return _each(faces, one)


def noise(faces: Faces, sigma: float, rng: np.random.Generator) -> Faces:
    return np.clip(faces + rng.normal(0, sigma, faces.shape), 0, 255).astype(np.uint8)


def low_light(faces: Faces, gain: float, rng: np.random.Generator) -> Faces:
    """A dim room: exposure ``gain``, a darkening gamma, then the sensor noise a dim image carries."""
    x = 255 * (faces / 255.0) ** 1.4 * gain
    return np.clip(x + rng.normal(0, 4, faces.shape), 0, 255).astype(np.uint8)


def low_contrast(faces: Faces, factor: float) -> Faces:
    """Flat light or a washed-out webcam: contrast scaled by ``factor`` around each face's mean."""
    x = faces.astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return np.clip((x - mean) * factor + mean, 0, 255).astype(np.uint8)


def colour_cast(faces: Faces, bgr_gain: tuple[float, float, float]) -> Faces:
    """A warm or cold white balance, applied in colour, then turned grey the way the pipeline does."""

    def one(f: np.ndarray, _: int) -> np.ndarray:
        bgr = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR).astype(np.float32) * np.array(bgr_gain, np.float32)
        return cv2.cvtColor(np.clip(bgr, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)

    return _each(faces, one)


def occlude(faces: Faces, kind: str, rng: np.random.Generator) -> Faces:
    """Cover part of each face: ``mask`` (a pale mask from the nose down), ``hand`` (a hand over
    mouth, chin or cheek) or ``mic`` (a dark headset microphone at the mouth)."""

    def one(f: np.ndarray, i: int) -> np.ndarray:
        g = f.copy()
        if kind == "mask":
            top = int(rng.uniform(25, 30))
            shade = float(rng.uniform(170, 235))
            pts = np.array([[6, top], [42, top], [40, 41], [30, 47], [18, 47], [8, 41]], np.int32)
            cv2.fillPoly(g, [pts], shade, lineType=cv2.LINE_AA)
            cv2.line(g, (6, top + 5), (42, top + 5), shade - 25, 1, cv2.LINE_AA)  # pleat
        elif kind == "hand":
            cx, cy = int(rng.uniform(14, 34)), int(rng.uniform(34, 44))
            skin = float(np.clip(np.median(f[16:40, 12:36]) + rng.uniform(-20, 20), 40, 230))
            cv2.ellipse(
                g,
                (cx, cy),
                (int(rng.uniform(10, 14)), int(rng.uniform(7, 10))),
                rng.uniform(-30, 30),
                0,
                360,
                skin,
                -1,
                cv2.LINE_AA,
            )
            for k in range(3):  # finger gaps
                x = cx - 6 + 5 * k
                cv2.line(g, (x, cy - 6), (x, cy + 3), skin - 30, 1, cv2.LINE_AA)
        elif kind == "mic":
            y = int(rng.uniform(36, 42))
            x = int(rng.uniform(18, 30))
            cv2.line(g, (0, y - 6), (x, y), 35.0, 2, cv2.LINE_AA)
            cv2.ellipse(g, (x, y), (5, 4), 0, 0, 360, 25.0, -1, cv2.LINE_AA)
        else:
            raise ValueError(f"unknown occlusion {kind!r}")
        return g

    return _each(faces, one)


def head_pose(faces: Faces, yaw_deg: float, pitch_deg: float, rng: np.random.Generator) -> Faces:
    """A face turned by ``yaw_deg`` / ``pitch_deg`` (random sign): the crop as a plane rotated about its
    centre and seen in perspective from about an arm's length (3 face widths)."""
    half, dist = SIZE / 2, 3 * SIZE
    corners = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], np.float64)
    src = (corners[:, :2] + half).astype(np.float32)
    signs = rng.choice([-1.0, 1.0], size=(len(faces), 2))

    def one(f: np.ndarray, i: int) -> np.ndarray:
        yaw, pitch = np.radians(yaw_deg * signs[i, 0]), np.radians(pitch_deg * signs[i, 1])
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        p = corners @ (ry @ rx).T
        dst = (p[:, :2] * dist / (dist + p[:, 2:3]) + half).astype(np.float32)
        h = cv2.getPerspectiveTransform(src, dst)
        return cv2.warpPerspective(f, h, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE)

    return _each(faces, one)


def through_h264(
    frames: list[np.ndarray], kbps: float, rng: np.random.Generator, fps: int = 15, hold: int = 4, noise: float = 2.0
) -> list[np.ndarray]:
    """Each BGR frame held ``hold`` frames with fresh sensor noise (a still class still flickers), coded
    with libx264 at ``kbps`` as a call is, and the last decoded frame of each hold returned, so the
    faces carry the P-frame quality a steady call shows rather than the first frame's. In memory."""
    import io

    import av

    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = int(kbps * 1000)
        stream.options = {"preset": "veryfast", "tune": "zerolatency"}
        for f in frames:
            for _ in range(hold):
                noisy = np.clip(f + rng.normal(0, noise, f.shape), 0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    with av.open(buf, mode="r") as container:
        decoded = container.decode(video=0)
        return [fr.to_ndarray(format="bgr24") for i, fr in enumerate(decoded) if i % hold == hold - 1]


def h264(
    faces: Faces, px: int, kbps_per_face: float, rng: np.random.Generator, frame_wh: tuple[int, int] = (640, 368)
) -> Faces:
    """Faces ``px`` wide tiled into ``frame_wh`` frames and sent through ``through_h264``.

    The bitrate is set per face: a 640x360 call at 400-600 kbit/s showing 9-25 people spends about
    20-60 kbit/s on each person, so ``kbps_per_face`` times the faces in a mosaic is what its
    frame gets (the faces fill the mosaic, so a frame-level call bitrate would starve them).
    """
    w, h = frame_wh
    cols, rows = w // px, h // px
    per = cols * rows
    mosaics = []
    for start in range(0, len(faces), per):
        mosaic = np.full((h, w), 60, np.uint8)
        for j, f in enumerate(faces[start : start + per]):
            r, c = divmod(j, cols)
            mosaic[r * px : (r + 1) * px, c * px : (c + 1) * px] = cv2.resize(f, (px, px), interpolation=cv2.INTER_AREA)
        mosaics.append(cv2.cvtColor(mosaic, cv2.COLOR_GRAY2BGR))
    decoded = through_h264(mosaics, kbps_per_face * per, rng)
    out = np.empty_like(faces)
    for k, start in enumerate(range(0, len(faces), per)):
        grey = cv2.cvtColor(decoded[k], cv2.COLOR_BGR2GRAY)
        for j in range(min(per, len(faces) - start)):
            r, c = divmod(j, cols)
            tile = grey[r * px : (r + 1) * px, c * px : (c + 1) * px]
            out[start + j] = cv2.resize(tile, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    return out


def call(faces: Faces, rng: np.random.Generator, px: int = 32, kbps_per_face: float = 25) -> Faces:
    """The composite of a typical gallery call: a soft, flat, noisy webcam face ``px`` wide, coded by H.264."""
    soft = gaussian_blur(low_contrast(faces, 0.7), 0.8)
    return h264(noise(soft, 3.0, rng), px=px, kbps_per_face=kbps_per_face, rng=rng)


@dataclass(frozen=True)
class Condition:
    name: str
    group: str  # size | blur | codec | light | cover | pose | call
    apply: Callable[[Faces, np.random.Generator], Faces]


CONDITIONS: tuple[Condition, ...] = (
    Condition("clean", "clean", lambda x, r: x),
    Condition("size 40 px", "size", lambda x, r: downscale(x, 40)),
    Condition("size 32 px", "size", lambda x, r: downscale(x, 32)),
    Condition("size 24 px", "size", lambda x, r: downscale(x, 24)),
    Condition("size 16 px", "size", lambda x, r: downscale(x, 16)),
    Condition("blur 1.0 px", "blur", lambda x, r: gaussian_blur(x, 1.0)),
    Condition("blur 1.5 px", "blur", lambda x, r: gaussian_blur(x, 1.5)),
    Condition("motion blur 5 px", "blur", lambda x, r: motion_blur(x, 5, r)),
    Condition("JPEG q30 at 32 px", "codec", lambda x, r: jpeg(x, 30, px=32)),
    Condition("H.264 40 px, 30 kbps/face", "codec", lambda x, r: h264(x, 40, 30, r)),
    Condition("H.264 32 px, 15 kbps/face", "codec", lambda x, r: h264(x, 32, 15, r)),
    Condition("noise 8", "light", lambda x, r: noise(x, 8.0, r)),
    Condition("low light", "light", lambda x, r: low_light(x, 0.45, r)),
    Condition("low contrast 0.4", "light", lambda x, r: low_contrast(x, 0.4)),
    Condition("colour cast", "light", lambda x, r: colour_cast(x, (0.75, 1.0, 1.3))),
    Condition("mask", "cover", lambda x, r: occlude(x, "mask", r)),
    Condition("hand", "cover", lambda x, r: occlude(x, "hand", r)),
    Condition("microphone", "cover", lambda x, r: occlude(x, "mic", r)),
    Condition("yaw 25", "pose", lambda x, r: head_pose(x, 25, 0, r)),
    Condition("pitch 15", "pose", lambda x, r: head_pose(x, 0, 15, r)),
    Condition("call 32 px (soft, H.264)", "call", lambda x, r: call(x, r)),
    Condition("call 24 px (soft, H.264)", "call", lambda x, r: call(x, r, px=24, kbps_per_face=15)),
)
