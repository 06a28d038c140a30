"""Shipping a trained model: export to ONNX, install it in the package, measure it and record where it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from classmood.errors import ClassmoodError


def export_checkpoint(
    ckpt: Path,
    out_path: str | None,
    tta: str,
    ship: str | None = None,
    data: str | None = None,
    fit_unreadable: bool = False,
) -> tuple[Path, dict[str, Any] | None]:
    """Export a checkpoint to ONNX with ``tta`` baked in; with ``ship``, install it as that shipped model.

    ``fit_unreadable`` first fits the unreadable head (training/unreadable.py) on the Training split
    of ``data`` (which needs FER+ votes) for a checkpoint trained without one.

    Shipping measures the installed file on FER2013 PublicTest (``data``, default the run's own
    data) and records it in the weights manifest with the run's provenance. Returns the written
    file and, when shipped, its PublicTest metrics.
    """
    from classmood.expression.model import SHIPPED_MODELS, shipped_model_path
    from classmood.training.export import export_onnx
    from classmood.training.train import load_checkpoint

    if not ckpt.is_file():
        raise ClassmoodError(f"{ckpt}: no such checkpoint")
    run_json = ckpt.parent / "run.json"
    run = json.loads(run_json.read_text()) if run_json.is_file() else {}
    if ship and ship not in SHIPPED_MODELS:
        raise ClassmoodError(f"--ship takes one of {', '.join(SHIPPED_MODELS)}")
    out = shipped_model_path(ship) if ship else Path(out_path or ckpt.with_suffix(".onnx"))
    model = load_checkpoint(ckpt)
    if fit_unreadable:
        from classmood.data import load_split
        from classmood.models.unreadable import WithUnreadable
        from classmood.training.unreadable import fit_unreadable_head

        source = data or run.get("config", {}).get("data")
        if not source:
            raise ClassmoodError("--fit-unreadable needs --data (FER2013 with ferplus_votes.csv)")
        base = model.model if isinstance(model, WithUnreadable) else model
        try:
            model = WithUnreadable(base, fit_unreadable_head(base, load_split(source, "Training")))
        except ValueError as exc:
            raise ClassmoodError(str(exc)) from None
    meta = {"name": ship or ckpt.parent.name, "arch": run.get("arch", ""), "run": ckpt.parent.name}
    # what the readout's calibration needs to know about the run (training/train.py writes the same keys)
    if run.get("targets"):
        meta["classmood.targets"] = run["targets"]
    if run.get("train_prior"):
        meta["classmood.train_prior"] = json.dumps(run["train_prior"])
    export_onnx(model, out, tta=tta, metadata=meta)
    if ship:
        from classmood.expression.evaluate import evaluate
        from classmood.expression.model import load_model
        from classmood.weights.manifest import record_shipped

        data = data or run.get("config", {}).get("data")
        if not data:
            raise ClassmoodError("--ship needs --data to measure the shipped file on PublicTest")
        val = evaluate(data, "PublicTest", load_model(str(out)))["PublicTest"]
        record_shipped(
            ship,
            {
                "run": ckpt.parent.name,
                "arch": run.get("arch", ""),
                "tta": tta,
                "params": run.get("params"),
                "macs": run.get("macs"),
                "val": val,
                "train_seconds": run.get("train_seconds"),
                "hardware": run.get("hardware"),
                "distilled_from": run.get("distilled_from", []),
                "targets": run.get("targets", "fer2013"),
                "initialised_from": run.get("initialised_from", ""),
            },
        )
        return out, val
    return out, None
