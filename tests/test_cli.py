"""The ``classmood`` command as a user runs it: evaluate's JSON interface, predict, bench, and errors."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from classmood.cli import main
from classmood.labels import EMOTIONS

KEYS = {"accuracy", "macro_f1", "n", "per_class_recall", "confusion"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "classmood.cli", *args], capture_output=True, text=True, timeout=300)


def _check_metrics(m: dict, n: int) -> None:
    assert set(m) == KEYS
    assert m["n"] == n
    assert list(m["per_class_recall"]) == list(EMOTIONS)
    assert len(m["confusion"]) == 7 and all(len(r) == 7 for r in m["confusion"])
    assert sum(map(sum, m["confusion"])) == n
    assert m["accuracy"] == pytest.approx(sum(m["confusion"][i][i] for i in range(7)) / n)
    assert 0 <= m["macro_f1"] <= 1


def test_evaluate_one_split_prints_one_object(fer_csv: Path, tiny_run: Path) -> None:
    proc = run_cli(
        "evaluate", "--data", str(fer_csv), "--split", "PrivateTest", "--model", str(tiny_run / "model.onnx"), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    _check_metrics(json.loads(proc.stdout), 14)
    # rows are truth: the synthetic PrivateTest has 2 faces of each class
    assert [sum(r) for r in json.loads(proc.stdout)["confusion"]] == [2] * 7


def test_evaluate_all_splits_keyed_by_name(fer_csv: Path, tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--data", str(fer_csv), "--model", str(tiny_run / "model.onnx"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"Training", "PublicTest", "PrivateTest"}
    for name, n in (("Training", 64), ("PublicTest", 21), ("PrivateTest", 14)):
        _check_metrics(out[name], n)


def test_evaluate_image_folders(image_folders: Path, tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(image_folders),
                "--split",
                "test",
                "--model",
                str(tiny_run / "model.onnx"),
                "--json",
            ]
        )
        == 0
    )
    _check_metrics(json.loads(capsys.readouterr().out), 21)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--data", "/nonexistent/fer.csv", "--json"], "no such file or folder"),
        (["evaluate", "--data", "{csv}", "--split", "Validation", "--model", "{onnx}"], "no split 'Validation'"),
        (["evaluate", "--data", "{csv}", "--model", "nosuchmodel"], "neither a shipped model"),
        (["evaluate", "--data", "{csv}", "--model", "{csv}"], "not a loadable ONNX model"),
        (["predict", "{csv}"], "not an image OpenCV can decode"),
        (["export", "/nonexistent.pt"], "no such checkpoint"),
        (["train", "--arch", "vgg99", "--data", "{csv}"], "unknown architecture 'vgg99'"),
        (["train", "--recipe", "/nonexistent.toml"], "bad training settings"),
        (["train", "--arch", "plain_cnn", "--data", "/nonexistent.csv", "--epochs", "1"], "no such file or folder"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(fer_csv: Path, tiny_run: Path, args: list[str], message: str) -> None:
    args = [a.format(csv=fer_csv, onnx=tiny_run / "model.onnx") for a in args]
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("classmood: error:") and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_predict_json_on_an_image(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2
    import numpy as np

    img = tmp_path / "face.png"
    cv2.imwrite(str(img), np.full((120, 100, 3), 128, np.uint8))
    assert main(["predict", str(img), "--model", str(tiny_run / "model.onnx"), "--json"]) == 0
    (pred,) = json.loads(capsys.readouterr().out)
    assert set(pred["probabilities"]) == set(EMOTIONS)
    assert sum(pred["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert pred["expression"] == max(pred["probabilities"], key=pred["probabilities"].get)


def test_bench_json(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", str(tiny_run / "model.onnx"), "--runs", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["threads"] >= 1 and out["statistic"] == "median"
    (speeds,) = out["models"].values()
    assert speeds["faces_per_s_batch1"] > 0 and speeds["faces_per_s_batch64"] > 0


def test_bench_robust_prints_every_condition_for_every_model(
    tiny_run: Path, fer_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx = str(tiny_run / "model.onnx")
    assert main(["bench", "--robust", "--model", onnx, "--data", str(fer_csv)]) == 0
    text = capsys.readouterr().out
    assert "neutral->neg" in text and "call 24 px" in text and "gallery 4x4" in text and onnx in text


def test_models_lists_parameters_and_macs(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch", reason="needs PyTorch")
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["resnet18"]["params"] > 10_000_000
    assert rows["dexpression"]["macs_per_face"] > 0


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "{sample}", "--out", "{out}"],
        ["analyze", "{sample}", "--out", "{out}", "--annotate", "--min-faces", "1", "--save", "--db", "{out}/s.db"],
        ["predict", "{sample}", "--json"],
        ["evaluate", "--data", "{csv}", "--model", "fast", "--json"],
    ],
    ids=["analyze", "analyze with a report and a session", "predict", "evaluate"],
)
def test_nothing_is_written_outside_the_output_folder(args: list[str], tmp_path: Path, fer_csv: Path) -> None:
    """Run as a new user would (a fresh HOME): no telemetry queue, cache or settings file appears."""
    import os
    import subprocess
    import sys

    from classmood.expression.predict import sample_face_path

    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    filled = [a.format(sample=sample_face_path(), out=out, csv=fer_csv) for a in args]
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # classmood must switch it off itself
    # other tests kill processes on purpose (those cannot clean up), so compare this run's before and after
    before = {p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("classmood-matplotlib-")}
    proc = subprocess.run(
        [sys.executable, "-m", "classmood.cli", *filled], cwd=home, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []  # no file, no folder
    after = {p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("classmood-matplotlib-")}
    assert not after - before  # its matplotlib folder is removed at exit
