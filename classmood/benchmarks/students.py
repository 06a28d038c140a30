"""Student-side mode under load: N students at 1 update/s, the hub on its own process, latency to the teacher.

``classmood bench --students N --json``. The hub runs as a separate process (``python -m
classmood.classroom.hub``) so its CPU time is its own. Most students are *light clients*:
asyncio WebSockets that speak the student protocol exactly (welcome, then one update a second with
random probabilities, starting at spread-out phases). ``browsers`` of them are real headless
Chromium pages with a fake webcam playing webcam-like frames of a real face: they go through the
consent gate and run the detector and the model in WASM, and report their inference time per frame.
A teacher socket receives the class view after every change; each view lists the send times of the
updates it reflects, so the delay from a student's update to the teacher's dashboard state is
measured for every update (all on one machine: one clock).

The same run measures the browser's face detector (YuNet-s, run here by its Python twin, which the
tests hold equal to the browser) against the server's (libfacedetection) on webcam-like frames:
640x480, one real face (scikit-image's astronaut and camera, matplotlib's Grace Hopper) 50-260 px
high on real backgrounds, exposure and white balance, sensor noise, blur, hands and masks, JPEG.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from classmood.benchmarks.clutter import Scene, _occlude, _person, _wallpaper, score_boxes
from classmood.labels import EMOTIONS
from classmood.weights.shipped import LIVE_MODEL

WEBCAM = (640, 480)
CHROMIUM = Path("/usr/bin/chromium")


# --- webcam-like frames ------------------------------------------------------------------------
def webcam_scene(seed: int) -> Scene:
    """One 640x480 webcam frame: a real face (or, 1 in 10, nobody) in front of a real-looking background."""
    rng = np.random.default_rng(seed)
    w, h = WEBCAM
    image = _wallpaper(rng, w, h)
    faces: list[np.ndarray] = []
    occluded: list[bool] = []
    if rng.random() >= 0.1:
        patch, alpha, face = _person(rng, float(rng.uniform(50, 260)))
        ph, pw = patch.shape[:2]
        cx, cy = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.35, 0.6)
        px, py = int(cx - (face[0] + face[2]) / 2), int(cy - (face[1] + face[3]) / 2)
        sx1, sy1, sx2, sy2 = max(0, -px), max(0, -py), min(pw, w - px), min(ph, h - py)
        region = image[py + sy1 : py + sy2, px + sx1 : px + sx2].astype(np.float32)
        a = alpha[sy1:sy2, sx1:sx2, None]
        image[py + sy1 : py + sy2, px + sx1 : px + sx2] = (a * patch[sy1:sy2, sx1:sx2] + (1 - a) * region).astype(
            np.uint8
        )
        box = (face + np.array([px, py, px, py], np.float32)).astype(np.float32)
        occ = bool(rng.random() < 0.15)
        if occ:
            _occlude(rng, image, box)
        faces.append(box)
        occluded.append(occ)
    image = image.astype(np.float32)
    sigma = rng.uniform(0, 1.5)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image += rng.normal(0, rng.uniform(1, 6), image.shape).astype(np.float32)  # sensor noise
    _, buf = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 70])
    frame = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)
    return Scene(
        frame,
        np.array(faces, np.float32).reshape(-1, 4),
        np.array(occluded, bool),
        np.zeros((0, 4), np.float32),
        (1, 1),
    )


def detector_recall(frames: int = 200, seed: int = 5000) -> dict[str, Any]:
    """Recall and precision of the server's detector and the browser's on the same webcam-like frames."""
    from classmood.vision.boxes import iou_matrix
    from classmood.vision.detectors import FaceDetector, LibFaceDetector
    from classmood.vision.yunet import YuNetDetector

    detectors: dict[str, FaceDetector] = {
        "server (libfacedetection)": LibFaceDetector(),
        "browser (YuNet-s ONNX)": YuNetDetector(),
    }
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in detectors}
    right = dict.fromkeys(detectors, 0)
    same = both = 0
    for i in range(frames):
        scene = webcam_scene(seed + i)
        found = {name: d.detect(scene.image) for name, d in detectors.items()}
        for name, dets in found.items():
            rows[name].append(score_boxes(scene, dets))
            right[name] += int(_largest_is_right(scene, dets))
        a, b = found.values()
        if len(a) and len(b):
            both += 1
            same += int(iou_matrix(a.xyxy[:1], b.xyxy).max() >= 0.9)
    out: dict[str, Any] = {"frames": frames, "seeds": f"{seed}-{seed + frames - 1}"}
    for name, r in rows.items():
        faces = sum(x["faces"] for x in r)
        hits = sum(x["hits"] for x in r)
        fps = sum(x["false_positives"] for x in r)
        occ = sum(x["occluded"] for x in r)
        out[name] = {
            "faces": faces,
            "recall": round(hits / max(faces, 1), 3),
            "precision": round(hits / max(hits + fps, 1), 3),
            "covered_recall": round(sum(x["occluded_hits"] for x in r) / max(occ, 1), 3),
            "false_positives": fps,
            # what a student's browser uses: the largest box is the face (or, with nobody there, no box)
            "largest_box_right": round(right[name] / frames, 3),
        }
    out["same_box_share"] = round(same / max(both, 1), 3)  # frames where both found a face: box IoU >= 0.9
    return out


def _largest_is_right(scene: Scene, dets: Any) -> bool:
    from classmood.vision.boxes import iou_matrix

    if not len(dets):
        return len(scene.faces) == 0
    if not len(scene.faces):
        return False
    area = (dets.xyxy[:, 2] - dets.xyxy[:, 0]) * (dets.xyxy[:, 3] - dets.xyxy[:, 1])
    return bool(iou_matrix(dets.xyxy[[int(area.argmax())]], scene.faces).max() >= 0.3)


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """A YUV4MPEG2 clip (what Chromium's fake camera plays in a loop)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            fh.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def chromium_args(y4m: Path) -> list[str]:
    """Headless Chromium with a fake webcam playing ``y4m``, and no outside network: every host name
    but localhost fails to resolve (the benchmark's and the tests' browsers)."""
    return [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ]


# --- the load test -------------------------------------------------------------------------------
def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _start_hub(k: int, model: str, students: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    # every simulated student comes from this machine's one address: seats and connections sized to them
    seats = ["--class-size", str(students), "--per-client", str(students)]
    seats += ["--connections-per-client", str(4 * students + 64)]
    hub = [sys.executable, "-m", "classmood.classroom.hub", "--port", "0", "--open-class", str(k), "--model", model]
    proc = subprocess.Popen(  # closed by the caller (terminate, wait, then its pipes)
        [*hub, *seats],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise RuntimeError("the hub did not start (run python -m classmood.classroom.hub --open-class 5 to see why)")
    return proc, json.loads(line)


async def _light_student(
    url: str, code: str, stop: asyncio.Event, counts: dict[str, int], phase: float, reasons: list[str]
) -> None:
    import websockets

    from classmood.classroom.protocol import update_message

    rng = random.Random(phase)
    try:
        async with websockets.connect(f"{url}/ws/student?class={code}") as ws:
            welcome = json.loads(await ws.recv())
            if welcome.get("type") != "welcome":
                counts["errors"] += 1
                reasons.append(f"no welcome: {welcome}")
                return
            pseudonym, interval = welcome["pseudonym"], float(welcome["interval_s"])

            async def read() -> None:
                async for raw in ws:
                    reply = json.loads(raw)
                    if reply.get("type") == "refused":
                        counts["errors"] += 1
                        reasons.append(f"refused: {reply.get('reason')}")

            reader = asyncio.create_task(read())
            await asyncio.sleep(phase * interval)
            nxt = time.monotonic()
            while not stop.is_set():
                face = rng.random() < 0.9
                probs = None
                if face:
                    p = np.random.default_rng(rng.randrange(1 << 30)).dirichlet(np.ones(len(EMOTIONS)))
                    probs = [round(float(x), 4) for x in p]
                    top = int(np.argmax(probs))  # the rounding remainder goes to the largest: all stay in 0..1
                    probs[top] = round(probs[top] + 1.0 - sum(probs), 4)
                await ws.send(update_message(code, pseudonym, time.time(), face, probs))
                counts["sent"] += 1
                nxt += interval
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            await ws.send(json.dumps({"type": "leave"}))
            reader.cancel()
    except Exception as exc:
        counts["errors"] += 1
        reasons.append(f"{'while sending' if counts['sent'] else 'connecting'}: {type(exc).__name__}: {exc}")


async def _teacher(url: str, code: str, token: str, stop: asyncio.Event, out: list[tuple[float, float]]) -> None:
    import websockets

    async with websockets.connect(f"{url}/ws/teacher/{code}?token={token}") as ws:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except TimeoutError:
                continue
            now = time.time()
            for t in json.loads(raw).get("applied_t", []):
                out.append((now, now - float(t)))


async def _browsers(join: str, n: int, y4m: Path, stop: asyncio.Event, infer: list[float], notes: list[str]) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args(y4m), headless=True)
        pages = []
        for _ in range(n):
            page = await (await browser.new_context()).new_page()
            await page.goto(join)
            await page.check("#consent")
            await page.click("#start")
            pages.append(page)
        await stop.wait()
        for page in pages:
            ms = await page.evaluate("() => classmood.state.inferMs.slice(3)")  # after the first (warm-up) frames
            infer.extend(float(x) for x in ms)
            if await page.evaluate("() => classmood.state.phase") != "running":
                notes.append("a browser student was not running at the end")
            await page.click("#leave")
        await browser.close()


@dataclass
class _Load:
    """What the clients of one load test saw, gathered while it runs."""

    counts: dict[str, int] = field(default_factory=lambda: {"sent": 0, "errors": 0})
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (when, delay to the teacher's view)
    infer: list[float] = field(default_factory=list)  # the browsers' ms per inference
    notes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why light clients' messages were refused


async def _run_load(
    info: dict[str, Any], proc: Any, students: int, browsers: int, y4m: Path, warmup: float, seconds: float, load: _Load
) -> tuple[float, float, float]:
    """Once the hub answers: the teacher, the browsers and the light clients for ``warmup`` + ``seconds``;
    returns the measured window (start, end) and the hub's CPU seconds in it."""
    import websockets

    url, code, token = info["url"].replace("http", "ws", 1), info["code"], info["token"]
    stop = asyncio.Event()
    for _ in range(100):  # the hub process may still be starting
        try:
            async with websockets.connect(f"{url}/ws/student?class=NOCLASS") as ws:
                await ws.recv()
            break
        except OSError:
            await asyncio.sleep(0.1)
    tasks = [asyncio.create_task(_teacher(url, code, token, stop, load.latencies))]
    if browsers:
        tasks.append(asyncio.create_task(_browsers(info["join"], browsers, y4m, stop, load.infer, load.notes)))
    light = students - browsers
    tasks += [
        asyncio.create_task(_light_student(url, code, stop, load.counts, i / max(light, 1), load.reasons))
        for i in range(light)
    ]
    await asyncio.sleep(warmup)
    t0, cpu0 = time.time(), _cpu_seconds(proc.pid)
    await asyncio.sleep(seconds)
    t1, cpu1 = time.time(), _cpu_seconds(proc.pid)
    stop.set()
    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=60)
    for r in done:
        if isinstance(r, BaseException):
            load.notes.append(f"{type(r).__name__}: {r}")
    return t0, t1, cpu1 - cpu0


def run_students_bench(
    students: int = 50,
    browsers: int = 2,
    seconds: float = 30.0,
    warmup: float = 8.0,
    k: int = 5,
    model: str = LIVE_MODEL,
) -> dict[str, Any]:
    """The load test and the detector comparison; one JSON-able dict of measured figures."""
    load = _Load()
    if browsers and not CHROMIUM.exists():
        browsers = 0
        load.notes.append(f"no Chromium at {CHROMIUM}: light clients only")
    browsers = min(browsers, students)
    proc, info = _start_hub(k, model, students)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            y4m = write_y4m(Path(tmp) / "webcam.y4m", [webcam_scene(s).image for s in (7001, 7002, 7003)] * 10)
            t0, t1, cpu = asyncio.run(_run_load(info, proc, students, browsers, y4m, warmup, seconds, load))
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    window = np.array([lat for when, lat in load.latencies if t0 <= when <= t1]) * 1000
    infer_ms = np.array(load.infer)
    result: dict[str, Any] = {
        "students": students,
        "light_clients": students - browsers,
        "browsers": browsers,
        "seconds": seconds,
        "p50_ms": round(float(np.percentile(window, 50)), 2) if len(window) else None,
        "p99_ms": round(float(np.percentile(window, 99)), 2) if len(window) else None,
        "max_ms": round(float(window.max()), 2) if len(window) else None,
        "errors": load.counts["errors"],
        "error_reasons": sorted(set(load.reasons))[:5],
        "server_cpu_percent": round(100 * cpu / (t1 - t0), 1),  # of one core, like top
        "server_cores": os.cpu_count(),
        "messages_per_s": round(len(window) / (t1 - t0), 1),
        "browser_model": model,
        "browser_infer_ms": {
            "frames": len(infer_ms),
            "p50": round(float(np.median(infer_ms)), 1) if len(infer_ms) else None,
            "p90": round(float(np.percentile(infer_ms, 90)), 1) if len(infer_ms) else None,
        },
        "notes": load.notes,
    }
    result["detector"] = detector_recall()
    return result
