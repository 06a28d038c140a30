"""Clutter benchmark (``classmood bench --clutter``): does every box that reaches the classifier hold a real face?

Builds screenshots of a video call (1280x720, as a teacher's screen share shows it): a gallery of
1 to 36 participant tiles and, around it, what real calls put next to faces: a chat and participants
panel with tiny avatars and text, a toolbar with logos and icons, tiles with patterned wallpaper,
lamps, bookshelves, posters (some showing a face, some a cat or a rocket), tiles with the camera
off, masks, hands and microphones over faces, and the JPEG coding of a screen capture.
Participants are cut from real photographs that ship in the wheels we install (NASA's astronaut
Eileen Collins and the cameraman from scikit-image, Grace Hopper from matplotlib; all public
domain or free of known restrictions), varied in size, position, mirror, light and colour.

Truth: each participant's face box. Faces on posters are marked "ignore" (a single frame cannot
tell a printed face from a person: neither counted as found nor as a false alarm); chat avatars
and everything else are not faces to read. A box counts as a hit at IoU >= 0.3 with a free truth
box; every other box, duplicates included, is a false positive. Scenes are generated from seeds:
``tune`` seeds for choosing thresholds, ``test`` seeds for the reported figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import cv2
import numpy as np

from classmood.containers import Detections

W, H = 1280, 720
GALLERY = (0, 44, 1010, 720)  # x1, y1, x2, y2 of the participant grid
LAYOUTS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6))
TUNE_SEEDS = range(0, 60)
TEST_SEEDS = range(1000, 1120)


@dataclass
class Scene:
    image: np.ndarray
    faces: np.ndarray  # (N, 4) participant face boxes
    occluded: np.ndarray  # (N,) bool: mask, hand or microphone over the face
    ignore: np.ndarray  # (M, 4) faces on posters
    layout: tuple[int, int]
    notes: dict[str, int] = field(default_factory=dict)


@cache
def _photos() -> list[tuple[np.ndarray, np.ndarray]]:
    """(BGR photo, its face box) for each real portrait shipped in our wheels."""
    import matplotlib.cbook
    import skimage.data

    from classmood.imageio import read_image

    hopper = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    camera = cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2BGR)
    # face boxes as libfacedetection frames them at full resolution (checked by eye)
    return [
        (astronaut, np.array([178, 63, 267, 175], np.float32)),
        (camera, np.array([195, 113, 255, 193], np.float32)),
        (hopper, np.array([182, 121, 353, 332], np.float32)),
    ]


@cache
def _clutter_images() -> dict[str, np.ndarray]:
    import skimage.data

    def bgr(a: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(a, cv2.COLOR_GRAY2BGR if a.ndim == 2 else cv2.COLOR_RGB2BGR)

    lfw = np.load(f"{skimage.data.__path__[0]}/lfw_subset.npy")[:100]  # 100 real faces, 25x25
    return {
        "brick": bgr(skimage.data.brick()),
        "grass": bgr(skimage.data.grass()),
        "gravel": bgr(skimage.data.gravel()),
        "coffee": bgr(skimage.data.coffee()),
        "chelsea": bgr(skimage.data.chelsea()),
        "rocket": bgr(skimage.data.rocket()),
        "logo": bgr(skimage.data.logo()[..., :3]),
        "text": bgr(skimage.data.text()),
        "page": bgr(skimage.data.page()),
        "avatars": (lfw * 255).astype(np.uint8),
    }


def _wallpaper(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    kind = rng.choice(["plain", "brick", "grass", "gravel", "coffee", "shelf", "pattern", "page"])
    clutter = _clutter_images()
    if kind == "plain":
        return np.full((h, w, 3), rng.integers(30, 230, 3), np.uint8)
    if kind == "shelf":
        out = np.full((h, w, 3), rng.integers(40, 120, 3), np.uint8)
        x = 0
        while x < w:
            bw = int(rng.integers(4, 14))
            out[int(h * 0.15) : int(h * 0.75), x : x + bw] = rng.integers(20, 240, 3)
            x += bw + int(rng.integers(0, 3))
        return out
    if kind == "pattern":
        out = np.full((h, w, 3), rng.integers(120, 240, 3), np.uint8)
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        step = int(rng.integers(10, 24))
        for y in range(0, h, step):
            for x in range((y // step % 2) * step // 2, w, step):
                cv2.circle(out, (x, y), step // 4, colour, -1, cv2.LINE_AA)
        return out
    src = clutter[str(kind)]
    scale = max(w / src.shape[1], h / src.shape[0]) * rng.uniform(1.0, 1.6)
    big = cv2.resize(src, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    y0, x0 = int(rng.integers(0, big.shape[0] - h + 1)), int(rng.integers(0, big.shape[1] - w + 1))
    crop: np.ndarray = big[y0 : y0 + h, x0 : x0 + w].copy()
    return np.asarray(cv2.GaussianBlur(crop, (0, 0), 1.5), np.uint8) if kind == "coffee" else crop


def _lamp(rng: np.random.Generator, tile: np.ndarray) -> None:
    h, w = tile.shape[:2]
    cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h // 2))
    r = int(rng.integers(max(3, h // 14), max(4, h // 5)))
    glow = np.zeros((h, w), np.float32)
    cv2.circle(glow, (cx, cy), r, 1.0, -1, cv2.LINE_AA)
    glow = np.asarray(cv2.GaussianBlur(glow, (0, 0), r / 2 + 1), np.float32)[..., None]
    tile[:] = np.clip(tile + glow * np.array([200, 235, 255]), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:  # a chandelier: a few small bright bulbs
        for _ in range(int(rng.integers(3, 7))):
            x, y = cx + int(rng.integers(-2 * r, 2 * r + 1)), cy + int(rng.integers(-r, r + 1))
            cv2.circle(tile, (x, y), max(1, r // 4), (230, 250, 255), -1, cv2.LINE_AA)


def _poster(rng: np.random.Generator, tile: np.ndarray, origin: tuple[int, int]) -> np.ndarray | None:
    """A framed picture on the wall; returns the face box (frame pixels) when it shows a face."""
    h, w = tile.shape[:2]
    pw = int(rng.integers(w // 6, w // 3 + 1))
    ph = int(pw * rng.uniform(1.1, 1.4))
    x, y = int(rng.integers(0, max(1, w - pw))), int(rng.integers(0, max(1, h // 2 - ph // 3)))
    if x + pw > w or y + ph > h or pw < 12:
        return None
    kind = rng.choice(["face", "chelsea", "rocket", "logo"])
    face_box = None
    if kind == "face":
        photo, box = _photos()[int(rng.integers(0, 3))]
        picture = cv2.resize(photo, (pw - 4, ph - 4), interpolation=cv2.INTER_AREA)
        sx, sy = (pw - 4) / photo.shape[1], (ph - 4) / photo.shape[0]
        offset = np.array([x + 2 + origin[0], y + 2 + origin[1]] * 2, np.float32)
        face_box = box * np.array([sx, sy, sx, sy], np.float32) + offset
    else:
        picture = cv2.resize(_clutter_images()[str(kind)], (pw - 4, ph - 4), interpolation=cv2.INTER_AREA)
    tile[y : y + ph, x : x + pw] = (20, 20, 20)
    tile[y + 2 : y + ph - 2, x + 2 : x + pw - 2] = picture
    return face_box


def _person(rng: np.random.Generator, face_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A head-and-shoulders patch cut from a real photo with a feathered alpha, and its face box."""
    photo, box = _photos()[int(rng.integers(0, 3))]
    fw, fh = box[2] - box[0], box[3] - box[1]
    x1, y1 = max(0, int(box[0] - 0.9 * fw)), max(0, int(box[1] - 0.7 * fh))
    x2, y2 = min(photo.shape[1], int(box[2] + 0.9 * fw)), min(photo.shape[0], int(box[3] + 1.3 * fh))
    patch = photo[y1:y2, x1:x2].astype(np.float32)
    face = box - [x1, y1, x1, y1]
    s = face_h / fh
    patch = np.asarray(
        cv2.resize(patch, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR), np.float32
    )
    face = face * s
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
        face = np.array([patch.shape[1] - face[2], face[1], patch.shape[1] - face[0], face[3]])
    gain = rng.uniform(0.55, 1.25) * rng.uniform(0.85, 1.15, 3)  # exposure and white balance
    patch = np.clip(patch * gain + rng.uniform(-20, 20), 0, 255)
    ph, pw = patch.shape[:2]
    alpha = np.zeros((ph, pw), np.float32)
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    cv2.ellipse(
        alpha, (int(cx), int(cy)), (int(0.85 * (face[2] - face[0])), int(0.8 * (face[3] - face[1]))), 0, 0, 360, 1.0, -1
    )
    cv2.ellipse(alpha, (int(cx), int(ph)), (int(pw * 0.48), int(0.55 * ph)), 0, 180, 360, 1.0, -1)
    alpha = np.asarray(cv2.GaussianBlur(alpha, (0, 0), max(1.0, face_h / 12)), np.float32)
    return patch, alpha, face.astype(np.float32)


