"""Facing the screen, class-level (issue 24): counted per bin beside the expressions, under the k rule on its
own count, in every output a teacher reads (class_mood.csv, summary.json, faces.csv, the report)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from classmood.analytics.mood import MoodAggregator
from classmood.analytics.privacy import apply_k, blank_below, class_summary, current_facing
from classmood.containers import Detections, MoodBin

REAL = Path(__file__).resolve().parents[1] / "bench" / "realfaces"
TOWARD, AWAY_SIDE, DOWN, NO_POSE = (2.0, -3.0, 0.0), (55.0, 0.0, 0.0), (0.0, -40.0, 0.0), (np.nan,) * 3


def _faces(poses: list[tuple[float, float, float]], read: int) -> Detections:
    """``len(poses)`` faces with these head poses, the first ``read`` of them read (calm), the rest not."""
    n = len(poses)
    probs = np.tile(np.array([0, 0, 0, 0, 0, 0, 1.0], np.float32), (n, 1))
    return Detections(
        np.tile(np.array([0, 0, 50, 60], np.float32), (n, 1)),
        np.ones(n, np.float32),
        track_id=np.arange(n),
        probs=probs,
        uncertain=np.arange(n) >= read,
        pose=np.array(poses, np.float32),
    )


def _one_bin(frames: list[Detections]) -> MoodBin:
    agg = MoodAggregator(bin_s=5.0)
    for i, dets in enumerate(frames):
        assert agg.add(i * 0.5, dets) == []
    (b,) = agg.flush()
    return b


def test_a_bin_counts_the_faces_turned_toward_away_and_down_read_or_not() -> None:
    # frame 1: 3 toward, 1 turned aside, 1 looking down, 1 without landmarks; frame 2: 4 toward, 1 down, 1 without
    b = _one_bin(
        [
            _faces([TOWARD] * 3 + [AWAY_SIDE, DOWN, NO_POSE], read=6),
            _faces([TOWARD] * 4 + [DOWN, NO_POSE], read=2),  # most not read: still counted for facing
        ]
    )
    assert b.faces_oriented == pytest.approx(5.0)  # the faces without a pose count for nothing
    assert b.facing_share == pytest.approx(7 / 10)
    assert b.looking_down_share == pytest.approx(2 / 10)
    row = b.as_row()
    assert row["facing_share"] == 0.7 and row["looking_down_share"] == 0.2 and row["faces_oriented"] == 5.0
    assert MoodBin.from_row(row).facing_share == pytest.approx(0.7)


def test_facing_has_its_own_k_count() -> None:
    turned_away = _one_bin([_faces([AWAY_SIDE] * 5 + [TOWARD], read=1)])  # 6 oriented, 1 read
    few = _one_bin([_faces([TOWARD] * 2 + [NO_POSE] * 6, read=8)])  # 8 read, 2 oriented
    hidden_expr, hidden_facing = apply_k([turned_away, few], 5)
    # a class turned away is unreadable: its expressions are hidden, its facing is not
    assert hidden_expr.shares is None and hidden_expr.facing_share == pytest.approx(1 / 6)
    # two oriented faces would describe two people: hidden, though the expressions of eight are shown
    assert hidden_facing.shares is not None and hidden_facing.facing_share is None
    assert hidden_facing.looking_down_share is None
    summary = class_summary([turned_away, few], 5)
    assert summary["facing_share"] == pytest.approx(1 / 6) and summary["faces_oriented"] == 6.0
    assert class_summary([few], 5)["facing_share"] is None
    # a class with a k floor stores no facing number below it
    (stored,) = blank_below([few.as_row()], 5)
    assert stored["facing_share"] is None and stored["share_neutral"] == 1.0


def test_the_live_view_shows_facing_only_with_k_faces_oriented_now() -> None:
    dets = _faces([TOWARD] * 4 + [DOWN], read=0)
    assert current_facing(dets, 6) is None
    now = current_facing(dets, 5)
    assert now == {"facing_share": 0.8, "looking_down_share": 0.2, "faces_oriented": 5}
    assert current_facing(Detections.empty(), 1) is None


def test_a_real_video_call_reads_as_turned_to_the_screen(tmp_path: Path) -> None:
    """A real 24-person call (bench/realfaces, labelled by eye: 20 toward, 2 away, 2 unclear): every face has a
    pose and a facing word in faces.csv, and the class share facing the screen is the labelled one."""
    from classmood.cli import main

    image = REAL / "18f_video_meeting_grid.jpg"
    assert main(["analyze", str(image), "--out", str(tmp_path / "out"), "--annotate", "--min-faces", "5"]) == 0
    with open(tmp_path / "out" / "faces.csv", newline="") as fh:
        faces = list(csv.DictReader(fh))
    assert len(faces) >= 20
    assert all(f["facing"] in ("toward", "away", "unclear") and f["yaw"] != "" for f in faces)
    with open(REAL / "facing.csv", newline="") as fh:
        labels = [r["facing"] for r in csv.DictReader(fh) if r["image"] == image.name]
    labelled = labels.count("toward") / (labels.count("toward") + labels.count("away"))
    numbers = json.loads((tmp_path / "out" / "summary.json").read_text())["class"]
    assert numbers["facing_share"] == pytest.approx(labelled, abs=0.05)
    with open(tmp_path / "out" / "class_mood.csv", newline="") as fh:
        (row,) = csv.DictReader(fh)
    assert float(row["facing_share"]) == pytest.approx(numbers["facing_share"], abs=1e-3)
    report = (tmp_path / "out" / "report.html").read_text()
    section = report.split("<h2>Facing the screen over time</h2>")[1].split("<h2>")[0]
    assert 'alt="facing the screen over time"' in section and "not inattention" in section
    for word in (" attention", "engagement", "focus"):  # words for what a head's orientation cannot tell
        assert word not in section.lower()


def test_no_facing_estimates_no_orientation_anywhere(tmp_path: Path) -> None:
    """``--no-facing``: a school that wants expressions only gets no head angle, per face or per class."""
    from classmood.cli import main

    out = tmp_path / "out"
    image = str(REAL / "18f_video_meeting_grid.jpg")
    assert main(["analyze", image, "--out", str(out), "--no-facing", "--annotate"]) == 0
    with open(out / "faces.csv", newline="") as fh:
        faces = list(csv.DictReader(fh))
    assert faces and all(f["yaw"] == f["pitch"] == f["roll"] == "" and f["facing"] == "unclear" for f in faces)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["facing"] is False and summary["class"]["facing_share"] is None
    assert summary["class"]["shares"] is not None  # expressions as before
    report = (out / "report.html").read_text()
    assert re.search(r'"label">Facing the screen</div>\s*<div class="value">off<', report)
    assert "Not measured: no head orientation was estimated in this analysis" in report


def test_an_analysis_from_before_facing_says_not_measured_not_hidden(tmp_path: Path) -> None:
    """A folder written before classmood estimated orientation (no ``facing`` in summary.json, no facing
    columns): its rebuilt report says facing was not measured, instead of hiding it under k."""
    from classmood.analysis.report import report_from_dir
    from classmood.cli import main

    out = tmp_path / "old"
    assert main(["analyze", str(REAL / "18f_video_meeting_grid.jpg"), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    del summary["facing"]
    (out / "summary.json").write_text(json.dumps(summary))
    with open(out / "class_mood.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    old = [c for c in rows[0] if c not in ("faces_oriented", "facing_share", "looking_down_share")]
    with open(out / "class_mood.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=old, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    report = report_from_dir(out).read_text()
    assert "Not measured: no head orientation was estimated in this analysis" in report
    assert re.search(r'"label">Facing the screen</div>\s*<div class="value">off<', report)
