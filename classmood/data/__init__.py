"""Datasets: FER2013 CSV, compact arrays and image folders, all read into ``FaceSet``s (no PyTorch needed)."""

from classmood.data.dataset import FACE_SIZE, FaceSet
from classmood.data.loader import load_split, load_splits

__all__ = ["FACE_SIZE", "FaceSet", "load_split", "load_splits"]