def _occlude(rng: np.random.Generator, image: np.ndarray, face: np.ndarray) -> None:
    x1, y1, x2, y2 = face
    w, h = x2 - x1, y2 - y1
    kind = rng.choice(["mask", "hand", "mic"])
    if kind == "mask":
        top = y1 + h * rng.uniform(0.5, 0.6)
        pts = np.array([[x1 + 0.05 * w, top], [x2 - 0.05 * w, top], [x2 - 0.1 * w, y2], [x1 + 0.1 * w, y2]], np.int32)
        cv2.fillPoly(image, [pts], tuple(int(c) for c in rng.integers(150, 250, 3)), cv2.LINE_AA)
    elif kind == "hand":
        centre = (int(x1 + w * rng.uniform(0.3, 0.7)), int(y1 + h * rng.uniform(0.7, 0.95)))
        axes = (int(w * rng.uniform(0.2, 0.3)), int(h * rng.uniform(0.15, 0.22)))
        skin = tuple(int(c) for c in np.array([110, 150, 200]) * rng.uniform(0.5, 1.1))
        cv2.ellipse(image, centre, axes, float(rng.uniform(-30, 30)), 0, 360, skin, -1, cv2.LINE_AA)
    else:
        end = (int(x1 + w * rng.uniform(0.35, 0.65)), int(y1 + h * rng.uniform(0.8, 0.92)))
        cv2.line(image, (int(x1 - 0.1 * w), int(y1 + 0.55 * h)), end, (30, 30, 30), max(1, int(w / 25)), cv2.LINE_AA)
        cv2.circle(image, end, max(2, int(w / 10)), (25, 25, 25), -1, cv2.LINE_AA)


