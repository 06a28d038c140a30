"""Pixels to class mood: detect faces, follow them, read their apparent expressions, aggregate.

``stream(source)`` yields one ``Update`` per analysed frame as soon as it is computed;
``analyze(path)`` runs a whole input and returns an ``AnalysisResult`` (faces, mood bins,
summary). Frames are analysed at ``rate_hz`` (not every input frame), all faces of a frame are
classified in one batch, and each track's probabilities are smoothed over time with an
exponential moving average. Nothing here writes images to disk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classmood.analytics.face_rows import FaceRows, face_rows
from classmood.analytics.mood import MoodAggregator
from classmood.analytics.privacy import DEFAULT_MIN_FACES, apply_k, check_min_faces
from classmood.analytics.summary import build_summary
from classmood.containers import Detections, Frame, MoodBin, Summary
from classmood.errors import ClassmoodError
from classmood.expression.model import DEFAULT_PRECISION, PRECISIONS, ExpressionModel, load_model
from classmood.expression.readout import UNCERTAIN
from classmood.stages import StageTimes
from classmood.vision.crops import face_crops
from classmood.vision.detectors import DEFAULT_DETECTOR, FaceDetector, create_detector
from classmood.vision.frame_source import FrameSource
from classmood.vision.gate import FaceGate
from classmood.vision.pose import head_pose
from classmood.vision.refine import FaceRefiner
from classmood.vision.sources import open_source
from classmood.vision.tracker import IoUTracker
from classmood.weights.shipped import RECORDING_MODEL

MIN_BIN_S = 0.001  # the shortest class-mood bin, in seconds


@dataclass
class PipelineConfig:
    detector: str = DEFAULT_DETECTOR
    model: str = RECORDING_MODEL  # a shipped name (weights/shipped.py) or an .onnx path
    rate_hz: float = 2.0  # analysed frames per second of input (0 = every frame)
    bin_s: float = 5.0
    min_faces: int = DEFAULT_MIN_FACES  # k: class-level numbers only from bins with at least k faces
    smoothing: float = 0.5  # weight of the newest probabilities in each track's moving average
    refine: bool = True  # enlarged second looks for small faces in large frames (vision/refine.py)
    gate: bool = True  # only plausible, distinct faces go on (vision/gate.py)
    # keep ids through re-layouts, zooms, screen shares and cuts with in-memory appearance cues
    # (vision/appearance.py; never written, dropped with the session). False: box overlap only.
    reassociate: bool = True
    # Faces the model's readout cannot read (too small, too blurred, too unconfident) are "uncertain":
    # counted, shown apart, never folded into an expression. False reads every face.
    uncertain: bool = True
    threads: int | None = None
    # a shipped model's int8 copy (1.9-2.6x faster on CPUs with AVX-512 VNNI, PublicTest within 0.03
    # points) or its float file; a model given as a path is always that file
    precision: str = DEFAULT_PRECISION
    # Each face's apparent head orientation and the class's share facing the screen (vision/pose.py).
    # False: no orientation is estimated, per face or per class (for a school that wants expressions only).
    facing: bool = True

    def __post_init__(self) -> None:
        """Refuse settings that would run but mean nothing (a negative rate, an empty bin, k below 1)."""
        if not isinstance(self.rate_hz, int | float) or not math.isfinite(self.rate_hz) or self.rate_hz < 0:
            raise ClassmoodError(f"rate must be a finite number of analysed frames per second >= 0, not {self.rate_hz}")
        if not isinstance(self.bin_s, int | float) or not math.isfinite(self.bin_s) or self.bin_s < MIN_BIN_S:
            # (a bin of 1e-320 s would overflow the bin index; under 1 ms cannot be a chunk boundary)
            raise ClassmoodError(f"bin must be a finite number of seconds >= {MIN_BIN_S}, not {self.bin_s}")
        if not (isinstance(self.smoothing, int | float) and 0 < self.smoothing <= 1):
            raise ClassmoodError(f"smoothing must be in (0, 1], not {self.smoothing}")
        self.min_faces = check_min_faces(self.min_faces)
        if self.precision not in PRECISIONS:
            raise ClassmoodError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")


@dataclass
class Update:
    """One analysed frame: faces with track ids and smoothed probabilities, and any mood bins it closed.

    The bins are raw (numbers even below k): pass them through ``privacy.apply_k`` before showing them.
    """

    frame: Frame
    detections: Detections
    bins: list[MoodBin]
    final: bool = False  # the closing update of a finished input: no faces, only the last mood bin

    def face_rows(self) -> list[dict[str, Any]]:
        """This frame's faces as faces.csv rows (what the file and the session store hold)."""
        return face_rows(self.frame, self.detections)


