"""From a model's probabilities to what a teacher sees: calibrated probabilities, a label, or ``uncertain``.

A ``Readout`` travels with each shipped model (ONNX metadata ``classmood.readout``), so evaluation,
the pipeline, the app and the browser read a face the same way:

- **temperature**: probabilities are raised to ``1/T`` and renormalised (temperature scaling of the
  log-probabilities, fitted on PublicTest; ``T < 1`` sharpens an under-confident model);
- **prior**: per-class weights that move the model from the class balance it was trained with to the
  one it is deployed in (Bayes' rule: multiply by ``p_deploy / p_train`` and renormalise);
- **uncertain**: a face is not read when its box is smaller than ``min_face_px`` in the frame, when
  its crop carries too little detail (``min_detail``, an edge-energy measure that does not depend on
  contrast), or when the top calibrated probability is below ``min_confidence``. Uncertain faces
  are counted on their own and never folded into an expression;
- **unreadable** (models with the learned head, ``training/unreadable.py``): a face is also not read
  when the predicted share of people who could not read it (FER+'s unknown / not-a-face votes)
  exceeds ``max_unreadable``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from classmood.containers import UNCERTAIN_WORD
from classmood.labels import EMOTIONS

UNCERTAIN = -1
METADATA_KEY = "classmood.readout"


def detail(faces: np.ndarray) -> np.ndarray:
    """Edge energy of each (N, 48, 48) grey crop relative to its contrast: ~0.5-1 for a sharp FER2013
    face, falling towards 0.1 as blur or enlargement from a few pixels removes the detail."""
    out = np.empty(len(faces), np.float32)
    for i, f in enumerate(np.asarray(faces, np.float32)):
        lap = cv2.Laplacian(f, cv2.CV_32F, ksize=1)[2:-2, 2:-2]
        out[i] = lap.std() / max(float(f.std()), 4.0)
    return out


@dataclass(frozen=True)
class Readout:
    temperature: float = 1.0
    prior: tuple[float, ...] | None = None  # per-class weights in EMOTIONS order (deploy / train)
    min_confidence: float = 0.0
    min_face_px: float = 0.0
    min_detail: float = 0.0
    max_unreadable: float = 0.0  # 0 = off; else uncertain above this predicted unreadable share

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError("temperature must be positive")
        if self.prior is not None and (len(self.prior) != len(EMOTIONS) or min(self.prior) <= 0):
            raise ValueError(f"prior needs {len(EMOTIONS)} positive weights")

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> Readout:
        raw = metadata.get(METADATA_KEY)
        if not raw:
            return cls()
        values: dict[str, Any] = json.loads(raw)
        if values.get("prior") is not None:
            values["prior"] = tuple(float(v) for v in values["prior"])
        return cls(**values)

    def to_metadata(self) -> str:
        return json.dumps(asdict(self))

    def describe(self) -> str:
        if self == Readout():
            return "raw arg-max"
        parts = [f"T={self.temperature:g}"]
        if self.prior is not None:
            parts.append("prior " + " ".join(f"{e[:3]}x{w:.2f}" for e, w in zip(EMOTIONS, self.prior, strict=True)))
        if self.min_confidence:
            parts.append(f"uncertain below p={self.min_confidence:g}")
        if self.min_face_px:
            parts.append(f"or faces under {self.min_face_px:g} px")
        if self.min_detail:
            parts.append(f"or detail under {self.min_detail:g}")
        if self.max_unreadable:
            parts.append(f"or predicted unreadable over {self.max_unreadable:g}")
        return ", ".join(parts)

    def in_words(self) -> str:
        """A model's readout as a sentence (its settings in full, not a cut-off code string)."""
        parts = []
        if self.temperature != 1.0:
            change = "sharpened" if self.temperature < 1 else "softened"
            parts.append(f"probabilities {change} by calibration (temperature {self.temperature:.2f})")
        if self.prior is not None:
            parts.append("weighed for a classroom, where many faces are at rest")
        rules = []
        if self.min_confidence:
            rules.append(f"its most likely expression has a probability under {self.min_confidence:.2f}")
        if self.min_face_px:
            rules.append(f"it is under {self.min_face_px:g} pixels tall")
        if self.min_detail:
            rules.append(f"its picture has almost no detail (under {self.min_detail:g})")
        if self.max_unreadable:
            rules.append(f"the model expects over {self.max_unreadable:.0%} of people could not read it")
        if rules:
            parts.append("a face is not read when " + ", or ".join(rules))
        return ("; ".join(parts) or "the model's probabilities as they are") + "."

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        """Temperature and prior applied to (N, 7) probabilities; rows still sum to 1."""
        if self.temperature == 1.0 and self.prior is None:
            return np.asarray(probs, np.float32)
        p = np.asarray(probs, np.float64)
        if self.temperature != 1.0:
            p = np.exp(np.log(np.clip(p, 1e-12, 1.0)) / self.temperature)
        if self.prior is not None:
            p = p * np.asarray(self.prior, np.float64)
        return (p / p.sum(axis=1, keepdims=True).clip(min=1e-12)).astype(np.float32)

    def decide(
        self,
        probs: np.ndarray,
        faces: np.ndarray | None = None,
        face_px: np.ndarray | None = None,
        calibrated: bool = False,
        unreadable: np.ndarray | None = None,
    ) -> np.ndarray:
        """A label per face (index into EMOTIONS) or ``UNCERTAIN``.

        ``probs`` are the model's raw probabilities unless ``calibrated``; ``faces`` (the 48x48
        crops) and ``face_px`` (box heights in the frame) enable the detail and size checks;
        ``unreadable`` (the model's second output) the learned unreadable check.
        """
        p = np.asarray(probs) if calibrated else self.calibrate(probs)
        labels = p.argmax(axis=1).astype(np.int64) if len(p) else np.zeros(0, np.int64)
        unsure = p.max(axis=1) < self.min_confidence if len(p) else np.zeros(0, bool)
        if self.min_face_px and face_px is not None:
            unsure |= np.asarray(face_px) < self.min_face_px
        if self.min_detail and faces is not None and len(faces):
            unsure |= detail(faces) < self.min_detail
        if self.max_unreadable and unreadable is not None and len(unreadable):
            unsure |= np.asarray(unreadable) > self.max_unreadable
        labels[unsure] = UNCERTAIN
        return labels


def label_word(label: int) -> str:
    return UNCERTAIN_WORD if label == UNCERTAIN else EMOTIONS[label]
