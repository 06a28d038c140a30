"""CPU inference for expression models through ONNX Runtime (no PyTorch at run time).

``ExpressionModel`` wraps one exported ``.onnx`` file; ``load_model`` also resolves the names of
the models shipped inside the package (``accurate``, ``fast``). ``accurate`` is itself the mean of
two networks in one graph (``models/mean.py``), which replaced the separate ``ensemble``.

Each shipped model comes twice: the float file (what training reads back, what students' browsers
download, what calibration writes into) and an int8 copy of it (``training/quantize.py``: ONNX
Runtime static QDQ, calibrated on Training faces), which reads PublicTest within 0.03 points of the
float file and runs 1.9-2.6x faster on a CPU with AVX-512 VNNI. Inference here takes the int8 copy
unless asked for ``precision="float"``; a path to a file is always that file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from classmood.errors import ClassmoodError
from classmood.expression.readout import Readout
from classmood.labels import EMOTIONS
from classmood.weights.shipped import DEFAULT_PRECISION, LIVE_MODEL, MODEL_NAMES, PRECISIONS, RETIRED_MODELS, SHIPPED

UNREADABLE_OUTPUT = "unreadable"
# A network trained with a second head taught FER2013's own labels (models/label_sets.py) exports its
# probabilities under this name; faces are never read with it, only FER2013 accuracy is scored on it.
FER2013_OUTPUT = "probs_fer2013"
INT8_SUFFIX = ".int8.onnx"  # fast.onnx -> fast.int8.onnx


def int8_path(path: Path) -> Path:
    """Where the int8 copy of the float model file ``path`` lives (beside it)."""
    return path.with_name(path.name.removesuffix(".onnx") + INT8_SUFFIX)


def shipped_model_path(name: str, precision: str = "float") -> Path:
    """Path of a model file bundled in ``classmood/weights`` (the float file, or its int8 copy)."""
    if precision not in PRECISIONS:
        raise ClassmoodError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    path = Path(str(resources.files("classmood.weights").joinpath(SHIPPED[name].file)))
    return int8_path(path) if precision == "int8" else path


def resolve_model(name_or_path: str | None, precision: str = "float") -> Path:
    """``accurate``/``fast`` (shipped, in ``precision``) or a path to an ``.onnx`` file -> the file's path.

    A shipped name whose int8 copy is missing (a model shipped again and not yet quantized) gives the
    float file: slower, never a stale copy (shipping removes the old one)."""
    name_or_path = name_or_path or LIVE_MODEL
    if name_or_path in RETIRED_MODELS and not Path(name_or_path).is_file():
        raise ClassmoodError(RETIRED_MODELS[name_or_path])
    if name_or_path in SHIPPED:
        path = shipped_model_path(name_or_path, precision)
        if precision != "float" and not path.is_file():
            path = shipped_model_path(name_or_path)
        if not path.is_file():
            raise ClassmoodError(f"shipped model {name_or_path!r} is missing from the installation ({path})")
        return path
    path = Path(name_or_path)
    if not path.is_file():
        raise ClassmoodError(f"model {name_or_path!r} is neither a shipped model ({', '.join(MODEL_NAMES)}) nor a file")
    return path


class ExpressionModel:
    """Seven-class apparent-expression classifier over 48x48 grey face crops."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        ort.disable_telemetry_events()  # also when the caller imported onnxruntime before classmood
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types for unreadable/invalid models
            raise ClassmoodError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:160]})") from None
        self.path = Path(path)
        self.input_name = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        # A second output "unreadable" (training/unreadable.py): the predicted share of people who could
        # not read the face; the readout's max_unreadable rule uses it.
        self.has_unreadable = UNREADABLE_OUTPUT in outputs
        self._outputs = [outputs[0], *([UNREADABLE_OUTPUT] if self.has_unreadable else [])]
        self.has_fer2013_head = FER2013_OUTPUT in outputs
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        labels = self.metadata.get("classmood.labels")
        if labels and tuple(labels.split(",")) != EMOTIONS:
            raise ClassmoodError(f"{path}: model labels {labels} do not match {','.join(EMOTIONS)}")
        try:
            self.readout = Readout.from_metadata(self.metadata)
        except (ValueError, TypeError) as exc:
            raise ClassmoodError(f"{path}: invalid readout metadata ({exc})") from None

    @property
    def name(self) -> str:
        return self.metadata.get("name", self.path.stem)

    @property
    def quantized(self) -> bool:
        """Whether this file is an int8 copy (``training/quantize.py`` notes how it was made)."""
        return "classmood.quantized" in self.metadata

    @property
    def file_bytes(self) -> int:
        return self.path.stat().st_size

    def predict_proba(self, faces: np.ndarray, batch_size: int = 256, raw: bool = False) -> np.ndarray:
        """(N, 48, 48) or (N, 1, 48, 48) grey faces, pixel values 0..255 -> (N, 7) probabilities.

        Calibrated by the model's readout (temperature, deployment prior) unless ``raw``.
        """
        return self.predict(faces, batch_size, raw)[0]

    def predict(
        self, faces: np.ndarray, batch_size: int = 256, raw: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities as ``predict_proba`` gives them, and the unreadable score (N,) or None without that head."""
        out = self.outputs(faces, self._outputs, batch_size)
        probs = out[self._outputs[0]]
        return (probs if raw else self.readout.calibrate(probs)), out.get(UNREADABLE_OUTPUT)

    def predict_fer2013(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, 7) probabilities of the head taught FER2013's own labels; raises without that head."""
        if not self.has_fer2013_head:
            raise ValueError(f"{self.path}: no {FER2013_OUTPUT} output")
        return self.outputs(faces, [FER2013_OUTPUT], batch_size)[FER2013_OUTPUT]

    def outputs(self, faces: np.ndarray, names: list[str], batch_size: int = 256) -> dict[str, np.ndarray]:
        """The graph's raw outputs ``names`` for (N, 48, 48) or (N, 1, 48, 48) grey faces (0..255), all
        from one pass over the graph per batch: e.g. ``probs`` and ``probs_fer2013`` together."""
        x = np.asarray(faces, dtype=np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != (1, 48, 48):
            raise ValueError(f"expected faces of shape (N, 48, 48), got {faces.shape}")
        if len(x) == 0:
            return {n: np.zeros((0,) if n == UNREADABLE_OUTPUT else (0, len(EMOTIONS)), np.float32) for n in names}
        runs = [self.session.run(names, {self.input_name: x[i : i + batch_size]}) for i in range(0, len(x), batch_size)]
        return {n: np.concatenate([r[k] for r in runs]).astype(np.float32) for k, n in enumerate(names)}

    @property
    def probs_output(self) -> str:
        """The name of the graph's (deployed) probabilities output."""
        return self._outputs[0]


def load_model(
    name_or_path: str | None = None, threads: int | None = None, precision: str = DEFAULT_PRECISION
) -> ExpressionModel:
    """A shipped model by name (``accurate``, ``fast``; its int8 copy unless ``precision="float"``) or an
    exported ``.onnx`` file."""
    return ExpressionModel(resolve_model(name_or_path, precision), threads=threads)
