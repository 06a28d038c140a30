"""Shipping a trained model: export to ONNX, install it in the package, measure it and record where it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from classmood.errors import ClassmoodError


def export_checkpoint(
    ckpt: Path,
    out_path: str | None,
    tta: str,
    ship: str | None = None,
    data: str | None = None,
    fit_unreadable: bool = False,
    average_with: list[Path] | None = None,
) -> tuple[Path, dict[str, Any] | None]:
    """Export a checkpoint to ONNX with ``tta`` baked in; with ``ship``, install it as that shipped model.

    ``fit_unreadable`` first fits the unreadable head (training/unreadable.py) on the Training split
    of ``data`` (which needs FER+ votes) for a checkpoint trained without one. ``average_with`` adds
    more checkpoints: the file then holds all the networks and returns the mean of their
    probabilities (models/mean.py).

    Shipping measures the installed file on FER2013 PublicTest (``data``, default the run's own
    data) and records it in the weights manifest with the run's provenance. Returns the written
    file and, when shipped, its PublicTest metrics.
    """
    from classmood.expression.model import shipped_model_path
    from classmood.training.export import export_onnx
    from classmood.training.train import load_checkpoint
    from classmood.weights.shipped import SHIPPED

    if not ckpt.is_file():
        raise ClassmoodError(f"{ckpt}: no such checkpoint")
    run = _run_json(ckpt)
    if ship and ship not in SHIPPED:
        raise ClassmoodError(f"--ship takes one of {', '.join(SHIPPED)}")
    out = shipped_model_path(ship) if ship else Path(out_path or ckpt.with_suffix(".onnx"))
    try:
        model = load_checkpoint(ckpt)
    except Exception as exc:  # torch's unpickler raises whatever it met in a file that is no checkpoint
        raise ClassmoodError(f"{ckpt}: not a checkpoint written by 'classmood train' ({type(exc).__name__})") from None
    if fit_unreadable:
        model = _with_unreadable_head(model, data or run.get("config", {}).get("data"))
    runs = [run]
    if average_with:
        model, more = _averaged(model, average_with)
        runs += more
    names = [ckpt.parent.name] + [p.parent.name for p in average_with or []]
    meta = _metadata(ship or "+".join(names), "+".join(names), runs)
    export_onnx(model, out, tta=tta, metadata=meta)
    if ship:
        return out, _install(ship, out, tta, meta, runs, data)
    return out, None


def _run_json(ckpt: Path) -> dict[str, Any]:
    """The training run's summary beside a checkpoint (empty when there is none)."""
    path = ckpt.parent / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _with_unreadable_head(model: Any, source: str | None) -> Any:
    """The network with the unreadable head fitted on the Training split of ``source`` (needs FER+ votes)."""
    from classmood.data import load_split
    from classmood.models.unreadable import WithUnreadable
    from classmood.training.unreadable import fit_unreadable_head

    if not source:
        raise ClassmoodError("--fit-unreadable needs --data (FER2013 with ferplus_votes.csv)")
    base = model.model if isinstance(model, WithUnreadable) else model
    try:
        return WithUnreadable(base, fit_unreadable_head(base, load_split(source, "Training")))
    except ValueError as exc:
        raise ClassmoodError(str(exc)) from None


def _averaged(model: Any, others: list[Path]) -> tuple[Any, list[dict[str, Any]]]:
    """One network returning the mean of ``model``'s and the ``others``' probabilities, and their runs."""
    from classmood.models.mean import MeanOfModels
    from classmood.training.train import load_checkpoint

    members, runs = [model], []
    for other in others:
        if not other.is_file():
            raise ClassmoodError(f"{other}: no such checkpoint")
        members.append(load_checkpoint(other))
        runs.append(_run_json(other))
    return MeanOfModels(members), runs


def _metadata(name: str, run_names: str, runs: list[dict[str, Any]]) -> dict[str, str]:
    """The ONNX file's metadata: names, and what the readout's calibration needs to know about the runs
    (training/train.py writes the same keys)."""
    meta = {"name": name, "arch": "+".join(r.get("arch", "") for r in runs), "run": run_names}
    targets = {r.get("targets", "fer2013") for r in runs}
    if len(targets) == 1 and runs[0].get("targets"):
        meta["classmood.targets"] = targets.pop()
    priors = [r["train_prior"] for r in runs if r.get("train_prior")]
    if len(priors) == len(runs):
        mean_prior = np.mean(priors, axis=0)
        meta["classmood.train_prior"] = json.dumps([round(float(v), 5) for v in mean_prior / mean_prior.sum()])
    return meta


def _install(
    ship: str, out: Path, tta: str, meta: dict[str, str], runs: list[dict[str, Any]], data: str | None
) -> dict[str, Any]:
    """After the shipped file is written: drop its stale int8 copy, measure it on PublicTest, record it."""
    from classmood.expression.evaluate import evaluate
    from classmood.expression.model import load_model, shipped_model_path
    from classmood.weights.manifest import record_shipped

    run = runs[0]
    stale = shipped_model_path(ship, "int8")
    if stale.is_file():  # the old network's int8 copy must not stand in for the new one
        stale.unlink()
        print(f"removed {stale.name}: run 'classmood quantize {ship} --ship' for the new model's int8 copy")
    data = data or run.get("config", {}).get("data")
    if not data:
        raise ClassmoodError("--ship needs --data to measure the shipped file on PublicTest")
    val = evaluate(data, "PublicTest", load_model(str(out)))["PublicTest"]
    record_shipped(
        ship,
        {
            "run": meta["run"],
            "arch": meta["arch"],
            "tta": tta,
            "params": sum(r.get("params") or 0 for r in runs) or None,
            "macs": sum(r.get("macs") or 0 for r in runs) or None,
            "val": val,
            "train_seconds": sum(r.get("train_seconds") or 0 for r in runs) or None,
            "hardware": run.get("hardware"),
            "distilled_from": run.get("distilled_from", []),
            "targets": run.get("targets", "fer2013"),
            "initialised_from": run.get("initialised_from", ""),
        },
    )
    return val
