"""Training end to end on tiny data, checkpoints, distillation, and ONNX parity with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs PyTorch (pip install 'classmood[train]')")

from classmood.data import load_splits  # noqa: E402
from classmood.inference import ExpressionModel  # noqa: E402
from classmood.train import TrainConfig, load_checkpoint, train  # noqa: E402


def test_one_epoch_writes_checkpoint_log_summary_and_onnx(tiny_run: Path) -> None:
    for name in ("config.json", "metrics.jsonl", "best.pt", "last.pt", "run.json", "model.onnx"):
        assert (tiny_run / name).is_file(), name
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1]
    run = json.loads((tiny_run / "run.json").read_text())
    assert run["arch"] == "plain_cnn_small" and run["val"]["n"] == 14
    assert set(run["val"]["per_class_recall"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert run["train_seconds"] > 0 and run["hardware"].startswith("CPU")


def test_onnx_agrees_with_pytorch(tiny_run: Path) -> None:
    model = load_checkpoint(tiny_run / "best.pt")
    onnx_model = ExpressionModel(tiny_run / "model.onnx")
    faces = np.random.default_rng(1).integers(0, 256, size=(9, 48, 48)).astype(np.float32)
    with torch.no_grad():
        x = torch.from_numpy(faces).unsqueeze(1)
        expected = ((model(x).softmax(1) + model(x.flip(3)).softmax(1)) / 2).numpy()
    got = onnx_model.predict_proba(faces)
    # float16-stored weights: agreement to ~1e-3, identical decisions
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert onnx_model.metadata["classmood.tta"] == "flip"


def test_training_learns_a_learnable_task(tmp_path: Path) -> None:
    """Classes drawn as bars at label-dependent rows: a few epochs must beat chance (1/7) clearly."""
    from tests.conftest import write_fer_csv

    csv = write_fer_csv(tmp_path / "fer.csv", {"Training": 448, "PublicTest": 70})
    cfg = TrainConfig(
        arch="plain_cnn_small",
        data=str(csv),
        out=str(tmp_path / "o"),
        epochs=4,
        batch_size=32,
        lr=0.05,
        export_onnx=False,
        threads=2,
    )
    cfg.augment = type(cfg.augment)(rotate_deg=0, scale=(1, 1), shift=0.0, flip=0.5, erase=0)
    summary = train(cfg)
    assert summary["val"]["accuracy"] > 0.6


def test_distillation_from_a_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    splits = load_splits(json.loads((tiny_run / "config.json").read_text())["data"])
    cfg = TrainConfig(
        arch="dexpression",
        out=str(tmp_path / "kd"),
        epochs=1,
        batch_size=16,
        export_onnx=False,
        teacher=[str(tiny_run / "best.pt")],
        threads=2,
    )
    summary = train(cfg, splits=splits)
    assert summary["distilled_from"] == [str(tiny_run / "best.pt")]


def test_recipe_files_parse_and_reject_unknown_settings(tmp_path: Path) -> None:
    for recipe in sorted(Path(__file__).resolve().parents[1].glob("recipes/**/*.toml")):
        cfg = TrainConfig.from_toml(recipe)
        assert cfg.epochs > 0
    bad = tmp_path / "bad.toml"
    bad.write_text('arch = "plain_cnn"\nlearning_rate = 3\n')
    with pytest.raises(ValueError, match="unknown training settings: learning_rate"):
        TrainConfig.from_toml(bad)
