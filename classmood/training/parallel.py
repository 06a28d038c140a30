"""Several training recipes at once, as child processes: one small 48x48 run leaves a GPU mostly idle."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from classmood.errors import ClassmoodError


def train_in_parallel(recipes: list[str], args: argparse.Namespace) -> int:
    """Run several recipes at once as child processes (one GPU is far from busy with one small run).

    Each child's output goes to ``<out>/train.log``; flags given here (--data, --device, ...) apply
    to every recipe. Returns non-zero when any run failed.
    """
    import subprocess

    from classmood.training.train import TrainConfig

    passthrough: list[str] = []
    for flag in ("data", "device", "threads", "limit", "epochs"):
        value = getattr(args, flag)
        if value is not None:
            passthrough += [f"--{flag}", str(value)]
    if args.no_export:
        passthrough.append("--no-export")
    children = []
    for recipe in recipes:
        try:
            out = Path(TrainConfig.from_toml(recipe).out)
        except (ValueError, TypeError, OSError) as exc:
            raise ClassmoodError(f"bad training settings in {recipe}: {exc}") from None
        out.mkdir(parents=True, exist_ok=True)
        log = open(out / "train.log", "w")  # noqa: SIM115 - closed below, after the child exits
        cmd = [sys.executable, "-m", "classmood.cli", "train", "--recipe", recipe, *passthrough]
        children.append((recipe, out, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
        print(f"started {recipe} -> {out}/train.log", flush=True)
    failed = 0
    for recipe, out, log, child in children:
        code = child.wait()
        log.close()
        run = out / "run.json"
        if code == 0 and run.is_file():
            summary = json.loads(run.read_text())
            print(f"{recipe}: PublicTest {summary['val']['accuracy']:.4f} after {summary['epochs']} epochs", flush=True)
        else:
            failed += 1
            print(f"{recipe}: failed (exit {code}); see {out}/train.log", flush=True)
    return 1 if failed else 0
