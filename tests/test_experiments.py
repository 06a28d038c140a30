"""docs/experiments.md: one row per training run, with the recipe that repeats it."""

from __future__ import annotations

import json
from pathlib import Path

from classmood.training.experiments import experiment_log


def _run(root: Path, name: str, acc: float, **config: object) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    base = {"arch": "resnet18_lite", "epochs": 30, "batch_size": 128, "lr": 0.1, "label_smoothing": 0.1}
    run = {
        "val": {"accuracy": acc, "macro_f1": 0.61},
        "val_no_tta": {"accuracy": acc - 0.01},
        "best_epoch": 28,
        "train_seconds": 600.0,
        "hardware": "GPU H100",
        "config": {**base, "class_weight_power": 0.5, "seed": 3, **config},
    }
    (folder / "run.json").write_text(json.dumps(run))


def test_log_lists_every_run_with_its_recipe_and_results(tmp_path: Path) -> None:
    runs, recipes = tmp_path / "runs", tmp_path / "recipes"
    _run(runs, "gpu-resnet18", 0.7012, teacher=[], augment={"rotate_deg": 10.0, "flip": 0.5})
    _run(runs, "gpu-fast_kd", 0.6811, arch="plain_cnn_small", teacher=["runs/gpu-resnet18/best.pt"], kd_alpha=0.7)
    (recipes / "gpu").mkdir(parents=True)
    (recipes / "gpu" / "resnet18.toml").write_text('arch = "resnet18_lite"\nout = "runs/gpu-resnet18"\n')
    text = experiment_log(runs, recipes)
    rows = [line for line in text.splitlines() if line.startswith("| gpu-")]
    assert [r.split(" | ")[0] for r in rows] == ["| gpu-fast_kd", "| gpu-resnet18"]
    fast, resnet = rows
    assert "`" + (recipes / "gpu" / "resnet18.toml").as_posix() + "`" in resnet and "70.12%" in resnet
    assert "| 3 |" in resnet and "rot 10.0°" in resnet  # the seed and the augmentation are logged
    assert "| - |" in fast and "KD from gpu-resnet18 (alpha 0.7" in fast and "68.11%" in fast


def test_log_shows_epochs_run_when_a_time_budget_cut_the_plan(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _run(runs, "gpu-budgeted", 0.65, epochs=150, time_budget_minutes=4.3)
    run_json = runs / "gpu-budgeted" / "run.json"
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "epochs": 32}))
    (row,) = [line for line in experiment_log(runs, tmp_path / "none").splitlines() if line.startswith("| gpu-")]
    assert "| 32 |" in row and "| 150 |" not in row
    assert "time budget 4.3 min (planned 150 epochs)" in row
