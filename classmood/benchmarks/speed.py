"""Speed of the shipped expression models on this CPU: faces per second at batch 1 and batch 64."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from classmood.expression.model import SHIPPED_MODELS, ExpressionModel, load_model


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def faces_per_second(model: ExpressionModel, batch: int, runs: int = 15, min_seconds: float = 0.2) -> float:
    """Median faces/s over ``runs`` timed calls (each call repeated to last >= ``min_seconds``), after warm-up."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(batch, 1, 48, 48)).astype(np.float32)
    feed = {model.input_name: x}
    for _ in range(3):
        model.session.run(None, feed)
    t = time.perf_counter()
    model.session.run(None, feed)
    reps = max(1, int(min_seconds / max(time.perf_counter() - t, 1e-6)))
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(reps):
            model.session.run(None, feed)
        rates.append(batch * reps / (time.perf_counter() - t))
    return float(np.median(rates))


def bench_models(models: list[str] | None = None, threads: int | None = None, runs: int = 15) -> dict[str, Any]:
    threads = threads or min(2, os.cpu_count() or 1)
    result: dict[str, Any] = {"cpu": cpu_name(), "threads": threads, "runs": runs, "statistic": "median", "models": {}}
    result["instruction_sets"] = instruction_sets()
    for name in models or list(SHIPPED_MODELS):
        # a shipped model twice, its float file and its int8 copy (what analysis loads), in the same run
        variants = [(f"{name} (float)", "float"), (name, "int8")] if name in SHIPPED_MODELS else [(name, "float")]
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


def instruction_sets() -> list[str]:
    """The CPU's matrix and vector extensions that decide ONNX Runtime's speed (AMX, AVX-512 VNNI/BF16, AVX2)."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []
