"""The k rule in every output: with 1, k-1 and k faces on screen, class-level numbers appear only at k.

One video per face count goes through ``classmood analyze --annotate --save``; then summary.json,
class_mood.csv, report.html, the session store (bins, summary, export, comparison), ``sessions show``
and the live worker are checked. Per-face outputs (faces.csv, the report's per-person view) are the
analyst's explicit choice and are checked to stay explicit.
"""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from classmood.analytics.privacy import apply_k, check_min_faces, class_summary
from classmood.cli import main
from classmood.containers import MoodBin
from classmood.errors import ClassmoodError
from classmood.labels import EMOTIONS
from classmood.live import LiveSession
from classmood.pipeline import PipelineConfig
from classmood.store import open_store
from tests.test_pipeline import write_video
from tests.test_vision import gallery

K = 4
COUNTS = (1, K - 1, K)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """``analyze --annotate --save`` of a 2 s video with 1, k-1 and k faces, all into one database."""
    root = tmp_path_factory.mktemp("privacy")
    out = {}
    for n in COUNTS:
        frame, _ = gallery(rows=1, cols=n, face_px=80)
        video = write_video(root / f"faces{n}.mp4", [frame] * 20)  # 2 s at 10 fps
        out[n] = root / f"out{n}"
        args = ["analyze", str(video), "--out", str(out[n]), "--annotate", "--min-faces", str(K), "--bin", "1"]
        assert main([*args, "--save", "--db", str(root / "s.db")]) == 0
    return out


def test_summary_json_has_class_numbers_only_at_k(runs: dict[int, Path]) -> None:
    for n, out in runs.items():
        summary = json.loads((out / "summary.json").read_text())
        assert "shares" not in summary  # no per-face shares at the top level any more
        numbers = summary["class"]
        assert numbers["min_faces"] == K
        if n < K:
            assert numbers["shares"] is None and numbers["valence"] is None and numbers["uncertain_share"] is None
            assert numbers["bins_shown"] == 0 and numbers["bins_hidden"] > 0
        else:
            assert numbers["shares"] is not None and sum(numbers["shares"].values()) == pytest.approx(1.0)
            assert numbers["bins_shown"] > 0


