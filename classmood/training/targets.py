"""What a training face is taught: FER2013's one label, or FER+'s vote distribution (optionally mixed).

``TrainConfig.targets = "ferplus"`` replaces each face's FER2013 label by the share of ten
annotators who saw each expression (``data/ferplus.py``), so a face half the annotators call
neutral and half sad teaches exactly that instead of FER2013's one word. The choices are named
settings of the recipe:

- ``ferplus_label_mix``: share of FER2013's own one-hot label blended into the FER+ distribution
  (0 = FER+ only; the README and docs/experiments.md give the measured trade-off);
- ``ferplus_contempt``: ``drop`` (default) or a class word to fold contempt votes into;
- ``ferplus_missing``: faces FER+ has no votes for (7 % of Training) keep their FER2013 label
  (``fer2013``) or are left out (``drop``);
- ``ferplus_drop_not_face``: faces whose majority vote is "not a face" are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from classmood.data import FaceSet
from classmood.data import ferplus as fp
from classmood.labels import NUM_CLASSES

TARGET_KINDS = ("fer2013", "ferplus")


@dataclass(frozen=True)
class Targets:
    """Which training faces are used (``keep``, indices into the split) and the distribution each is taught."""

    keep: np.ndarray  # (M,) int64
    dist: np.ndarray | None  # (M, 7) float32 rows summing to 1, or None for plain FER2013 labels
    from_votes: int  # faces whose target came from FER+ votes
    dropped_not_face: int
    dropped_missing: int


def one_hot(labels: np.ndarray) -> np.ndarray:
    out = np.zeros((len(labels), NUM_CLASSES), np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def training_targets(
    faces: FaceSet,
    kind: str = "fer2013",
    label_mix: float = 0.0,
    contempt: str = "drop",
    missing: str = "fer2013",
    drop_not_face: bool = True,
) -> Targets:
    """The faces and targets a run trains on (see the module docstring for each setting)."""
    n = len(faces)
    if kind not in TARGET_KINDS:
        raise ValueError(f"targets must be one of {', '.join(TARGET_KINDS)}, not {kind!r}")
    if kind == "fer2013":
        return Targets(np.arange(n, dtype=np.int64), None, 0, 0, 0)
    if faces.votes is None:
        raise ValueError(f"targets = 'ferplus' needs {fp.VOTES_FILE} beside the dataset ({faces.source})")
    if not 0.0 <= label_mix <= 1.0:
        raise ValueError("ferplus_label_mix must be between 0 and 1")
    if missing not in ("fer2013", "drop"):
        raise ValueError("ferplus_missing must be 'fer2013' or 'drop'")
    soft = fp.soft_targets(faces.votes, contempt)
    voted = fp.has_votes(faces.votes) & (soft.sum(axis=1) > 0)
    hard = one_hot(faces.labels)
    dist = np.where(voted[:, None], (1 - label_mix) * soft + label_mix * hard, hard).astype(np.float32)
    use = np.ones(n, bool)
    not_face = fp.not_a_face(faces.votes) if drop_not_face else np.zeros(n, bool)
    use &= ~not_face
    if missing == "drop":
        use &= voted
    keep = np.flatnonzero(use)
    return Targets(
        keep=keep,
        dist=dist[keep],
        from_votes=int((voted & use).sum()),
        dropped_not_face=int(not_face.sum()),
        dropped_missing=int((~voted & ~not_face).sum()) if missing == "drop" else 0,
    )


def ferplus_eval_labels(faces: FaceSet) -> np.ndarray | None:
    """FER+ majority labels of a validation split (``NO_LABEL`` where there is none), or None without votes."""
    return None if faces.votes is None else fp.majority_labels(faces.votes)
