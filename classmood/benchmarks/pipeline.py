"""Pipeline benchmark on a synthetic video-call gallery with known truth (``classmood bench --pipeline``).

Builds a 1080p 7x7 gallery video from FER2013 PublicTest faces (dark tiles, name labels, faces
~60-70 px in a blurred reflected margin, each tile's face replaced every ``hold_s`` seconds by
another face), runs the classmood pipeline and a naive baseline on it in the same process, and
reports faces found (recall), end-to-end accuracy of the expression read for found faces,
identity switches per tile, and analysed frames per second, with the ratios between the two.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from classmood.data import load_split
from classmood.pipeline import PipelineConfig, stream
from classmood.vision.boxes import iou_matrix

W, H, ROWS, COLS = 1920, 1080, 7, 7


@dataclass
class GalleryTruth:
    boxes: np.ndarray  # (tiles, 4) face boxes, fixed per tile
    labels: np.ndarray  # (segments, tiles) FER label per tile per hold segment
    hold_s: float


def _face_tile(face48: np.ndarray, face_px: int) -> np.ndarray:
    """A FER face inside a blurred, reflected margin, scaled so the face itself is ``face_px`` wide."""
    pad = 16
    padded = cv2.copyMakeBorder(face48, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    blurred = cv2.GaussianBlur(padded, (0, 0), 3)
    blurred[pad:-pad, pad:-pad] = face48
    size = round(face_px * (48 + 2 * pad) / 48)
    return cv2.resize(blurred, (size, size), interpolation=cv2.INTER_CUBIC)


def make_gallery_video(
    path: Path,
    images: np.ndarray,
    labels: np.ndarray,
    seconds: float = 20.0,
    fps: float = 10.0,
    hold_s: float = 4.0,
    seed: int = 0,
) -> GalleryTruth:
    rng = np.random.default_rng(seed)
    tiles = ROWS * COLS
    tw, th = W // COLS, H // ROWS
    segments = int(np.ceil(seconds / hold_s))
    pick = rng.choice(len(images), size=(segments, tiles), replace=len(images) < segments * tiles)
    face_px = rng.integers(60, 71, size=tiles)
    boxes = np.zeros((tiles, 4), np.float32)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (W, H))
    frame, frame_seg = np.zeros(0, np.uint8), -1  # the frame only changes when a new hold segment starts
    for f in range(int(seconds * fps)):
        seg = int(f / fps // hold_s)
        if seg != frame_seg:
            frame = np.full((H, W, 3), 30, np.uint8)
            for t in range(tiles):
                r, c = divmod(t, COLS)
                x0, y0 = c * tw, r * th
                cv2.rectangle(frame, (x0 + 1, y0 + 1), (x0 + tw - 2, y0 + th - 2), (45, 45, 45), -1)
                tile = _face_tile(images[pick[seg, t]], int(face_px[t]))
                s = tile.shape[0]
                fx, fy = x0 + (tw - s) // 2, y0 + (th - s) // 2 - 8
                frame[fy : fy + s, fx : fx + s] = tile[..., None]
                m = (s - face_px[t]) / 2
                boxes[t] = (fx + m, fy + m, fx + s - m, fy + s - m)
                cv2.putText(
                    frame,
                    f"Student {t + 1:02d}",
                    (x0 + 6, y0 + th - 8),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.4,
                    (230, 230, 230),
                    1,
                    cv2.LINE_AA,
                )
            frame_seg = seg
        writer.write(frame)
    writer.release()
    return GalleryTruth(boxes, labels[pick], hold_s)


def score_run(path: Path, truth: GalleryTruth, config: PipelineConfig) -> dict[str, Any]:
    found = total = correct = switches = analysed = 0
    last_id: dict[int, int] = {}
    last_time = 0.0
    started = time.perf_counter()
    for update in stream(path, config):
        if update.final:
            break
        analysed += 1
        last_time = update.frame.time_s
        seg = min(int(last_time // truth.hold_s), len(truth.labels) - 1)
        dets = update.detections
        iou = iou_matrix(truth.boxes, dets.xyxy)
        for t in range(len(truth.boxes)):
            total += 1
            if iou.shape[1] == 0 or iou[t].max() < 0.3:
                continue
            j = int(iou[t].argmax())
            found += 1
            correct += int(np.argmax(dets.probs[j]) == truth.labels[seg, t])
            tid = int(dets.track_id[j])
            if t in last_id and last_id[t] != tid:
                switches += 1
            last_id[t] = tid
    wall = time.perf_counter() - started
    minutes = last_time / 60  # span of video between the first and last analysed frame
    return {
        "detector": config.detector,
        "model": config.model,
        "rate_hz": config.rate_hz,
        "frames_analysed": analysed,
        "recall": round(found / max(total, 1), 4),
        "accuracy_found": round(correct / max(found, 1), 4),
        "id_switches": switches,
        "id_switches_per_student_per_10min": round(switches / len(truth.boxes) / minutes * 10, 3) if minutes else None,
        "analysed_fps": round(analysed / wall, 2),
        "wall_s": round(wall, 2),
    }


def run_gallery_bench(
    data: str | Path, seconds: float = 20.0, baseline_seconds: float = 4.0, repeats: int = 3
) -> dict[str, Any]:
    """classmood, classmood without the face gate and the appearance cues (as it was before them),
    and a naive baseline, on the same gallery in one process. The first two alternate ``repeats``
    times so that this machine's drifting speed affects both alike; medians are reported."""
    faces = load_split(data, "PublicTest")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "gallery.mp4"
        truth = make_gallery_video(video, faces.images, faces.labels, seconds=seconds)
        default = PipelineConfig(detector="libface", model="fast", rate_hz=2.0)
        before = PipelineConfig(detector="libface", model="fast", rate_hz=2.0, gate=False, reassociate=False)
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "before": []}
        for _ in range(repeats):
            runs["ours"].append(score_run(video, truth, default))
            runs["before"].append(score_run(video, truth, before))
        ours, without = (_median_run(runs[k]) for k in ("ours", "before"))
        short = Path(tmp) / "gallery_short.mp4"
        truth_short = make_gallery_video(short, faces.images, faces.labels, seconds=baseline_seconds)
        naive = score_run(
            short,
            truth_short,
            # the same model as ours, so the ratio measures detection, tracking and the analysis
            # rate rather than the choice of classifier (accurate's 6-view TTA is 20x slower)
            PipelineConfig(detector="mtcnn", model="fast", rate_hz=0, smoothing=1.0, refine=False),
        )
    return {
        "gallery": f"{W}x{H}, {ROWS}x{COLS} tiles, FER2013 PublicTest faces 60-70 px, {seconds:.0f} s at 10 fps",
        "classmood": ours,
        "classmood_without_gate_and_appearance": without,
        "gate_and_appearance_speed_ratio": round(ours["analysed_fps"] / max(without["analysed_fps"], 1e-9), 3),
        "naive_baseline": naive,
        "speedup_analysed_fps": round(ours["analysed_fps"] / max(naive["analysed_fps"], 1e-9), 2),
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median analysed frames/s (recall and switches are the same in every run),
    with the range of frames/s seen."""
    ordered = sorted(runs, key=lambda r: r["analysed_fps"])
    mid = dict(ordered[len(ordered) // 2])
    mid["analysed_fps_range"] = [ordered[0]["analysed_fps"], ordered[-1]["analysed_fps"]]
    mid["repeats"] = len(runs)
    return mid


def profile_run(path: Path, truth: GalleryTruth, config: PipelineConfig) -> dict[str, Any]:
    """One pass over the gallery with the stage clock on: analysed frames/s, recall, and ms per frame per
    stage (``decode`` is the time spent waiting for the next frame to be read and decoded)."""
    from classmood.pipeline import Analyzer
    from classmood.vision.sources import open_source

    analyzer = Analyzer(config)
    frames = iter(open_source(path).frames(analyzer.due))
    found = total = 0
    started = time.perf_counter()
    while True:
        t = time.perf_counter()
        frame = next(frames, None)
        analyzer.times.add("decode", time.perf_counter() - t)
        if frame is None:
            break
        update = analyzer.process(frame)
        iou = iou_matrix(truth.boxes, update.detections.xyxy)
        total += len(truth.boxes)
        found += int((iou.max(axis=1) >= 0.3).sum()) if iou.shape[1] else 0
    wall = time.perf_counter() - started
    times = analyzer.times
    return {
        "model": config.model,
        "precision": config.precision,
        "int8": analyzer.model.quantized,
        "frames_analysed": times.frames,
        "analysed_fps": round(times.frames / wall, 2),
        "recall": round(found / max(total, 1), 4),
        "ms_per_frame": times.per_frame_ms(),
        "share": times.shares(),
    }


def run_profile_bench(
    data: str | Path, seconds: float = 10.0, repeats: int = 3, models: tuple[str, ...] = ("accurate", "fast")
) -> dict[str, Any]:
    """The per-stage profile on the 49-face 1080p gallery at ``--rate 0`` (every frame), for each shipped
    model's float file and int8 copy, alternated ``repeats`` times in one process (medians)."""
    from classmood.expression.speed import cpu_name, instruction_sets

    faces = load_split(data, "PublicTest")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "gallery.mp4"
        truth = make_gallery_video(video, faces.images, faces.labels, seconds=seconds)
        # each model's float file and int8 copy, and the live default without the head pose (its cost, same run)
        settings = [(m, p, True) for m in models for p in ("float", "int8")] + [(models[0], "int8", False)]
        runs: dict[tuple[str, str, bool], list[dict[str, Any]]] = {s: [] for s in settings}
        for _ in range(repeats):
            for model, precision, facing in settings:
                config = PipelineConfig(detector="libface", model=model, precision=precision, rate_hz=0, facing=facing)
                runs[(model, precision, facing)].append(profile_run(video, truth, config))
    out: dict[str, Any] = {
        "cpu": cpu_name(),
        "instruction_sets": instruction_sets(),
        "gallery": f"{W}x{H}, {ROWS}x{COLS} tiles, faces 60-70 px, {seconds:.0f} s at 10 fps, every frame analysed",
        "repeats": repeats,
        "runs": {},
    }
    for (model, precision, facing), done in runs.items():
        mid = _median_run(done)  # stage times: the median of each stage over the runs
        mid["ms_per_frame"] = {
            stage: round(float(np.median([r["ms_per_frame"][stage] for r in done])), 2) for stage in mid["ms_per_frame"]
        }
        out["runs"][f"{model} {precision}" + ("" if facing else " no-facing")] = mid
    for model in models:
        f, q = out["runs"][f"{model} float"], out["runs"][f"{model} int8"]
        out[f"{model}_int8_speedup"] = {
            "analysed_fps": round(q["analysed_fps"] / max(f["analysed_fps"], 1e-9), 2),
            "classify": round(f["ms_per_frame"]["classify"] / max(q["ms_per_frame"]["classify"], 1e-9), 2),
        }
    with_pose, without = out["runs"][f"{models[0]} int8"], out["runs"][f"{models[0]} int8 no-facing"]
    # the head pose's cost: analysed frames/s with it as a share of those without it, in the same run
    out["facing_fps_ratio"] = round(with_pose["analysed_fps"] / max(without["analysed_fps"], 1e-9), 3)
    return out


def format_profile(result: dict[str, Any]) -> str:
    """The profile as a table: ms per analysed frame by stage, each run's frames/s and recall."""
    from classmood.stages import STAGES

    lines = [f"{result['cpu']} ({', '.join(result['instruction_sets']) or 'no AVX2/AVX-512/AMX'}); {result['gallery']}"]
    lines.append(f"{'run':26s}" + "".join(f"{s:>10s}" for s in STAGES) + f"{'frames/s':>10s}{'recall':>8s}")
    for name, r in result["runs"].items():
        ms = r["ms_per_frame"]
        lines.append(
            f"{name:26s}" + "".join(f"{ms[s]:10.1f}" for s in STAGES) + f"{r['analysed_fps']:10.2f}{r['recall']:8.3f}"
        )
    lines.append("(ms per analysed frame, median of " + f"{result['repeats']} runs)")
    if "facing_fps_ratio" in result:
        lines.append(f"with the head pose: {result['facing_fps_ratio']:.0%} of the analysed frames/s without it")
    return "\n".join(lines)