def _side_panel(rng: np.random.Generator, image: np.ndarray) -> None:
    """The chat and participants panel: tiny avatars of real faces beside names and messages."""
    avatars = _clutter_images()["avatars"]
    x0 = GALLERY[2] + 10
    size = int(rng.integers(14, 23))  # one avatar size per panel, as chat apps draw them
    image[:, GALLERY[2] :] = (40, 40, 40)
    cv2.putText(image, "Participants (24)", (x0, 70), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    y = 90
    while y < H - 30:
        face = cv2.resize(
            avatars[int(rng.integers(0, len(avatars)))], (size, int(size * 1.25)), interpolation=cv2.INTER_AREA
        )
        tint = rng.uniform(0.7, 1.1, 3)
        image[y : y + face.shape[0], x0 : x0 + size] = np.clip(face[..., None] * tint, 0, 255).astype(np.uint8)
        words = " ".join(rng.choice(["Alex", "Sam", "ok", "thanks!", "question:", "page 4?", "yes", "brb", "lol"], 3))
        cv2.putText(
            image, words, (x0 + size + 6, y + size), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (210, 210, 210), 1, cv2.LINE_AA
        )
        y += int(rng.integers(24, 40))


def _toolbar(rng: np.random.Generator, image: np.ndarray) -> None:
    image[: GALLERY[1]] = (28, 28, 28)
    logo = cv2.resize(_clutter_images()["logo"], (32, 32), interpolation=cv2.INTER_AREA)
    image[6:38, 8:40] = logo
    for i in range(6):
        cx = 420 + 60 * i
        cv2.circle(image, (cx, 22), 12, tuple(int(c) for c in rng.integers(60, 255, 3)), -1, cv2.LINE_AA)
        cv2.circle(image, (cx - 4, 19), 2, (20, 20, 20), -1, cv2.LINE_AA)  # a face-like icon: two dots
        cv2.circle(image, (cx + 4, 19), 2, (20, 20, 20), -1, cv2.LINE_AA)
    cv2.putText(
        image, "Lesson 7 - Recording", (60, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (220, 220, 220), 1, cv2.LINE_AA
    )


def make_scene(seed: int, layout: tuple[int, int] | None = None) -> Scene:
    """One call screenshot from ``seed`` (layout drawn from LAYOUTS unless given)."""
    rng = np.random.default_rng(seed)
    rows, cols = layout or LAYOUTS[int(rng.integers(0, len(LAYOUTS)))]
    image = np.full((H, W, 3), 24, np.uint8)
    _toolbar(rng, image)
    _side_panel(rng, image)
    gx1, gy1, gx2, gy2 = GALLERY
    tw, th = (gx2 - gx1) // cols, (gy2 - gy1) // rows
    faces: list[np.ndarray] = []
    occluded: list[bool] = []
    ignore: list[np.ndarray] = []
    for r in range(rows):
        for c in range(cols):
            x0, y0 = gx1 + c * tw + 2, gy1 + r * th + 2
            w, h = tw - 4, th - 4
            if rows * cols > 1 and rng.random() < 0.12:  # camera off: initials on grey
                image[y0 : y0 + h, x0 : x0 + w] = (55, 55, 55)
                cv2.circle(image, (x0 + w // 2, y0 + h // 2), min(w, h) // 5, (120, 90, 160), -1, cv2.LINE_AA)
                continue
            tile = _wallpaper(rng, w, h)
            if rng.random() < 0.3:
                _lamp(rng, tile)
            if rng.random() < 0.3:
                box = _poster(rng, tile, (x0, y0))
                if box is not None:
                    ignore.append(box)
            face_h = h * rng.uniform(0.28, 0.5)
            patch, alpha, face = _person(rng, face_h)
            ph, pw = patch.shape[:2]
            px = int(x0 + (w - pw) / 2 + rng.uniform(-0.15, 0.15) * w)
            py = int(y0 + h * rng.uniform(0.3, 0.5) - (face[1] + face[3]) / 2)  # face centre 30-50 % down
            # paste the part of the patch that falls inside the tile
            sx1, sy1 = max(0, x0 - px), max(0, y0 - py)
            sx2, sy2 = min(pw, x0 + w - px), min(ph, y0 + h - py)
            if sx2 <= sx1 or sy2 <= sy1:
                continue
            region = tile[py - y0 + sy1 : py - y0 + sy2, px - x0 + sx1 : px - x0 + sx2].astype(np.float32)
            a = alpha[sy1:sy2, sx1:sx2, None]
            tile[py - y0 + sy1 : py - y0 + sy2, px - x0 + sx1 : px - x0 + sx2] = (
                a * patch[sy1:sy2, sx1:sx2] + (1 - a) * region
            ).astype(np.uint8)
            box = face + np.array([px, py, px, py], np.float32)
            inside = (min(box[2], x0 + w) - max(box[0], x0)) * (min(box[3], y0 + h) - max(box[1], y0))
            image[y0 : y0 + h, x0 : x0 + w] = tile
            if inside < 0.7 * (box[2] - box[0]) * (box[3] - box[1]):
                ignore.append(box)  # mostly cut off by the tile edge: not a face to read
                continue
            occ = rng.random() < 0.2
            if occ:
                _occlude(rng, image, box)
            faces.append(box.astype(np.float32))
            occluded.append(occ)
            cv2.putText(image, f"Student {r * cols + c + 1}", (x0 + 4, y0 + h - 6), cv2.FONT_HERSHEY_SIMPLEX,
                        0.35 + 0.1 * (rows < 4), (240, 240, 240), 1, cv2.LINE_AA)  # fmt: skip
    _, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 92))])
    image = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)
    return Scene(
        image,
        np.array(faces, np.float32).reshape(-1, 4),
        np.array(occluded, bool),
        np.array(ignore, np.float32).reshape(-1, 4),
        (rows, cols),
    )


