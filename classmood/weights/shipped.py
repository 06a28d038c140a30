"""The shipped expression models in one table, and which one each kind of use starts with.

In the spirit of timm's pretrained configs: every fact about a shipped model that code needs (its
file, whether students' browsers run it) is one row here, and the two defaults
name a row. Everything else (``expression.model``, the pipeline's config, the CLI, the app, the
student hub) reads this table; ``None`` for a model anywhere means "the default of the thing you
are using": ``PipelineConfig``'s for analysing recordings, ``LIVE_MODEL`` for live reading.
Plain Python, no imports, so the CLI can name the defaults in its help without loading anything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShippedModel:
    name: str
    file: str  # in classmood/weights; its int8 copy beside it (``<stem>.int8.onnx``) where quantized
    in_browser: bool  # students' browsers can run it (student-side mode): the float file, onnxruntime-web


SHIPPED: dict[str, ShippedModel] = {
    m.name: m
    for m in (
        ShippedModel("accurate", "accurate.onnx", True),  # two networks averaged in one graph; the most accurate
        ShippedModel("fast", "fast.onnx", True),  # one small network, about 4x the faces per second
    )
}
# Recordings (``classmood analyze``/``batch``, ``PipelineConfig``): long inputs, where speed pays most.
RECORDING_MODEL = "fast"
# Live reading (the app's camera and screen pages, students' browsers) and scoring one face set at a
# time (``evaluate``, ``predict``), chosen by measurement (README "On real footage", "Student-side
# mode"): under call-like degradation accurate reads 2-4 points more faces correctly than fast with
# the same low share of calm faces read negative, and the live worker runs it at 6.5 analysed
# frames/s on a 49-face 1080p gallery with one inference thread (fast: 9.8), over three times the
# 2 Hz the pages ask for.
LIVE_MODEL = "accurate"
# Names earlier versions shipped, and what to use now (a clear answer instead of "no such file").
RETIRED_MODELS: dict[str, str] = {
    "ensemble": "the ensemble was retired: 'accurate' now averages two networks itself (and is more accurate)",
    "accurate_alt": "accurate_alt was retired with the ensemble it served; use 'accurate'",
}
MODEL_NAMES = tuple(SHIPPED)
PRECISIONS = ("int8", "float")
DEFAULT_PRECISION = "int8"  # for inference; training, browsers and calibration use the float files
BROWSER_MODELS = tuple(name for name, m in SHIPPED.items() if m.in_browser)
