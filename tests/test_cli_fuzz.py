"""No traceback from any CLI input: every subcommand against a battery of hostile arguments and files.

Each case runs ``classmood.cli.main`` in-process (the app, which replaces its process with the
server when its settings pass, in a subprocess) and must end with the exit status a user expects
(2 for a refused input, 1 for a run that failed, 0 where the input is odd but fine) and a stderr
of lines that each start with ``classmood:`` - never a traceback, never an "internal error".

The files: empty, random bytes and text under media, model, table, checkpoint and recipe names,
a folder where a file is expected, a symlink loop, a dangling link, a FIFO, names in Greek with
an emoji and with a newline; the numbers: nan, inf, negative, zero, beyond float and database
range, hexadecimal, empty.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from classmood.cli import main
from tests.test_pipeline import write_video
from tests.test_vision import gallery

HUGE_INT = "9" * 30  # beyond a database integer
NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1e309", HUGE_INT, "0x10", "", "1e-320"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = root / name
        files[name].write_bytes(data)

    for ext in ("mp4", "png", "jpg", "tif", "csv", "onnx", "pt", "toml", "db", "csv.gz"):
        put(f"empty.{ext}", b"")
        put(f"random.{ext}", rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
        put(f"text.{ext}", b"this is not what the name says\n" * 40)
        (root / f"dir.{ext}").mkdir()
        files[f"dir.{ext}"] = root / f"dir.{ext}"
        files[f"loop.{ext}"] = root / f"loop.{ext}"
        files[f"loop.{ext}"].symlink_to(files[f"loop.{ext}"])
    files["dangling.mp4"] = root / "dangling.mp4"
    files["dangling.mp4"].symlink_to(root / "nowhere.mp4")
    put("λέξη 😀.mp4", rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    put("bad\nname.png", rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    files["fifo.mp4"], files["fifo.png"] = root / "fifo.mp4", root / "fifo.png"
    os.mkfifo(files["fifo.mp4"])
    os.mkfifo(files["fifo.png"])
    frame, _ = gallery(rows=1, cols=2, face_px=80)
    files["good.png"] = root / "good.png"
    cv2.imwrite(str(files["good.png"]), frame)
    files["good.mp4"] = write_video(root / "good.mp4", [frame] * 6, fps=2.0)
    files["out"] = root / "out"  # a usable output folder
    files["db"] = root / "sessions.db"  # a database with one session
    saved = ["analyze", str(files["good.png"]), "--out", str(root / "saved"), "--save", "--db", str(files["db"])]
    assert main([*saved, "--min-faces", "1"]) == 0
    return files


def _f(name: str) -> str:
    """The placeholder for a hostile file's path."""
    return "{" + name + "}"


def _argv(template: list[str], files: dict[str, Path]) -> list[str]:
    """{name} in an argument is the path of that hostile file."""
    return [re.sub(r"\{([^{}]+)\}", lambda m: str(files[m.group(1)]), a) for a in template]


MEDIA = [
    "empty.mp4",
    "random.mp4",
    "text.mp4",
    "dir.mp4",
    "loop.mp4",
    "dangling.mp4",
    "fifo.mp4",
    "λέξη 😀.mp4",
    "empty.png",
    "random.png",
    "text.png",
    "loop.png",
    "fifo.png",
    "bad\nname.png",
    "random.tif",
    "random.jpg",
    "random.csv",
    "dir.csv",  # a folder without images
]
OUTS = ["{good.png}", "{good.png}/sub", "{loop.mp4}", "{fifo.mp4}", "/proc/classmood", "", "{dangling.mp4}"]
MODELS = ["{empty.onnx}", "{random.onnx}", "{text.onnx}", "{dir.onnx}", "{loop.onnx}", "nosuchmodel", ""]