def test_class_mood_csv_is_blank_below_k(runs: dict[int, Path]) -> None:
    for n, out in runs.items():
        with open(out / "class_mood.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows
        for row in rows:
            blank = all(row[f"share_{e}"] == "" and row[f"p_{e}"] == "" for e in EMOTIONS)
            assert blank == (n < K) and (row["valence"] == "") == (n < K) and (row["suppressed"] == "True") == (n < K)
            assert "negative_jump" not in row["flags"] or n >= K


def test_report_shows_no_class_or_person_numbers_below_k(runs: dict[int, Path]) -> None:
    for n, out in runs.items():
        text = (out / "report.html").read_text()
        assert "<td>#" not in text and "Per-person view" not in text  # per-person views: off by default
        assert "per-track" in text  # ... and the report says how to ask for them
        charts = text.count("data:image/png;base64,")
        if n < K:
            assert charts == 0 and f"No moment had at least {K} faces read" in text
            assert "%</td>" not in text  # no share in any table either
            for label in ("Mostly", "Mood score", "Faces read", "Facing the screen"):  # nor does the headline
                assert re.search(rf'"label">{label}</div>\s*<div class="value">—<', text), label
        else:
            assert charts == 3  # class mood over time, facing the screen over time, expression shares


def test_store_applies_k_to_bins_summary_export_and_comparison(runs: dict[int, Path], tmp_path: Path) -> None:
    store = open_store(str(next(iter(runs.values())).parent / "s.db"))  # a plain path works as --db
    table = store.list_sessions().sort_values("id")
    ids = dict(zip(COUNTS, table["id"].tolist(), strict=True))
    for n, sid in ids.items():
        bins = store.bins(sid)  # the session's own k
        assert bins["share_happy"].isna().all() == (n < K) and bins["valence"].isna().all() == (n < K)
        assert (store.summary(sid)["class"]["shares"] is None) == (n < K)
        assert store.session(sid)["summary"]["class"]["min_faces"] == K
        paths = store.export(sid, tmp_path / str(n))
        exported = json.loads(paths[2].read_text())
        assert (exported["summary"]["class"]["shares"] is None) == (n < K)
        with open(paths[1], newline="") as fh:
            assert all((r["share_happy"] == "") == (n < K) for r in csv.DictReader(fh))
        # a changed k re-applies to what was saved: k = 1 shows the one-face session, k = 50 hides all
        assert store.bins(sid, min_faces=1)["share_happy"].notna().any()
        assert store.bins(sid, min_faces=50)["share_happy"].isna().all()
    diff = store.compare(ids[1], ids[K])
    assert np.isnan(diff.loc["share_happy", "a"]) and not np.isnan(diff.loc["share_happy", "b"])
    assert diff.loc["faces", "a"] == pytest.approx(1.0)  # counts are not expressions: shown
    store.close()


def test_sessions_show_prints_no_class_numbers_below_k(runs: dict[int, Path], capsys: pytest.CaptureFixture) -> None:
    db = str(next(iter(runs.values())).parent / "s.db")
    assert main(["sessions", "show", "1", "--db", db]) == 0
    text = capsys.readouterr().out
    assert '"shares": null' in text and '"happy"' not in text
    assert main(["sessions", "show", "1", "--db", db, "--min-faces", "1"]) == 0
    assert '"happy"' in capsys.readouterr().out


def test_live_snapshot_and_summary_follow_k() -> None:
    for n in COUNTS:
        frame, _ = gallery(rows=1, cols=n, face_px=80)
        live = LiveSession("gallery", "k", PipelineConfig(rate_hz=0, min_faces=K)).start()
        live.submit(frame)
        for _ in range(600):
            if live.snapshot().analysed >= 1:
                break
            time.sleep(0.05)
        snap = live.snapshot()
        assert snap.faces_now == n
        assert (snap.shares is None) == (n < K) and (snap.series[-1]["valence"] is None) == (n < K)
        live.stop()
        assert (live.summary()["class"]["shares"] is None) == (n < K)
        assert all(b.suppressed == (n < K) for b in live.snapshot().bins)


def test_k_must_be_at_least_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for bad in (0, -3, 2.5, float("nan"), True, "5"):
        with pytest.raises(ClassmoodError, match="at least 1"):
            check_min_faces(bad)
    with pytest.raises(ClassmoodError):
        PipelineConfig(min_faces=0)
    frame, _ = gallery(rows=1, cols=1)
    video = write_video(tmp_path / "v.mp4", [frame] * 3)
    assert main(["analyze", str(video), "--out", str(tmp_path / "o"), "--min-faces", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_apply_k_blanks_and_flags_only_what_stays_shown() -> None:
    def mood_bin(start: float, faces: float, negative: float) -> MoodBin:
        shares = {e: 0.0 for e in EMOTIONS} | {"sad": negative, "neutral": 1 - negative}
        return MoodBin(start, start + 5, 10, faces, int(faces), False, shares, shares, -negative, negative)

    raw = [mood_bin(0, 6, 0.1), mood_bin(5, 2, 0.9), mood_bin(10, 6, 0.2)]
    shown = apply_k(raw, 5)
    assert shown[1].suppressed and shown[1].shares is None and "negative_jump" not in shown[1].flags
    assert shown[2].flags == []  # 0.1 -> 0.2 over the last shown bin: no jump (0.9 was hidden)
    assert raw[1].shares is not None  # the raw bins are untouched
    summary = class_summary(raw, 5)
    assert summary["shares"]["sad"] == pytest.approx(0.15) and summary["bins_hidden"] == 1
    assert class_summary(raw, 7)["shares"] is None
