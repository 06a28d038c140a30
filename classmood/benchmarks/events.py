"""Identity benchmark (``classmood bench --events``): do faces keep their ids through what real calls do?

A 90-second 1280x720 call recording with known truth, built from FER2013 PublicTest faces (one
face per person, each person with their own room colour and shirt, faces moving a few pixels and
sensor noise on every frame), goes through the pipeline at 2 Hz. It contains the events that made
ids churn on real recordings:

* 0 s: a 4x3 gallery; 10 s: one person leaves and the tiles re-flow; 20 s: a new person joins and
  the tiles re-flow again;
* 30 s: the call zooms into speaker view (one face large, five thumbnails in a strip);
* 40 s: back to the gallery in another order (a new page or sort order);
* 50 s: a screen share (a slide, four thumbnails at the side); 60 s: the gallery again, and at
  65 s four people raise a hand, a mask or a microphone over their faces for 5 s;
* 70 s: a scene cut to a different class (twelve other people).

Reported: faces found (and, apart, faces found while covered), ids per person (1 is perfect), id
switches, and ids that were given to more than one person (an id carried to a different face,
across the cut or after a re-layout).
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from classmood.benchmarks.pipeline import _face_tile

W, H = 1280, 720
FPS = 10.0


@dataclass(frozen=True)
class Segment:
    start_s: float
    layout: str  # gallery | speaker | share
    people: tuple[int, ...]  # who is shown, in order (speaker first for "speaker")
    covered: tuple[int, ...] = ()  # people with a hand, mask or microphone over the face


def timeline(seed: int = 0) -> list[Segment]:
    rng = np.random.default_rng(seed)
    first = list(range(12))
    second = list(range(100, 112))  # another class after the cut
    left = [p for p in first if p != 5]
    joined = [*left[:7], 12, *left[7:]]
    shuffled = list(rng.permutation(joined))
    return [
        Segment(0, "gallery", tuple(first)),
        Segment(10, "gallery", tuple(left)),
        Segment(20, "gallery", tuple(joined)),
        Segment(30, "speaker", (joined[3], *joined[:3], *joined[4:6])),
        Segment(40, "gallery", tuple(int(p) for p in shuffled)),
        Segment(50, "share", tuple(joined[:4])),
        Segment(60, "gallery", tuple(joined)),
        Segment(65, "gallery", tuple(joined), covered=tuple(joined[4:8])),
        Segment(70, "gallery", tuple(second)),
    ]


def _tiles(layout: str, n: int) -> list[tuple[int, int, int, int]]:
    """Tile rectangles (x, y, w, h) for ``n`` people in a layout."""
    if layout == "gallery":
        cols = int(np.ceil(np.sqrt(n * 4 / 3)))
        rows = int(np.ceil(n / cols))
        tw, th = W // cols, H // rows
        return [((i % cols) * tw, (i // cols) * th, tw, th) for i in range(n)]
    if layout == "speaker":
        strip = [(40 + i * 240, 4, 230, 130) for i in range(min(5, n - 1))]
        return [(240, 150, 800, 566), *strip]
    # screen share: a slide with thumbnails down the right side
    return [(1010, 10 + i * 178, 264, 170) for i in range(n)]


@dataclass
class Person:
    face: np.ndarray  # 48x48 grey
    room: tuple[int, ...]
    shirt: tuple[int, ...]
    tint: np.ndarray  # skin colour multiplier


def _draw(frame: np.ndarray, person: Person, rect: tuple[int, int, int, int], jitter: np.ndarray) -> np.ndarray:
    """Draw one participant tile; returns the face box in frame pixels."""
    x, y, w, h = rect
    frame[y + 1 : y + h - 1, x + 1 : x + w - 1] = person.room
    face_px = int(0.42 * h)
    tile = _face_tile(person.face, face_px)
    s = tile.shape[0]
    fx, fy = int(x + (w - s) / 2 + jitter[0]), int(y + 0.42 * h - s / 2 + jitter[1])
    cv2.ellipse(frame, (fx + s // 2, y + h), (int(0.32 * w), int(0.32 * h)), 0, 180, 360, person.shirt, -1)
    coloured = np.clip(tile[..., None] * person.tint, 0, 255).astype(np.uint8)
    ys, xs = slice(max(fy, y), min(fy + s, y + h)), slice(max(fx, x), min(fx + s, x + w))
    frame[ys, xs] = coloured[ys.start - fy : ys.stop - fy, xs.start - fx : xs.stop - fx]
    m = (s - face_px) / 2
    return np.array([fx + m, fy + m, fx + m + face_px, fy + m + face_px], np.float32)


def _cover(frame: np.ndarray, box: np.ndarray, kind: str) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if kind == "mask":
        pts = np.array(
            [[x1 + 0.05 * w, y1 + 0.55 * h], [x2 - 0.05 * w, y1 + 0.55 * h], [x2 - 0.12 * w, y2], [x1 + 0.12 * w, y2]]
        )
        cv2.fillPoly(frame, [pts.astype(np.int32)], (225, 215, 200), cv2.LINE_AA)
    elif kind == "hand":
        centre = (int(x1 + 0.4 * w), int(y1 + 0.85 * h))
        cv2.ellipse(frame, centre, (int(0.28 * w), int(0.2 * h)), 20, 0, 360, (120, 160, 205), -1, cv2.LINE_AA)
    else:
        end = (int(x1 + 0.5 * w), int(y1 + 0.85 * h))
        cv2.line(frame, (int(x1 - 0.1 * w), int(y1 + 0.5 * h)), end, (25, 25, 25), max(2, int(w / 20)), cv2.LINE_AA)
        cv2.circle(frame, end, max(3, int(w / 9)), (20, 20, 20), -1, cv2.LINE_AA)


Truth = list[list[tuple[int, np.ndarray]]]  # per frame: (person, face box)


def make_video(path: Path, images: np.ndarray, seconds: float = 90.0, seed: int = 0) -> Truth:
    """Writes the recording; returns per frame the (person, face box) truth."""
    rng = np.random.default_rng(seed)
    segments = timeline(seed)
    ids = sorted({p for s in segments for p in s.people})
    pick = rng.choice(len(images), size=len(ids), replace=False)
    people = {
        p: Person(
            images[k],
            tuple(int(c) for c in rng.integers(40, 200, 3)),
            tuple(int(c) for c in rng.integers(20, 230, 3)),
            rng.uniform(0.85, 1.15, 3) * np.array([0.85, 0.95, 1.1]),
        )
        for p, k in zip(ids, pick, strict=True)
    }
    jitter = {p: np.zeros(2) for p in ids}
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (W, H))
    truth: Truth = []
    for f in range(int(seconds * FPS)):
        t = f / FPS
        seg = [s for s in segments if s.start_s <= t][-1]
        frame = np.full((H, W, 3), 25, np.uint8)
        if seg.layout == "share":
            frame[20:700, 20:990] = 245
            for k in range(8):
                cv2.putText(frame, f"Slide point {k + 1}: photosynthesis", (60, 90 + 70 * k), cv2.FONT_HERSHEY_SIMPLEX,
                            1.0, (40, 40, 40), 2, cv2.LINE_AA)  # fmt: skip
        rows = []
        for p, rect in zip(seg.people, _tiles(seg.layout, len(seg.people)), strict=False):
            jitter[p] = np.clip(jitter[p] + rng.normal(0, 0.7, 2), -4, 4)
            box = _draw(frame, people[p], rect, jitter[p])
            if p in seg.covered:
                _cover(frame, box, kind=("hand", "mask", "mic")[p % 3])
            rows.append((int(p), box))
        frame = np.clip(frame + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)
        writer.write(frame)
        truth.append(rows)
    writer.release()
    return truth


def score(updates: list[tuple[int, Any]], truth: Truth, covered: set[tuple[int, int]] | None = None) -> dict[str, Any]:
    """``covered``: (frame, person) pairs whose face was covered, for their recall apart."""
    from classmood.vision.boxes import iou_matrix

    covered = covered or set()
    covered_found = covered_total = 0
    seen: dict[int, list[int]] = defaultdict(list)  # person -> track ids in time order
    owners: dict[int, set[int]] = defaultdict(set)  # track id -> people it was given to
    found = total = 0
    for frame_index, dets in updates:
        rows = truth[frame_index]
        total += len(rows)
        covered_total += sum((frame_index, p) in covered for p, _ in rows)
        if not rows or not len(dets):
            continue
        boxes = np.stack([b for _, b in rows])
        iou = iou_matrix(boxes, dets.xyxy)
        taken: set[int] = set()
        for i in np.argsort(-iou.max(axis=1)):
            j = int(iou[i].argmax())
            if iou[i, j] < 0.3 or j in taken:
                continue
            taken.add(j)
            found += 1
            person, tid = rows[i][0], int(dets.track_id[j])
            covered_found += (frame_index, person) in covered
            seen[person].append(tid)
            owners[tid].add(person)
    switches = sum(sum(a != b for a, b in itertools.pairwise(ids)) for ids in seen.values())
    first_class = {p for p in seen if p < 100}
    across = sum(1 for who in owners.values() if who & first_class and who - first_class)
    return {
        "recall": round(found / max(1, total), 4),
        "recall_covered": round(covered_found / max(1, covered_total), 4),
        "people": len(seen),
        "ids_per_person": round(float(np.mean([len(set(v)) for v in seen.values()])), 3) if seen else None,
        "id_switches": switches,
        "ids_given_to_several_people": sum(len(who) > 1 for who in owners.values()),
        "ids_carried_across_the_cut": across,
    }


def covered_frames(seconds: float = 90.0, seed: int = 0) -> set[tuple[int, int]]:
    """(frame, person) pairs of the timeline whose face is covered."""
    segments = timeline(seed)
    out: set[tuple[int, int]] = set()
    for f in range(int(seconds * FPS)):
        seg = [s for s in segments if s.start_s <= f / FPS][-1]
        out.update((f, p) for p in seg.covered)
    return out


def run_events_bench(data: str | Path, seconds: float = 90.0, compare: bool = True, seed: int = 1) -> dict[str, Any]:
    """Both trackers on the recording of ``seed`` (the thresholds were tuned on seed 0: report another)."""
    import tempfile

    from classmood.data import load_split
    from classmood.pipeline import PipelineConfig, stream

    faces = load_split(data, "PublicTest")
    result: dict[str, Any] = {
        "video": f"{W}x{H}, {seconds:g} s at {FPS:g} fps, analysed at 2 Hz, seed {seed}",
        "variants": {},
    }
    variants = {"IoU only (before)": False, "with appearance and cuts": True} if compare else {"default": True}
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "events.mp4"
        truth = make_video(video, faces.images, seconds, seed)
        covered = covered_frames(seconds, seed)
        for name, reassociate in variants.items():
            started = time.perf_counter()
            updates = [
                (u.frame.index, u.detections)
                for u in stream(video, PipelineConfig(model="fast", rate_hz=2.0, reassociate=reassociate))
                if not u.final
            ]
            row = score(updates, truth, covered)
            row["analysed_fps"] = round(len(updates) / (time.perf_counter() - started), 2)
            result["variants"][name] = row
    return result