def score_boxes(scene: Scene, dets: Detections, min_iou: float = 0.3) -> dict[str, Any]:
    """Hits, misses and false positives of ``dets`` against the scene's truth (greedy by score)."""
    from classmood.vision.boxes import iou_matrix

    taken = np.zeros(len(scene.faces), bool)
    hits = fps = 0
    fp_boxes = []
    for i in np.argsort(-dets.score):
        box = dets.xyxy[i : i + 1]
        iou = iou_matrix(box, scene.faces)[0] if len(scene.faces) else np.zeros(0)
        iou[taken] = 0
        if len(iou) and iou.max() >= min_iou:
            taken[int(iou.argmax())] = True
            hits += 1
            continue
        if len(scene.ignore) and iou_matrix(box, scene.ignore)[0].max() >= min_iou:
            continue
        fps += 1
        fp_boxes.append(dets.xyxy[i].round(1).tolist())
    return {
        "faces": len(scene.faces),
        "hits": hits,
        "false_positives": fps,
        "occluded": int(scene.occluded.sum()),
        "occluded_hits": int((taken & scene.occluded).sum()),
        "fp_boxes": fp_boxes,
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision over all boxes; recall of open faces and, apart, of faces under a mask, hand or microphone."""
    faces = sum(r["faces"] for r in rows)
    hits = sum(r["hits"] for r in rows)
    fps = sum(r["false_positives"] for r in rows)
    occ = sum(r["occluded"] for r in rows)
    occ_hits = sum(r["occluded_hits"] for r in rows)
    return {
        "faces": faces,
        "boxes": hits + fps,
        "precision": round(hits / max(1, hits + fps), 4),
        "recall": round((hits - occ_hits) / max(1, faces - occ), 4),
        "false_positives": fps,
        "recall_occluded": round(occ_hits / max(1, occ), 4),
        "occluded_faces": occ,
        "recall_all": round(hits / max(1, faces), 4),
    }


def run_clutter_bench(seeds: range = TEST_SEEDS, gate: bool | None = None) -> dict[str, Any]:
    """Precision and recall of the boxes that reach the classifier, without and with the face gate."""
    from classmood.expression.model import load_model
    from classmood.pipeline import Analyzer, PipelineConfig
    from classmood.vision.detectors import create_detector

    detector, model = create_detector("libface"), load_model("fast")
    variants = {"without gate": False, "with gate": True} if gate is None else {f"gate={gate}": gate}
    result: dict[str, Any] = {
        "scenes": f"{len(seeds)} call screenshots 1280x720, seeds {seeds.start}-{seeds.stop - 1}",
        "variants": {},
    }
    scenes = [make_scene(s) for s in seeds]
    for name, on in variants.items():
        rows: list[dict[str, Any]] = []
        per_layout: dict[str, list[dict[str, Any]]] = {}
        started = time.perf_counter()
        for scene in scenes:
            analyzer = Analyzer(PipelineConfig(rate_hz=0, gate=on), detector=detector, model=model)
            dets = analyzer.locate(scene.image, 0.0)
            row = score_boxes(scene, dets)
            rows.append(row)
            per_layout.setdefault(f"{scene.layout[0]}x{scene.layout[1]}", []).append(row)
        result["variants"][name] = {
            **_totals(rows),
            "ms_per_frame": round((time.perf_counter() - started) / len(scenes) * 1000, 1),
            "by_layout": {k: _totals(v) for k, v in sorted(per_layout.items())},
            "false_positive_boxes": {str(s): r["fp_boxes"] for s, r in zip(seeds, rows, strict=True) if r["fp_boxes"]},
        }
    return result