class Analyzer:
    """Stateful per-session analysis: detector -> refiner -> gate -> tracker -> crops -> classifier ->
    smoothing -> mood."""

    def __init__(
        self,
        config: PipelineConfig | None = None,
        detector: FaceDetector | None = None,
        model: ExpressionModel | None = None,
    ) -> None:
        self.config = config or PipelineConfig()
        self.detector = detector or create_detector(self.config.detector)
        c = self.config
        self.model = model or load_model(c.model, threads=c.threads, precision=c.precision)
        self.tracker = IoUTracker(reassociate=self.config.reassociate)
        self.refiner = FaceRefiner() if self.config.refine else None
        self.gate = FaceGate() if self.config.gate else None
        self._confirmed = np.zeros((0, 4), np.float32)  # last analysed frame's faces, already through the gate
        self.mood = MoodAggregator(self.config.bin_s)
        self._smoothed: dict[int, np.ndarray] = {}
        self._next_time = 0.0
        self.times = StageTimes()  # where each analysed frame's time goes (bench --pipeline prints it)

    def start_at(self, time_s: float) -> None:
        """Begin at ``time_s`` on the analysis-time grid (a chunk of a longer recording): the next frame at or
        after it is analysed, then one every 1/rate seconds, as in an unsplit run."""
        self._next_time = time_s

    def due(self, time_s: float) -> bool:
        """Whether a frame at ``time_s`` should be analysed under the configured rate."""
        return self.config.rate_hz <= 0 or time_s + 1e-9 >= self._next_time

    def process(self, frame: Frame) -> Update:
        if self.config.rate_hz > 0:
            self._next_time = max(self._next_time + 1 / self.config.rate_hz, frame.time_s + 0.5 / self.config.rate_hz)
        self.times.frames += 1
        stage = self.times.stage
        dets = self.locate(frame.image, frame.time_s)
        if len(dets):
            with stage("crop"):
                crops = face_crops(frame.image, dets.xyxy)
            with stage("classify"):
                probs, unreadable_score = self.model.predict(crops)
            with stage("readout"):
                self._read(dets, crops, probs, unreadable_score)
        with stage("aggregate"):
            bins = self.mood.add(frame.time_s, dets)
        return Update(frame, dets, bins)

    def _read(
        self, dets: Detections, crops: np.ndarray, probs: np.ndarray, unreadable_score: np.ndarray | None
    ) -> None:
        """Each track's moving average of its probabilities, then the readout's decision: which faces are
        not read (``dets.uncertain``). Covered faces (coasted by the tracker) keep their track's reading."""
        hidden = dets.uncertain.copy()  # coasted by the tracker: present, covered, not to be read
        a = self.config.smoothing
        for i, tid in enumerate(dets.track_id):
            prev = self._smoothed.get(int(tid))
            if hidden[i] and prev is not None:  # a covered face does not move its track's reading
                dets.probs[i] = prev
                continue
            self._smoothed[int(tid)] = probs[i] if prev is None else a * probs[i] + (1 - a) * prev
            dets.probs[i] = self._smoothed[int(tid)]
        if self.config.uncertain:
            heights = dets.xyxy[:, 3] - dets.xyxy[:, 1]
            # the learnt unreadable score is this frame's (a covered moment is unreadable now), not smoothed
            decided = self.model.readout.decide(
                dets.probs, crops, heights, calibrated=True, unreadable=unreadable_score
            )
            dets.uncertain = hidden | (decided == UNCERTAIN)

    def locate(self, image: np.ndarray, time_s: float) -> Detections:
        """The faces of one frame with their track ids and head poses: detect, look again for small ones, gate,
        track, orient."""
        stage = self.times.stage
        with stage("detect"):
            dets = self.detector.detect(image)
        if self.refiner is not None:
            with stage("refine"):
                dets = self.refiner.refine(image, dets, self.tracker.expected_boxes(time_s))
        if self.gate is not None:
            with stage("gate"):
                dets = self.gate(image, dets, self._confirmed)
        with stage("track"):
            dets = self.tracker.update(dets, time_s, image)
            dets = self.tracker.coast(image, dets, time_s)  # faces hidden for a moment (a hand, a mask) stay
        self._confirmed = dets.xyxy.copy()
        if self.config.facing:
            with stage("pose"):  # apparent head orientation from the five landmarks (covered faces: none)
                dets.pose = head_pose(dets.landmarks, dets.xyxy)
        return dets

    def forget_faces(self) -> None:
        """The next frame is an unrelated photo: no track, smoothing or box carries over (ids stay unique)."""
        self.tracker.forget()
        self._smoothed.clear()
        self._confirmed = np.zeros((0, 4), np.float32)

    def finish(self) -> list[MoodBin]:
        return self.mood.flush()