# (argument template, allowed exit codes)
CASES: list[tuple[list[str], set[int]]] = [
    ([], {2}),
    (["--nope"], {2}),
    (["nosuchcommand"], {2}),
    (["analyze"], {2}),
    (["analyze", "{good.png}"], {2}),  # no --out
    *[(["analyze", _f(m), "--out", "{out}"], {2}) for m in MEDIA],
    *[(["analyze", "{good.png}", "--out", o], {2}) for o in OUTS],
    *[
        (["analyze", "{good.mp4}", "--out", "{out}", "--rate", n], {2})
        for n in NUMBERS
        if n not in ("0", "1e-320", HUGE_INT)
    ],
    (["analyze", "{good.mp4}", "--out", "{out}", "--rate", "1e-320"], {0}),  # one analysed frame: odd, fine
    (["analyze", "{good.mp4}", "--out", "{out}", "--rate", HUGE_INT], {0}),  # every frame
    *[(["analyze", "{good.mp4}", "--out", "{out}", "--bin", n], {2}) for n in NUMBERS if n != HUGE_INT],
    (["analyze", "{good.mp4}", "--out", "{out}", "--bin", HUGE_INT], {0}),  # one bin longer than the video
    *[(["analyze", "{good.mp4}", "--out", "{out}", "--min-faces", n], {2}) for n in NUMBERS],
    *[(["analyze", "{good.png}", "--out", "{out}", "--model", m], {2}) for m in MODELS],
    (["analyze", "{good.png}", "--out", "{out}", "--detector", ""], {2}),
    (["analyze", "{good.png}", "--out", "{out}", "--detector", "{random.onnx}"], {2}),
    *[
        (["analyze", "{good.png}", "--out", "{out}", "--save", "--db", d], {2})
        for d in ("{random.db}", "{text.db}", "{dir.db}", "{loop.db}", "sqlite:////proc/x/y.db", "nosuch://x")
    ],
    (["analyze", "webcam:" + HUGE_INT, "--out", "{out}"], {2}),
    (["analyze", "screen:" + HUGE_INT, "--out", "{out}"], {2}),
    (["analyze", "screen:0,0,1e309,10", "--out", "{out}"], {2}),
    (["batch", "--out", "{out}"], {2}),
    (["batch", "/no/such/*.mp4", "--out", "{out}/b"], {2}),
    (["batch", "{dir.csv}", "--out", "{out}/b"], {2}),  # a folder without recordings
    (["batch", "{good.mp4}", "--out", "{good.png}"], {2}),
    *[(["batch", "{good.mp4}", "--out", "{out}/b", "--workers", n], {2}) for n in ("0", "-1", "nan", "", "1.5")],
    *[(["batch", "{good.mp4}", "--out", "{out}/b", "--chunk-minutes", n], {2}) for n in ("nan", "inf", "-1", "1e309")],
    (["batch", "{good.mp4}", "--out", "{out}/b", "--bin", "0.0001"], {2}),
    (["batch", "{loop.mp4}", "--out", "{out}/b"], {2}),
    (["batch", "{good.mp4}", "--out", ""], {2}),
    (["batch", "{random.mp4}", "{fifo.mp4}", "--out", "{out}/b", "--local", "--workers", "1"], {1}),  # both fail
    (["sessions"], {2}),
    (["sessions", "list", "--db", "{random.db}"], {2}),
    (["sessions", "list", "--db", "{text.db}"], {2}),
    (["sessions", "list", "--db", "{dir.db}"], {2}),
    (["sessions", "list", "--db", "{loop.db}"], {2}),
    (["sessions", "list", "--db", "nosuch://x"], {2}),
    (["sessions", "list", "--db", "{db}", "--min-faces", HUGE_INT], {2}),
    *[(["sessions", "show", i, "--db", "{db}"], {2}) for i in ("0", "-1", HUGE_INT, "abc", "1.5", "", "77")],
    (["sessions", "show", "1", "--db", "{db}", "--min-faces", HUGE_INT], {2}),
    (["sessions", "show", "1", "--db", "{db}", "--min-faces", "0"], {2}),
    (["sessions", "export", "1", "--db", "{db}", "--out", "{good.png}"], {2}),
    (["sessions", "export", "1", "--db", "{db}", "--out", "{loop.mp4}"], {2}),
    (["sessions", "export", "1", "--db", "{db}", "--out", "/proc/classmood"], {2}),
    (["sessions", "export", "1", "--db", "{db}", "--out", ""], {2}),
    (["sessions", "export", "1", "--db", "{db}", "--out", "{out}/e", "--format", "xml"], {2}),
    (["sessions", "export", "77", "--db", "{db}", "--out", "{out}/e"], {2}),
    (["sessions", "delete", HUGE_INT, "--db", "{db}"], {2}),
    (["sessions", "delete", "77", "--db", "{db}"], {2}),
    (["sessions", "compare", "1", HUGE_INT, "--db", "{db}"], {2}),
    (["sessions", "compare", "1", "77", "--db", "{db}"], {2}),
    *[(["predict", _f(m)], {2}) for m in ("empty.png", "random.png", "dir.png", "loop.png", "fifo.png")],
    *[(["predict", "--model", m], {2}) for m in MODELS if m],  # (--model '': the default model)
    (["evaluate"], {2}),
    *[
        (["evaluate", "--data", _f(d)], {2})
        for d in ("empty.csv", "random.csv", "text.csv", "dir.csv", "loop.csv", "random.csv.gz", "good.png")
    ],
    (["evaluate", "--data", "/no/such.csv"], {2}),
    *[(["export", _f(c)], {2}) for c in ("empty.pt", "random.pt", "text.pt", "dir.pt", "loop.pt")],
    (["export", "/no/such.pt"], {2}),
    (["export", "{random.pt}", "--tta", "bogus"], {2}),
    *[(["calibrate", m, "--data", "{dir.csv}"], {2}) for m in MODELS],
    *[(["calibrate", "fast", "--data", _f(d)], {2}) for d in ("random.csv", "empty.csv", "loop.csv")],
    (["calibrate", "fast", "--data", "{dir.csv}", "--temperature", "nan"], {2}),
    (["report", "--runs", "{random.csv}", "--out", "{out}/r.md"], {2}),
    (["report", "--runs", "{dir.csv}", "--out", "{out}/r.md"], {2}),  # a folder without runs
    (["report", "--runs", "/no/such", "--out", "{out}/r.md"], {2}),
    (["train"], {2}),
    (["train", "--arch", "nosuch", "--data", "{random.csv}"], {2}),
    *[(["train", "--recipe", _f(r)], {2}) for r in ("random.toml", "text.toml", "dir.toml")],  # (empty: defaults)
    (["train", "--recipe", "{loop.toml}"], {2}),
    (["train", "--recipe", "/no/such.toml"], {2}),
    (["train", "--arch", "plain_cnn_small", "--data", "{random.csv}", "--epochs", "-1"], {2}),
    (["train", "--arch", "plain_cnn_small", "--data", "{random.csv}", "--lr", "nan"], {2}),
    (["train", "--arch", "plain_cnn_small", "--data", "{dir.csv}", "--batch-size", "0"], {2}),
    (["models", "--bogus"], {2}),
    *[(["bench", "--model", m], {2}) for m in MODELS if m],
    (["bench", "--students", "0"], {2}),
    (["bench", "--students", "-5"], {2}),
    (["bench", "--students", HUGE_INT, "--browsers", "-1"], {2}),
    (["bench", "--robust", "--data", "{random.csv}"], {2}),
    (["bench", "--events", "--data", "/no/such"], {2}),
    (["bench", "--real", "--real-data", "/no/such"], {2}),
]

