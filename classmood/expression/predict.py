"""Apparent expression of face-crop images (each image is treated as one face, like a FER2013 crop)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from classmood.data.folders import to_grey_face
from classmood.expression.model import ExpressionModel, load_model
from classmood.imageio import read_image
from classmood.labels import EMOTIONS


def sample_face_path() -> Path:
    return Path(str(resources.files("classmood.samples").joinpath("astronaut_face.png")))


def read_face_image(path: str | Path) -> np.ndarray:
    """Read an image file as a 48x48 grey face, or raise a one-line ClassmoodError."""
    return to_grey_face(read_image(path))


@dataclass(frozen=True)
class FacePrediction:
    source: str
    probabilities: dict[str, float]

    @property
    def expression(self) -> str:
        return max(self.probabilities, key=lambda k: self.probabilities[k])


def predict_files(paths: list[str | Path], model: ExpressionModel | str | None = None) -> list[FacePrediction]:
    """Read every image first (so a bad file is reported before any model loads), then classify them in one batch."""
    faces = np.stack([read_face_image(p) for p in paths])
    clf = model if isinstance(model, ExpressionModel) else load_model(model)
    probs = clf.predict_proba(faces)
    return [
        FacePrediction(str(p), {e: float(v) for e, v in zip(EMOTIONS, row, strict=True)})
        for p, row in zip(paths, probs, strict=True)
    ]


def format_prediction(pred: FacePrediction, width: int = 30) -> str:
    """A terminal bar chart of one face's apparent-expression probabilities."""
    lines = [f"{pred.source}: apparent expression '{pred.expression}'"]
    for emotion, p in sorted(pred.probabilities.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {emotion:9s} {p:6.1%} {'#' * round(p * width)}")
    return "\n".join(lines)
