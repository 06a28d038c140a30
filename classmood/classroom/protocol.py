"""What a student's browser may send, checked field by field: numbers only, never pixels.

One JSON text message per update over the student's WebSocket::

    {"type": "update", "class": "K7QF2M", "pseudonym": "p-3f9a1c", "t": 1764694800.25,
     "face": true, "probs": [0.02, 0.0, 0.01, 0.61, 0.03, 0.02, 0.31], "facing": 1}

``probs`` are the model's seven probabilities in ``labels.EMOTIONS`` order, or ``null`` when a face
is present but could not be read (too small or too blurred, decided in the browser by the model's
readout); ``face: false`` carries no probabilities. ``t`` is the student's clock in seconds since
the epoch (used only to measure delay). ``facing`` is the face's apparent head orientation as the
page decides it with the server's rule (``vision/pose.py``): ``1`` turned toward the screen, ``0``
turned away, ``-1`` turned away looking down, ``null`` unclear or no face. Besides updates a student
sends ``{"type": "pause"}``, ``{"type": "resume"}`` or ``{"type": "leave"}``. Anything else - another
key, a longer list, a string where a number belongs, a message over ``MAX_MESSAGE_BYTES`` - is refused
and counted, so an image cannot travel in this protocol even by mistake.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from classmood.labels import EMOTIONS

MAX_MESSAGE_BYTES = 512  # an update is ~150 bytes; a 48x48 crop alone would be 2,304
UPDATE_KEYS = frozenset({"type", "class", "pseudonym", "t", "face", "probs", "facing"})
TOWARD, AWAY, LOOKING_DOWN = 1, 0, -1  # the values of ``facing`` (null: unclear)
FACING_VALUES = (TOWARD, AWAY, LOOKING_DOWN)
CONTROL_TYPES = ("pause", "resume", "leave")


class ProtocolError(ValueError):
    """A message that does not follow the protocol (its text says which rule)."""


@dataclass(frozen=True)
class StudentUpdate:
    """One student's browser reporting its own face: never an image, only these numbers (its name
    keeps it apart from ``pipeline.Update``, one analysed frame of a whole video)."""

    code: str
    pseudonym: str
    t: float
    face: bool
    probs: tuple[float, ...] | None
    facing: int | None = None  # TOWARD, AWAY, LOOKING_DOWN, or None (unclear, or no face)


@dataclass(frozen=True)
class Control:
    kind: str  # one of CONTROL_TYPES


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{name} must be a finite number")
    try:
        number = float(value)  # a JSON integer of hundreds of digits does not fit a float
    except OverflowError:
        raise ProtocolError(f"{name} must be a finite number") from None
    if not math.isfinite(number):
        raise ProtocolError(f"{name} must be a finite number")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once (``{"facing": "x", "facing": 1}`` is not "exactly the keys")."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ProtocolError("a key is given twice")
    return dict(pairs)


def parse(text: str | bytes) -> StudentUpdate | Control:
    """One message from a student, or ``ProtocolError``."""
    if isinstance(text, bytes):
        raise ProtocolError("binary messages are not accepted")
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message longer than {MAX_MESSAGE_BYTES} bytes")
    try:
        msg = json.loads(text, object_pairs_hook=_unique_keys)
    except ProtocolError:
        raise
    except ValueError:
        raise ProtocolError("not JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a message is a JSON object")
    kind = msg.get("type")
    if kind in CONTROL_TYPES:
        if set(msg) != {"type"}:
            raise ProtocolError(f"{kind} takes no other keys")
        return Control(kind)
    if kind != "update":
        raise ProtocolError(f"unknown message type {kind!r}")
    if set(msg) != UPDATE_KEYS:
        raise ProtocolError(f"an update has exactly the keys {sorted(UPDATE_KEYS)}")
    code, pseudonym, face, probs = msg["class"], msg["pseudonym"], msg["face"], msg["probs"]
    if not isinstance(code, str) or not isinstance(pseudonym, str) or len(code) > 16 or len(pseudonym) > 16:
        raise ProtocolError("class and pseudonym are short strings")
    if not isinstance(face, bool):
        raise ProtocolError("face is true or false")
    t = _number(msg["t"], "t")
    facing = msg["facing"]
    if facing is not None:
        if isinstance(facing, bool) or not isinstance(facing, int) or facing not in FACING_VALUES:
            raise ProtocolError("facing is 1, 0, -1 or null")
        if not face:
            raise ProtocolError("facing needs a face")
    if probs is None:
        return StudentUpdate(code, pseudonym, t, face, None, facing)
    if not face:
        raise ProtocolError("probabilities need a face")
    if not isinstance(probs, list) or len(probs) != len(EMOTIONS):
        raise ProtocolError(f"probs is a list of {len(EMOTIONS)} numbers or null")
    values = tuple(_number(p, "each probability") for p in probs)
    if min(values) < 0 or max(values) > 1 or abs(sum(values) - 1) > 0.02:
        raise ProtocolError("probabilities lie in 0..1 and sum to 1")
    return StudentUpdate(code, pseudonym, t, face, values, facing)


def update_message(
    code: str, pseudonym: str, t: float, face: bool, probs: list[float] | None, facing: int | None = None
) -> str:
    """The JSON text of an update, as the student page builds it (used by the light clients)."""
    msg = {"type": "update", "class": code, "pseudonym": pseudonym, "t": t, "face": face, "probs": probs}
    return json.dumps({**msg, "facing": facing}, separators=(",", ":"))
