"""The in-memory form every reader produces: 48x48 uint8 grey faces with integer labels."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from classmood.labels import EMOTIONS

FACE_SIZE = 48


@dataclass(frozen=True)
class FaceSet:
    """One split of a facial-expression dataset.

    ``images`` is (N, 48, 48) uint8, ``labels`` is (N,) int64 in FER2013 label order. ``votes``,
    when the dataset folder has FER+'s ten-annotator votes, is (N, 10) float32 in
    ``data.ferplus.VOTE_COLUMNS`` order, NaN rows where FER+ has none.
    """

    images: np.ndarray
    labels: np.ndarray
    split: str
    source: str
    votes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (FACE_SIZE, FACE_SIZE) or self.images.dtype != np.uint8:
            raise ValueError(f"images must be (N, 48, 48) uint8, got {self.images.shape} {self.images.dtype}")
        if self.labels.shape != (len(self.images),):
            raise ValueError("labels must be one per image")
        if self.votes is not None and self.votes.shape != (len(self.images), 10):
            raise ValueError(f"votes must be (N, 10), got {self.votes.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts, strict=True)}

    def with_votes(self, votes: np.ndarray) -> FaceSet:
        return replace(self, votes=np.asarray(votes, np.float32))