def stream(source: str | Path | FrameSource, config: PipelineConfig | None = None) -> Iterator[Update]:
    """Analyse a source frame by frame, yielding each update as soon as it is computed.

    When the input ends, one more update with ``final=True`` and no faces carries the last,
    partly filled mood bin (a live source only ends when the caller stops iterating).
    """
    src = source if isinstance(source, FrameSource) else open_source(source)
    analyzer = Analyzer(config)
    last: Frame | None = None
    for frame in src.frames(analyzer.due):
        last = frame
        if src.independent:
            analyzer.forget_faces()
        yield analyzer.process(frame)
    if last is not None:
        yield Update(last, Detections.empty(), analyzer.finish(), final=True)


@dataclass
class AnalysisResult:
    """What ``analyze`` found. ``bins`` are the class-mood bins under the k rule (``min_faces``); the raw
    bins behind them stay here so that the same result can be shown again under another k."""

    source: str
    faces: FaceRows = field(default_factory=FaceRows)  # behaves like a list of faces.csv rows (dicts)
    raw_bins: list[MoodBin] = field(default_factory=list)
    summary: Mapping[str, Any] = field(default_factory=dict)  # a ``Summary`` once analysed
    min_faces: int = DEFAULT_MIN_FACES

    @property
    def bins(self) -> list[MoodBin]:
        """The bins as a teacher may see them: class numbers only where at least ``min_faces`` faces were present."""
        return apply_k(self.raw_bins, self.min_faces)

    def __post_init__(self) -> None:
        if not isinstance(self.faces, FaceRows):
            self.faces = FaceRows(self.faces)

    def to_pandas(self) -> Any:
        """Faces as a pandas DataFrame, one row per analysed face, columns as in faces.csv."""
        return self.faces.to_pandas()

    def mood_rows(self) -> list[dict[str, object]]:
        return [b.as_row() for b in self.bins]


def summarize(
    src: FrameSource | tuple[str, str],
    config: PipelineConfig,
    frames: int,
    analysed: int,
    faces: FaceRows,
    wall_s: float,
    raw_bins: list[MoodBin],
    skipped_frames: int = 0,
) -> Summary:
    """summary.json for an input (a source, or its name and kind): counts and settings, and class-level
    numbers only from bins with at least k faces."""
    name, kind = (src.name, src.kind) if isinstance(src, FrameSource) else src
    return build_summary(
        input=name,
        kind=kind,
        frames=frames,
        frames_analysed=analysed,
        faces=len(faces),
        tracks=len(np.unique(faces.column("track_id"))),
        wall_s=wall_s,
        detector=config.detector,
        model=config.model,
        rate_hz=config.rate_hz,
        raw_bins=raw_bins,
        min_faces=config.min_faces,
        truncated=src.truncated if isinstance(src, FrameSource) else False,
        skipped_frames=skipped_frames,
        facing=config.facing,
    )
