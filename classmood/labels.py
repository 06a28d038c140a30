"""The seven FER2013 expression classes, in label order, the words people use for them, and faces.csv columns.

Label order is the FER2013 one (0=angry ... 6=neutral); every array of probabilities in classmood
uses it, so a column index is a label.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)

# Folder names found in public FER-style datasets (FER2013 JPG export, AffectNet/RAF-DB/CK+
# exports, KDEF) mapped to our class words. Matching is case-insensitive.
SYNONYMS: dict[str, str] = {
    "angry": "angry",
    "anger": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    "sad": "sad",
    "sadness": "sad",
    "unhappy": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "surprising": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
    "none": "neutral",
}


def class_index(name: str) -> int | None:
    """Label index for a class word or synonym (case-insensitive), or None if it is not one of ours."""
    word = SYNONYMS.get(name.strip().lower())
    return None if word is None else EMOTIONS.index(word)


# Columns of faces.csv (and of stored sessions' faces), in order: one row per analysed face.
FACE_COLUMNS: list[str] = [
    "frame",
    "time_s",
    "track_id",
    "x",
    "y",
    "w",
    "h",
    "det_score",
    "emotion",
    *[f"p_{e}" for e in EMOTIONS],
    # apparent head orientation in degrees and what it says (toward / away / unclear: vision/pose.py)
    "yaw",
    "pitch",
    "roll",
    "facing",
]
# The faces.csv columns that hold words (the rest are numbers).
WORD_COLUMNS = ("emotion", "facing")
