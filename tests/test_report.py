"""``classmood report`` turns training logs into the comparison table and confusion images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the report exports each architecture to time it (needs PyTorch)")
pytest.importorskip("matplotlib", reason="the report draws confusion matrices with matplotlib")

from classmood.errors import ClassmoodError
from classmood.training.model_report import README_END, README_START, build_report


def test_report_from_run_logs(tiny_run: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "tiny", ignore=shutil.ignore_patterns("*.pt", "*.onnx"))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold table\n{README_END}\noutro\n")
    text = build_report(runs, tmp_path / "docs" / "models.md", threads=1, readme=readme, timing_runs=2)
    run = json.loads((tiny_run / "run.json").read_text())
    row = next(line for line in text.splitlines() if line.startswith("| tiny |"))
    assert "`plain_cnn_small`" in row and f"{run['val']['accuracy']:.2%}" in row
    assert (tmp_path / "docs" / "img" / "confusion_tiny.png").stat().st_size > 1000
    updated = readme.read_text()
    assert "old table" not in updated and updated.startswith("intro\n") and updated.endswith("outro\n")


def test_report_without_runs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClassmoodError, match="no training runs"):
        build_report(tmp_path, tmp_path / "models.md")
