"""One live class in student-side mode: the latest numbers of each student, and the class view under k.

A ``Room`` keeps, per connected student, only the last update (face present or not, seven
probabilities) and when it came; nothing older is kept per student. What the teacher sees comes
from ``now_view()`` and ``bins()``, built with the same k rule as every other view (``analytics/privacy.py``): the
"now" numbers need at least k students whose face is read *now* (present and readable); each time
bin of the mood over time needs at least k faces read on average. Counts (students connected, faces present) are not
expressions and are always shown. Nothing per student ever leaves this module: pseudonyms stay
server-side keys and are dropped when a student leaves.

A student who pauses, leaves, closes the tab or stops sending for ``STALE_S`` seconds no longer
counts as a face present; one who leaves or disconnects is removed at once.

Seats are limited so that one client cannot fake the k rule: a class holds at most ``max_students``
(default ``MAX_STUDENTS``), and one client address (``netguard.client_key``) at most
``seats_per_client()`` of them at a time. Unless the teacher set that number, it is
``min(PER_CLIENT, k - 2)`` for k >= 3: one address can then never fill k - 1 seats, the seats it takes
to read a single real student's numbers through the class view. The address is kept in memory with
the seat and dropped with it; it is never shown or saved.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from classmood.analytics.mood import MoodAggregator
from classmood.analytics.privacy import HIDDEN_NOTE, apply_k, check_min_faces, current_facing, current_view
from classmood.analytics.summary import build_summary
from classmood.classroom.protocol import AWAY, LOOKING_DOWN, TOWARD, Control, StudentUpdate
from classmood.containers import Detections, MoodBin, Summary
from classmood.expression.readout import UNCERTAIN, Readout
from classmood.labels import EMOTIONS
from classmood.store.recorder import SessionRecorder
from classmood.weights.shipped import LIVE_MODEL

STALE_S = 5.0  # an update older than this no longer counts as a face present
TICK_S = 1.0  # the mood over time takes the faces present once a second
HEARTBEAT_S = 60.0  # a recorded class with no bin to save says it is alive this often
IDLE_CLOSE_S = 3 * 3600.0  # a class with no student and nobody looking for this long is ended (and saved)
SESSION_KIND = "students"
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed by students
CODE_LENGTH = 6
MAX_STUDENTS = 100  # seats in one class (classmood app --class-size)
PER_CLIENT = 4  # seats one client address may hold at most (classmood app --per-client sets it exactly)


class JoinRefused(Exception):
    """A join the class cannot take (full, or too many seats from one address); the text says why."""


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


# A student's page sends its decision (``facing``), never its angles: each decision stands here as a
# pose that the pipeline's rule (vision/pose.py) reads back as the same word, so the class's shares
# come from the one aggregator (analytics/mood.py) that recorded video uses.
UNCLEAR_POSE = (float("nan"),) * 3
FACING_POSES: dict[int | None, tuple[float, ...]] = {
    TOWARD: (0.0, 0.0, 0.0),
    AWAY: (90.0, 0.0, 0.0),
    LOOKING_DOWN: (0.0, -90.0, 0.0),
    None: UNCLEAR_POSE,
}


def well_formed(code: str) -> bool:
    """Whether ``code`` could be a class code at all: only such codes count as guesses (a shorter or
    misspelt one cannot be right, so answering it tells nothing)."""
    return len(code) == CODE_LENGTH and all(c in CODE_ALPHABET for c in code)


def new_pseudonym() -> str:
    return "p-" + secrets.token_hex(4)


@dataclass
class Student:
    number: int  # a small int for the aggregator's per-face baseline; session-local, never shown
    last_seen: float | None = None  # server time of the last update
    face: bool = False
    probs: np.ndarray | None = None  # raw model probabilities of the last update
    facing: int | None = None  # what the page said of its head (protocol.TOWARD / AWAY / LOOKING_DOWN, None)
    paused: bool = False
    client: str = ""  # the client key the seat counts against (memory only)


@dataclass
class RoomStats:
    updates: int = 0
    refused: int = 0  # messages that broke the protocol (counted, not applied)
    turned_away: int = 0  # joins refused: the class full or an address over its seats


class Room:
    """Thread-safe: the hub's event loop writes, the teacher's page reads.

    ``k`` at opening is what students are shown before they consent, so it is a floor: the teacher
    may raise k during the class (it re-applies at once), never lower it below that. With a
    ``recorder`` the class is saved as it goes (raw bins as they close, like the live worker), so a
    crashed server leaves an "interrupted" session rather than nothing.
    """

    def __init__(
        self,
        k: int,
        readout: Readout,
        model: str = LIVE_MODEL,
        bin_s: float = 5.0,
        code: str | None = None,
        recorder: SessionRecorder | None = None,
        max_students: int = MAX_STUDENTS,
        per_client: int | None = None,
        facing: bool = True,
    ) -> None:
        self.k = self.min_k = check_min_faces(k)
        self.facing = facing  # False (classmood app --no-facing): a page's facing number is not taken
        if max_students < 1 or (per_client is not None and per_client < 1):
            raise ValueError("a class needs at least one seat, and one per client")
        self.max_students, self.per_client = max_students, per_client
        self.recorder = recorder
        self._saved = 0  # bins handed to the recorder so far
        self._last_beat = time.time()
        self.last_activity = time.time()  # a student's message or a look at the dashboard
        self.code = code or new_code()
        self.teacher_token = secrets.token_urlsafe(24)
        self.readout, self.model = readout, model
        self.created = time.time()
        self.closed = False
        self._lock = threading.Lock()
        self._students: dict[str, Student] = {}
        self._numbers = 0
        self._aggregator = MoodAggregator(bin_s=bin_s)
        self._bins: list[MoodBin] = []
        self.stats = RoomStats()
        self.ticks = 0  # seconds in which the faces present went into the mood over time
        self.faces_total = 0  # sum over ticks of the faces present

    @property
    def saving(self) -> bool:
        """Whether the class is being saved: a recorder that opened its session and has not failed since."""
        return self.recorder is not None and self.recorder.error is None

    def seats_per_client(self) -> int:
        """Seats one client address may hold now: the teacher's number, else ``min(PER_CLIENT, k - 2)``
        for k >= 3 (so one address cannot reach k - 1), else ``PER_CLIENT`` (k <= 2 protects nobody's
        numbers from a second seat; the teacher was warned)."""
        if self.per_client is not None:
            return self.per_client
        return min(PER_CLIENT, self.k - 2) if self.k >= 3 else PER_CLIENT

    # --- what students do -------------------------------------------------------------------
    def join(self, client: str = "") -> str:
        """A seat for a new student from ``client`` (a ``netguard.client_key``); ``JoinRefused`` when the
        class is full or that address holds its seats already."""
        with self._lock:
            if len(self._students) >= self.max_students:
                self.stats.turned_away += 1
                raise JoinRefused(f"the class is full ({self.max_students} students)")
            seats = self.seats_per_client()
            if client and sum(s.client == client for s in self._students.values()) >= seats:
                self.stats.turned_away += 1
                raise JoinRefused(
                    f"this class takes at most {seats} student{'s' if seats != 1 else ''} from one network "
                    "address (ask your teacher if you share a connection)"
                )
            pseudonym = new_pseudonym()
            self.last_activity = time.time()
            self._numbers += 1
            self._students[pseudonym] = Student(self._numbers, client=client)
            return pseudonym

    def apply(self, pseudonym: str, message: StudentUpdate | Control, now: float | None = None) -> None:
        """An update or a control message from the student ``pseudonym`` (unknown ones are refused)."""
        now = now or time.time()
        with self._lock:
            self.last_activity = time.time()
            student = self._students.get(pseudonym)
            if student is None or (isinstance(message, StudentUpdate) and message.pseudonym != pseudonym):
                self.stats.refused += 1
                return
            if isinstance(message, Control):
                if message.kind == "leave":
                    del self._students[pseudonym]
                else:
                    student.paused = message.kind == "pause"
                return
            if message.code != self.code:
                self.stats.refused += 1
                return
            student.last_seen, student.face, student.paused = now, message.face, False
            student.probs = np.asarray(message.probs, np.float32) if message.probs is not None else None
            student.facing = message.facing if self.facing else None
            self.stats.updates += 1

    def refuse(self) -> None:
        with self._lock:
            self.stats.refused += 1

    def leave(self, pseudonym: str) -> None:
        """The student left or the connection closed: gone from every number at once."""
        with self._lock:
            self._students.pop(pseudonym, None)

    # --- what the class shows ----------------------------------------------------------------
    def _present(self, now: float) -> Detections:
        """Faces present now, one row per student, as the pipeline's container (no boxes: browsers keep them)."""
        rows = [
            s
            for s in self._students.values()
            if s.face and not s.paused and s.last_seen is not None and now - s.last_seen <= STALE_S
        ]
        n = len(rows)
        probs = np.full((n, len(EMOTIONS)), np.nan, np.float32)
        uncertain = np.zeros(n, bool)
        readable = [i for i, s in enumerate(rows) if s.probs is not None]
        if readable:
            calibrated = self.readout.calibrate(np.stack([rows[i].probs for i in readable]))  # type: ignore[misc]
            probs[readable] = calibrated
            uncertain[readable] = self.readout.decide(calibrated, calibrated=True) == UNCERTAIN
        uncertain[[i for i, s in enumerate(rows) if s.probs is None]] = True
        probs[uncertain & np.isnan(probs).any(axis=1)] = 1.0 / len(EMOTIONS)  # present, not read
        return Detections(
            np.zeros((n, 4), np.float32),
            np.ones(n, np.float32),
            track_id=np.array([s.number for s in rows], np.int64),
            probs=probs,
            uncertain=uncertain,
            pose=np.array([FACING_POSES[s.facing] for s in rows], np.float32).reshape(n, 3),
        )

    def tick(self, now: float | None = None) -> None:
        """Once a second: the faces present now go into the mood over time (bins close as time passes)."""
        now = now or time.time()
        with self._lock:
            if self.closed:
                return
            present = self._present(now)
            self.ticks += 1
            self.faces_total += len(present)
            self._bins.extend(self._aggregator.add(now - self.created, present))
            new, self._saved = self._bins[self._saved :], len(self._bins)
        if self.recorder is not None and (new or time.time() - self._last_beat > HEARTBEAT_S):
            self.recorder.save([], new)  # raw bins (the store applies k when read), or a heartbeat
            self._last_beat = time.time()

    def set_k(self, k: int) -> int:
        """The teacher's k, never below the k students were shown when they joined; returns the k in force."""
        with self._lock:
            self.k = max(check_min_faces(k), self.min_k)
            return self.k

    def now_view(self, now: float | None = None) -> dict[str, Any]:
        """Counts and the "now" numbers under k: cheap, sent to the teacher after every update."""
        now = now or time.time()
        with self._lock:
            self.last_activity = time.time()
            present = self._present(now)
            view = current_view(present, self.k)
            facing_now = current_facing(present, self.k)
            connected = len(self._students)
            paused = sum(s.paused for s in self._students.values())
            read = int(present.read.sum())
        return {
            "code": self.code,
            "k": self.k,
            "students": connected,
            "paused": paused,
            "faces": len(present),
            "faces_read": read,  # a count, like the faces present: what the k rule counts
            "shares": None if view is None else view["shares"],
            "valence": None if view is None else view["valence"],
            "mood_margin": None if view is None else view["mood_margin"],
            "hidden": view is None,
            # facing the screen now, under k on its own count (privacy.current_facing); None when hidden
            "facing_share": None if facing_now is None else facing_now["facing_share"],
            "looking_down_share": None if facing_now is None else facing_now["looking_down_share"],
            "note": HIDDEN_NOTE,
            "turned_away": self.stats.turned_away,
        }

    def idle(self, now: float | None = None) -> bool:
        """No student connected and nobody (no student, no dashboard) active for ``IDLE_CLOSE_S``."""
        with self._lock:
            return not self._students and (now or time.time()) - self.last_activity > IDLE_CLOSE_S

    def bins(self) -> list[MoodBin]:
        """The mood over time so far, under k (flags computed over what is shown)."""
        with self._lock:
            return apply_k(self._bins, self.k)

    def end(self) -> tuple[list[MoodBin], Summary]:
        """Close the class: the open bin is closed, students are dropped, a recorded class is closed as
        "finished"; returns the raw bins and the summary (class numbers under k only)."""
        with self._lock:
            was_open = not self.closed
            if was_open:
                self._bins.extend(self._aggregator.flush())
            self.closed = True
            self._students.clear()
            raw = list(self._bins)
            summary = build_summary(
                input=f"student-side class {self.code}",
                kind=SESSION_KIND,
                frames=self.ticks,
                frames_analysed=self.ticks,
                faces=self.faces_total,
                tracks=self._numbers,
                wall_s=time.time() - self.created,
                detector="yunet (in the students' browsers)",
                model=self.model,
                rate_hz=1.0 / TICK_S,
                raw_bins=raw,
                min_faces=self.k,
                facing=self.facing,
            )
            new, self._saved = self._bins[self._saved :], len(self._bins)
        if was_open and self.recorder is not None:
            self.recorder.save([], new)
            self.recorder.close("finished", summary)
        return raw, summary
