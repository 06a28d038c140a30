"""``classmood quantize``: an int8 copy of an exported expression model (ONNX Runtime static QDQ).

Most teachers' laptops have no bf16/int8 matrix units (AMX), but nearly every x86 CPU of the last
years has AVX2 and many AVX-512 VNNI, where ONNX Runtime's int8 convolutions are several times
cheaper than float ones. Static quantization needs the activations' ranges: they are calibrated on
real Training faces (never on PublicTest, which selects models), a stratified sample so that rare
expressions (disgust) set ranges too. Weights are quantized per output channel (symmetric int8),
activations per tensor; the graph's own inputs and outputs stay float, so the file is a drop-in
replacement for its float original, with the same metadata (labels, readout, learnt balance).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classmood.errors import ClassmoodError


@dataclass(frozen=True)
class QuantizeConfig:
    """Every choice of the int8 copy, named."""

    calibration_faces: int = 2000  # Training faces whose activations set the ranges
    calibrate_method: str = "minmax"  # "minmax", "entropy" or "percentile" (ONNX Runtime's calibrators)
    per_channel: bool = True  # one weight scale per output channel (convolutions lose least this way)
    activations: str = "uint8"  # "uint8" (asymmetric, VNNI's u8 x s8) or "int8"
    batch: int = 100  # calibration batch size
    seed: int = 0


def calibration_faces(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` faces, the same number per class where a class has enough (stratified), as (N, 1, 48, 48) float32."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = max(1, n // len(classes))
    picked = [
        rng.choice(np.flatnonzero(labels == c), size=min(per, int((labels == c).sum())), replace=False) for c in classes
    ]
    index = np.sort(np.concatenate(picked))
    return images[index].astype(np.float32)[:, None]


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over in-memory faces."""

    def __init__(self, input_name: str, faces: np.ndarray, batch: int) -> None:
        self.input_name, self.faces, self.batch, self.at = input_name, faces, batch, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.at >= len(self.faces):
            return None
        chunk = self.faces[self.at : self.at + self.batch]
        self.at += self.batch
        return {self.input_name: chunk}

    def rewind(self) -> None:
        self.at = 0


def quantize_model(source: str | Path, out: str | Path, faces: np.ndarray, config: QuantizeConfig) -> Path:
    """Write an int8 QDQ copy of ``source`` to ``out``, calibrated on ``faces`` ((N, 1, 48, 48) float, 0..255)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if config.calibrate_method not in methods:
        raise ClassmoodError(f"calibrate_method must be one of {', '.join(methods)}, not {config.calibrate_method!r}")
    if config.activations not in ("uint8", "int8"):
        raise ClassmoodError(f"activations must be uint8 or int8, not {config.activations!r}")
    source, out = Path(source), Path(out)
    original = onnx.load(str(source))
    input_name = original.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="classmood-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            _Reader(input_name, faces, config.batch),
            quant_format=QuantFormat.QDQ,
            per_channel=config.per_channel,
            activation_type=QuantType.QUInt8 if config.activations == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[config.calibrate_method],
            extra_options={"CalibTensorRangeSymmetric": False},
        )
        proto = onnx.load(str(quantized))
    # the float file's metadata (labels, readout, learnt class balance, name) goes with it, plus what was done
    del proto.metadata_props[:]
    kept: dict[str, Any] = {p.key: p.value for p in original.metadata_props}
    kept["classmood.quantized"] = (
        f"int8 QDQ, {config.calibrate_method} on {len(faces)} Training faces, "
        f"per-channel={config.per_channel}, activations {config.activations}"
    )
    for key, value in kept.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp_out))
    tmp_out.replace(out)
    return out