# the app replaces its process with the server when its settings pass: run it in a child, with a timeout
APP_CASES: list[list[str]] = [
    ["app", "--port", "0"],
    ["app", "--port", "99999"],
    ["app", "--port", "abc"],
    ["app", "--port", "8600", "--class-port", "8600"],
    ["app", "--public-url", "ftp://x", "--port", "8601"],
    ["app", "--db", "{random.db}", "--port", "8602"],
    ["app", "--db", "{dir.db}", "--port", "8603"],
    ["app", "--max-upload-mb", "-1", "--port", "8604"],
    ["app", "--class-size", "-1", "--port", "8605"],
    ["app", "--per-client", "0", "--port", "8606"],
    ["app", "--host", "0.0.0.0", "--port", "8607"],
]


def _check(argv: list[str], code: int, err: str, allowed: set[int]) -> str | None:
    """What is wrong with one case's outcome, or None."""
    lines = [line for line in err.splitlines() if line.strip()]
    if code not in allowed:
        return f"exit {code}, expected {sorted(allowed)}: {err[-600:]}"
    if "Traceback" in err or "internal error" in err:
        return f"traceback or internal error: {err[-1500:]}"
    stray = [line for line in lines if not line.startswith("classmood")]
    if stray:
        return f"stderr lines that are not classmood's own: {stray[:3]}"
    if code == 2 and sum(line.startswith("classmood: error:") for line in lines) != 1:
        return f"not one error line: {lines}"
    return None


def test_no_traceback_from_any_cli_input(
    hostile: dict[str, Path], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLASSMOOD_DB", str(hostile["db"]))  # nothing touches the user's own database
    monkeypatch.delenv("DATABASE_URL", raising=False)
    failures = []

    def too_long(signum: int, frame: object) -> None:
        raise TimeoutError("blocked for 60 s (reading a FIFO?)")

    previous = signal.signal(signal.SIGALRM, too_long)
    for template, allowed in CASES:
        argv = _argv(template, hostile)
        capsys.readouterr()
        signal.alarm(60)
        try:
            code = main(argv)
        except TimeoutError as exc:
            failures.append(f"classmood {' '.join(map(repr, argv))}: {exc}")
            continue
        finally:
            signal.alarm(0)
        problem = _check(argv, code, capsys.readouterr().err, allowed)
        if problem:
            failures.append(f"classmood {' '.join(map(repr, argv))}: {problem}")
    signal.signal(signal.SIGALRM, previous)
    assert not failures, "\n".join(failures)
    assert json.loads((hostile["out"] / "summary.json").read_text())["frames"] > 0  # the good runs ran


def test_no_traceback_from_the_app_command(hostile: dict[str, Path], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLASSMOOD_PASSWORD", "DATABASE_URL"))}
    env["CLASSMOOD_DB"] = str(tmp_path / "app.db")
    failures = []
    for template in APP_CASES:
        argv = _argv(template, hostile)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "classmood.cli", *argv], capture_output=True, text=True, timeout=30, env=env
            )
        except subprocess.TimeoutExpired:
            failures.append(f"classmood {' '.join(argv)}: started (a server?) instead of refusing")
            continue
        problem = _check(argv, proc.returncode, proc.stderr, {2})
        if problem:
            failures.append(f"classmood {' '.join(argv)}: {problem}")
    assert not failures, "\n".join(failures)
