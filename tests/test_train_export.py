"""Training end to end on tiny data, checkpoints, distillation, and ONNX parity with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs PyTorch (pip install 'classmood[train]')")

from classmood.data import load_splits  # noqa: E402
from classmood.expression.model import ExpressionModel  # noqa: E402
from classmood.training.train import TrainConfig, load_checkpoint, train  # noqa: E402


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


def _small_run(tmp_path: Path, train_rows: int, val_rows: int, **settings: object) -> TrainConfig:
    """A plain_cnn_small run on a generated FER CSV in ``tmp_path`` (no ONNX export)."""
    from tests.conftest import write_fer_csv

    csv = write_fer_csv(tmp_path / "fer.csv", {"Training": train_rows, "PublicTest": val_rows})
    base: dict[str, object] = {"arch": "plain_cnn_small", "batch_size": 32, "lr": 0.05, "threads": 2}
    return TrainConfig.from_dict(
        {**base, "data": str(csv), "out": str(tmp_path / "o"), "export_onnx": False, **settings}
    )


def test_training_learns_a_learnable_task(tmp_path: Path) -> None:
    """Classes drawn as bars at label-dependent rows: a few epochs must beat chance (1/7) clearly."""
    cfg = _small_run(tmp_path, 448, 70, epochs=4)
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


def test_epochs_within_budget_uses_recent_pace_not_start_up() -> None:
    from classmood.training.train import _epochs_within_budget

    # started at 0; epoch 1 took 10 s (start-up), epochs 2-3 took 1 s each; 100 s budget
    assert _epochs_within_budget(100.0, 0.0, [10.0, 11.0, 12.0]) == 3 + int(0.97 * 88 / 1.0)
    # over budget already: one more epoch, then stop
    assert _epochs_within_budget(5.0, 0.0, [10.0, 11.0, 12.0]) == 4


def test_time_budget_shortens_the_run_and_still_anneals(tmp_path: Path) -> None:
    """A budget that cannot hold 50 epochs ends the run early, at the end of a re-planned schedule."""
    summary = train(_small_run(tmp_path, 64, 14, epochs=50, time_budget_minutes=1e-6))
    rows = [json.loads(line) for line in (tmp_path / "o" / "metrics.jsonl").read_text().splitlines()]
    assert summary["epochs"] == len(rows) == 4 and summary["epochs_planned"] == 50
    # one-cycle ends at lr / 25 / 1000: the shortened schedule reached its end, not 4/50 of the way
    assert rows[-1]["lr"] == pytest.approx(0.05 / 25 / 1e3, rel=0.05)


def test_cli_trains_several_recipes_at_once_and_reports_failures(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import write_fer_csv

    csv = write_fer_csv(tmp_path / "fer.csv", {"Training": 48, "PublicTest": 14})
    recipes = []
    for name, arch in (("a", "plain_cnn_small"), ("b", "dexpression"), ("bad", "no_such_net")):
        recipe = tmp_path / f"{name}.toml"
        recipe.write_text(
            f'arch = "{arch}"\ndata = "{csv.as_posix()}"\nout = "{(tmp_path / name).as_posix()}"\n'
            "epochs = 1\nbatch_size = 16\nthreads = 1\n"
        )
        recipes += ["--recipe", str(recipe)]
    done = subprocess.run(
        [sys.executable, "-m", "classmood.cli", "train", "--no-export", *recipes],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    for name in ("a", "b"):
        assert json.loads((tmp_path / name / "run.json").read_text())["epochs"] == 1
        assert f"{name}.toml: PublicTest" in done.stdout
        assert not (tmp_path / name / "model.onnx").exists()  # --no-export reached the children
    assert "bad.toml: failed" in done.stdout
    assert "unknown architecture" in (tmp_path / "bad" / "train.log").read_text()


def test_flip_scale_export_averages_six_views(tiny_run: Path, tmp_path: Path) -> None:
    """The shipped accurate model's TTA: face, closer, farther, each mirrored, averaged inside the graph."""
    from classmood.training.export import export_onnx, zoomed

    model = load_checkpoint(tiny_run / "best.pt")
    path = export_onnx(model, tmp_path / "fs.onnx", tta="flip_scale")
    faces = np.random.default_rng(2).integers(0, 256, size=(5, 48, 48)).astype(np.float32)
    with torch.no_grad():
        x = torch.from_numpy(faces).unsqueeze(1)
        views = [x, zoomed(x, 1), zoomed(x, -1)]
        expected = torch.stack([model(v).softmax(1) for v in views + [v.flip(3) for v in views]]).mean(0).numpy()
        assert zoomed(x, 1).shape == zoomed(x, -1).shape == x.shape
        assert not torch.equal(zoomed(x, 1), x)  # the views really differ from the face
    onnx_model = ExpressionModel(path)
    np.testing.assert_allclose(onnx_model.predict_proba(faces), expected, atol=2e-3)
    assert onnx_model.metadata["classmood.tta"] == "flip_scale"


def test_mixup_cutmix_and_ema_train_and_keep_the_better_weights(tmp_path: Path) -> None:
    from classmood.training.train import mix_batch

    cfg = _small_run(tmp_path, 448, 70, epochs=3, mixup_alpha=0.4, cutmix_alpha=1.0, ema_decay=0.9)
    cfg.augment = type(cfg.augment)(rotate_deg=0, scale=(1, 1), shift=0.0, flip=0.5, erase=0)
    summary = train(cfg)
    rows = [json.loads(line) for line in (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()]
    assert all(r["images_per_s"] > 0 and r["weights"] in ("trained", "ema") for r in rows)
    best = max(rows, key=lambda r: r["val_accuracy"])
    assert summary["best_weights"] == best["weights"] and summary["val_no_tta"]["accuracy"] == best["val_accuracy"]
    assert summary["val"]["accuracy"] > 0.35  # still learns the bars through mixed batches

    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    x = torch.stack([torch.zeros(1, 48, 48), torch.full((1, 48, 48), 100.0)])
    for alphas in ((0.4, 0.0), (0.0, 1.0)):
        one = TrainConfig(mixup_alpha=alphas[0], cutmix_alpha=alphas[1])
        mixed, perm, lam = mix_batch(x, one, gen, rng)
        assert perm is not None and 0 <= lam <= 1
        expected = lam * x + (1 - lam) * x[perm]  # mixup exactly; cutmix in the mean (lam = share kept)
        assert torch.allclose(mixed.mean(dim=(1, 2, 3)), expected.mean(dim=(1, 2, 3)), atol=1e-3)
    assert mix_batch(x, TrainConfig(), gen, rng)[1] is None  # off by default
