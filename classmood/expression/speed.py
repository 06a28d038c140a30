"""How fast an expression model reads faces on this CPU, and which CPU that is (its name and matrix extensions).

Training logs it, the model table (``training/model_report.py``) prints it and ``classmood bench``
measures every shipped model with it; every speed figure names the CPU it was measured on.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from classmood.expression.model import ExpressionModel


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
