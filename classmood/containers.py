"""The typed containers that flow through classmood, in one dependency-free module (NumPy only).

- ``Frame``: one input frame (index, time, 8-bit BGR image) - from ``vision/sources``.
- ``Detections``: the faces of one frame as parallel arrays (boxes, scores, track ids, probabilities,
  uncertain, landmarks), modelled on supervision's ``Detections``; detector -> gate -> tracker ->
  classifier each fill their part. Fields a stage has not filled yet hold neutral values
  (``track_id`` -1, ``probs`` NaN, ``uncertain`` False), so every stage accepts any earlier one's output.
- ``MoodBin``: one time bin of class mood (raw from ``analytics/mood``; shown only through the k rule).
- ``Summary``: what one analysis was - counts, settings and the class numbers under k - built once
  (``build_summary``) for ``analyze``, the live worker, the store, the report and the app.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from classmood.labels import EMOTIONS, NUM_CLASSES

NOTE = "apparent facial expressions, not inner emotional states"


@dataclass
class Frame:
    index: int
    time_s: float
    image: np.ndarray  # H x W x 3 uint8 BGR


UNCERTAIN_WORD = "uncertain"


def _empty_ids(n: int) -> np.ndarray:
    return np.full(n, -1, np.int64)


def _empty_probs(n: int) -> np.ndarray:
    return np.full((n, NUM_CLASSES), np.nan, np.float32)


@dataclass
class Detections:
    xyxy: np.ndarray  # (N, 4) float32, pixels
    score: np.ndarray  # (N,) float32, detector confidence 0..1
    track_id: np.ndarray = field(default_factory=lambda: _empty_ids(0))  # (N,) int64, -1 = not tracked
    probs: np.ndarray = field(default_factory=lambda: _empty_probs(0))  # (N, 7) float32, NaN = not classified
    uncertain: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (N,) bool, True = not readable
    # (N, 5, 2) float32 pixels: eyes (subject's right, left), nose tip, mouth corners; NaN = not given
    landmarks: np.ndarray = field(default_factory=lambda: np.full((0, 5, 2), np.nan, np.float32))
    # (N, 3) float32 apparent head yaw, pitch, roll in degrees (``vision/pose.py``); NaN = not estimated
    pose: np.ndarray = field(default_factory=lambda: np.full((0, 3), np.nan, np.float32))

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(n, 4)
        self.score = np.asarray(self.score, np.float32).reshape(n)
        if len(self.track_id) != n:
            self.track_id = _empty_ids(n)
        if len(self.probs) != n:
            self.probs = _empty_probs(n)
        if len(self.uncertain) != n:
            self.uncertain = np.zeros(n, bool)
        if len(self.landmarks) != n:
            self.landmarks = np.full((n, 5, 2), np.nan, np.float32)
        self.landmarks = np.asarray(self.landmarks, np.float32).reshape(n, 5, 2)
        if len(self.pose) != n:
            self.pose = np.full((n, 3), np.nan, np.float32)
        self.pose = np.asarray(self.pose, np.float32).reshape(n, 3)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """The faces of several ``Detections`` as one, in order, every field kept (supervision's ``merge``).

        Fields are read from the dataclass, so a field added later is concatenated too; rebuild a
        ``Detections`` with ``dataclasses.replace`` for the same reason.
        """
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def wh(self) -> np.ndarray:
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    @property
    def classified(self) -> np.ndarray:
        """(N,) bool: the classifier has run on the face."""
        return ~np.isnan(self.probs).any(axis=1)

    @property
    def read(self) -> np.ndarray:
        """(N,) bool: classified and readable, so the face has an apparent expression."""
        return self.classified & ~self.uncertain

    def expressions(self) -> list[str | None]:
        """Per face: its top apparent expression, ``uncertain``, or None when not classified."""
        out: list[str | None] = []
        for probs, unsure in zip(self.probs, self.uncertain, strict=True):
            if np.isnan(probs).any():
                out.append(None)
            else:
                out.append(UNCERTAIN_WORD if unsure else EMOTIONS[int(np.argmax(probs))])
        return out


@dataclass
class MoodBin:
    start_s: float
    end_s: float
    frames: int  # analysed frames in the bin
    faces: float  # mean faces per analysed frame
    tracks: int  # distinct pseudonymous ids seen
    suppressed: bool  # fewer than k faces: no class-level numbers (set by privacy.apply_k; raw bins: False)
    shares: dict[str, float] | None  # share of classified faces whose top expression is each class
    mean_probs: dict[str, float] | None
    valence: float | None  # the mood score (analytics/mood.py), mean over faces read
    negative_share: float | None
    flags: list[str] = field(default_factory=list)
    uncertain_share: float | None = None  # share of classified faces not read (None when suppressed)
    valence_change: float | None = None  # mean mood score minus each face's own baseline (None: none yet)
    # mean faces *read* per analysed frame: what the k rule counts, since the class numbers come from them
    # (None: a row written before it was stored; ``read_faces`` then derives it)
    faces_read: float | None = None
    mood_sd: float | None = None  # spread (SD) of the per-face mood scores in the bin (None when none was read)
    # Facing the screen (vision/pose.py), over the faces whose orientation was clear (toward or away):
    # their mean number per analysed frame (what the k rule counts for these two), the share turned
    # toward the screen and the share looking down. None: no clear face, hidden under k, or an old row.
    faces_oriented: float | None = None
    facing_share: float | None = None
    looking_down_share: float | None = None

    @property
    def read_faces(self) -> float:
        """Mean faces read per analysed frame; for rows stored without it, from the faces and the uncertain share."""
        if self.faces_read is not None:
            return self.faces_read
        if self.uncertain_share is not None:
            return round(self.faces * (1.0 - self.uncertain_share), 2)
        return self.faces  # a row from before uncertain faces were counted: every face was read

    def as_row(self) -> dict[str, object]:
        """Flat dict for CSV/Parquet: one column per class share and mean probability."""
        row: dict[str, object] = {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "frames": self.frames,
            "faces": round(self.faces, 2),
            "faces_read": None if self.faces_read is None else round(self.faces_read, 2),
            "tracks": self.tracks,
            "suppressed": self.suppressed,
        }
        for e in EMOTIONS:
            row[f"share_{e}"] = None if self.shares is None else round(self.shares[e], 4)
        for e in EMOTIONS:
            row[f"p_{e}"] = None if self.mean_probs is None else round(self.mean_probs[e], 4)
        row["valence"] = None if self.valence is None else round(self.valence, 4)
        row["mood_sd"] = None if self.mood_sd is None else round(self.mood_sd, 4)
        row["negative_share"] = None if self.negative_share is None else round(self.negative_share, 4)
        row["uncertain_share"] = None if self.uncertain_share is None else round(self.uncertain_share, 4)
        row["valence_change"] = None if self.valence_change is None else round(self.valence_change, 4)
        row["faces_oriented"] = None if self.faces_oriented is None else round(self.faces_oriented, 2)
        row["facing_share"] = None if self.facing_share is None else round(self.facing_share, 4)
        row["looking_down_share"] = None if self.looking_down_share is None else round(self.looking_down_share, 4)
        row["flags"] = ";".join(self.flags)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MoodBin:
        """The inverse of ``as_row`` (empty, None or NaN cells are missing numbers)."""

        def number(key: str) -> float | None:
            v = row.get(key)
            if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
                return None
            return float(v)

        def dist(prefix: str) -> dict[str, float] | None:
            vals = [number(f"{prefix}{e}") for e in EMOTIONS]
            return (
                None
                if any(v is None for v in vals)
                else {e: float(v or 0.0) for e, v in zip(EMOTIONS, vals, strict=True)}
            )

        flags = row.get("flags")
        return cls(
            start_s=float(row["start_s"]),
            end_s=float(row["end_s"]),
            frames=int(row["frames"]),
            faces=float(row["faces"]),
            tracks=int(row["tracks"]),
            suppressed=str(row.get("suppressed", "")).strip().lower() == "true",
            shares=dist("share_"),
            mean_probs=dist("p_"),
            valence=number("valence"),
            negative_share=number("negative_share"),
            flags=[f for f in (flags if isinstance(flags, str) else "").split(";") if f],
            uncertain_share=number("uncertain_share"),
            valence_change=number("valence_change"),
            faces_read=number("faces_read"),
            mood_sd=number("mood_sd"),
            faces_oriented=number("faces_oriented"),
            facing_share=number("facing_share"),
            looking_down_share=number("looking_down_share"),
        )


@dataclass(frozen=True, eq=False)  # equality as a mapping: a Summary equals its summary.json
class Summary(Mapping[str, Any]):
    """summary.json and the stored session summary: the same keys wherever it is built or read.

    A read-only mapping (``summary["faces"]``) so that it serialises as it reads. ``class_numbers``
    (key ``class``) comes from ``privacy.class_summary``: class-level numbers only from bins with at
    least k faces.
    """

    input: str
    kind: str
    frames: int
    frames_analysed: int
    faces: int
    tracks: int
    wall_s: float
    detector: str
    model: str
    rate_hz: float
    class_numbers: dict[str, Any]
    frames_dropped: int = 0  # live: frames replaced by a newer one while the worker was busy
    truncated: bool = False
    skipped_frames: int = 0  # damaged frames the decoder could not read
    error: str | None = None
    facing: bool = True  # head orientation was estimated (False: ``--no-facing``, no facing number anywhere)
    note: str = NOTE

    @property
    def analysed_fps(self) -> float | None:
        return round(self.frames_analysed / self.wall_s, 3) if self.wall_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["class"] = out.pop("class_numbers")
        out["analysed_fps"] = self.analysed_fps
        out["wall_s"] = round(self.wall_s, 3)
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
