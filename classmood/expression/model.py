"""CPU inference for expression models through ONNX Runtime (no PyTorch at run time).

``ExpressionModel`` wraps one exported ``.onnx`` file; ``load_model`` also resolves the names of
the models shipped inside the package (``accurate``, ``fast``). ``accurate`` is itself the mean of
two networks in one graph (``models/mean.py``), which replaced the separate ``ensemble``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from classmood.errors import ClassmoodError
from classmood.expression.readout import Readout
from classmood.labels import EMOTIONS

SHIPPED_MODELS: dict[str, str] = {"accurate": "accurate.onnx", "fast": "fast.onnx"}
# Names earlier versions shipped, and what to use now (a clear answer instead of "no such file").
RETIRED_MODELS: dict[str, str] = {
    "ensemble": "the ensemble was retired: 'accurate' now averages two networks itself (and is more accurate)",
    "accurate_alt": "accurate_alt was retired with the ensemble it served; use 'accurate'",
}
UNREADABLE_OUTPUT = "unreadable"
MODEL_NAMES = ("accurate", "fast")
DEFAULT_MODEL = "accurate"


def shipped_model_path(name: str) -> Path:
    """Path of a model file bundled in ``classmood/weights``."""
    return Path(str(resources.files("classmood.weights").joinpath(SHIPPED_MODELS[name])))


def resolve_model(name_or_path: str | None) -> Path:
    """``accurate``/``fast`` (shipped) or a path to an ``.onnx`` file -> the file's path."""
    name_or_path = name_or_path or DEFAULT_MODEL
    if name_or_path in RETIRED_MODELS and not Path(name_or_path).is_file():
        raise ClassmoodError(RETIRED_MODELS[name_or_path])
    if name_or_path in SHIPPED_MODELS:
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
        x = np.asarray(faces, dtype=np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != (1, 48, 48):
            raise ValueError(f"expected faces of shape (N, 48, 48), got {faces.shape}")
        if len(x) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32), (np.zeros(0, np.float32) if self.has_unreadable else None)
        runs = [
            self.session.run(self._outputs, {self.input_name: x[i : i + batch_size]})
            for i in range(0, len(x), batch_size)
        ]
        probs = np.concatenate([r[0] for r in runs]).astype(np.float32)
        unreadable = np.concatenate([r[1] for r in runs]).astype(np.float32) if self.has_unreadable else None
        return (probs if raw else self.readout.calibrate(probs)), unreadable


def load_model(name_or_path: str | None = None, threads: int | None = None) -> ExpressionModel:
    """A shipped model by name (``accurate``, ``fast``) or an exported ``.onnx`` file."""
    return ExpressionModel(resolve_model(name_or_path), threads=threads)
