"""Speed of the shipped expression models on this CPU: faces per second at batch 1 and batch 64."""

from __future__ import annotations

import os
from typing import Any

from classmood.expression.model import load_model
from classmood.expression.speed import cpu_name, faces_per_second, instruction_sets
from classmood.weights.shipped import SHIPPED


def bench_models(models: list[str] | None = None, threads: int | None = None, runs: int = 15) -> dict[str, Any]:
    threads = threads or min(2, os.cpu_count() or 1)
    result: dict[str, Any] = {"cpu": cpu_name(), "threads": threads, "runs": runs, "statistic": "median", "models": {}}
    result["instruction_sets"] = instruction_sets()
    for name in models or list(SHIPPED):
        # a shipped model twice, its float file and its int8 copy (what analysis loads), in the same run
        variants = [(f"{name} (float)", "float"), (name, "int8")] if name in SHIPPED else [(name, "float")]
        for label, precision in variants:
            model = load_model(name, threads=threads, precision=precision)
            result["models"][label] = {
                "file_mb": round(model.file_bytes / 1e6, 2),
                "int8": model.quantized,
                "tta": model.metadata.get("classmood.tta", "none"),
                "faces_per_s_batch1": round(faces_per_second(model, 1, runs), 1),
                "faces_per_s_batch64": round(faces_per_second(model, 64, runs), 1),
            }
    return result
