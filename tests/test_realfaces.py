"""The real-face benchmark: labels are read and checked, faces are matched to pipeline boxes one to one,
and the figures count what they say (found, read, calm read negative, smiles recognised)."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from classmood.benchmarks import realfaces
from classmood.errors import ClassmoodError
from classmood.imageio import read_image

HEADER = "image,face,x,y,w,h,expression,split,source_id\n"


def _hopper() -> np.ndarray:
    return read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _bench(tmp_path: Path, rows: list[str]) -> Path:
    root = tmp_path / "real"
    root.mkdir()
    cv2.imwrite(str(root / "hopper.jpg"), _hopper())
    # the same portrait twice side by side: two faces in one image, both real
    cv2.imwrite(str(root / "pair.jpg"), np.concatenate([_hopper(), _hopper()], axis=1))
    (root / realfaces.LABELS_FILE).write_text(HEADER + "".join(r + "\n" for r in rows))
    return root


def test_match_is_one_to_one_and_needs_overlap() -> None:
    truth = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [100, 100, 110, 110]], np.float32)
    found = np.array([[1, 1, 11, 11], [0, 0, 10, 10], [21, 0, 31, 10]], np.float32)
    pairs = realfaces.match(truth, found)
    assert pairs[0] in (0, 1) and pairs[1] == 2 and 2 not in pairs
    assert len(set(pairs.values())) == len(pairs)


def test_bad_labels_are_refused_with_the_line(tmp_path: Path) -> None:
    root = _bench(tmp_path, ["hopper.jpg,0,182,121,171,211,smirk,report,mpl"])
    with pytest.raises(ClassmoodError, match="line 2"):
        realfaces.load_labels(root)
    (root / realfaces.LABELS_FILE).write_text(HEADER + "missing.jpg,0,1,1,5,5,neutral,tune,x\n")
    with pytest.raises(ClassmoodError, match="missing"):
        realfaces.load_labels(root)


def test_scores_faces_through_the_pipeline(tmp_path: Path) -> None:
    # Grace Hopper's portrait (matplotlib's sample data) at her face box, plus a "face" where there is
    # none (the background top-left): found 1 of 2 in the report split, the pair found 2 of 2 in tune.
    root = _bench(
        tmp_path,
        [
            "hopper.jpg,0,182,121,171,211,neutral,report,mpl",
            "hopper.jpg,1,0,0,60,60,happy,report,mpl",
            "pair.jpg,0,182,121,171,211,neutral,tune,mpl",
            "pair.jpg,1,694,121,171,211,unclear,tune,mpl",
        ],
    )
    result = realfaces.run(["fast"], root)
    report, tune = result["models"]["fast"]["report"], result["models"]["fast"]["tune"]
    assert report["faces"] == 2 and report["found"]["k"] == 1
    assert report["smiles_recognised"]["n"] == 0  # the one "smile" was never found, so never read
    assert tune["found"]["k"] == 2
    calm = report["calm_read_negative"]
    assert calm["n"] in (0, 1) and calm["k"] <= calm["n"]
    low, high = calm["ci95"] if calm["n"] else (0.0, 1.0)
    assert 0.0 <= low <= high <= 1.0
    assert result["labels"]["tune"]["unclear"] == 1 and result["models"]["fast"]["unmatched_boxes"] == 0
    text = realfaces.format_table(result, "report")
    assert "fast" in text and "calm" in text


def test_wilson_interval_brackets_the_share() -> None:
    low, high = realfaces.wilson(12, 100)
    assert low < 0.12 < high and high - low < 0.15
    assert realfaces.wilson(0, 20)[0] == 0.0


def test_another_readout_is_applied_to_the_same_readings(tmp_path: Path) -> None:
    from classmood.expression.readout import Readout

    root = _bench(
        tmp_path, ["pair.jpg,0,182,121,171,211,neutral,tune,mpl", "pair.jpg,1,694,121,171,211,happy,tune,mpl"]
    )
    results, _ = realfaces.read_faces(realfaces.load_labels(root), "fast")
    assert all(r.found and r.raw_probs is not None and r.crop is not None for r in results)
    never = realfaces.score(realfaces.with_readout(results, Readout(min_confidence=1.01)), "tune")
    assert never["read"]["k"] == 0 and never["found"]["k"] == 2
    always = realfaces.score(realfaces.with_readout(results, Readout()), "tune")
    assert always["read"]["k"] == 2


def test_choose_readout_meets_the_real_face_goals_then_prefers_publictest_balance() -> None:
    row = {"read": 0.95, "accuracy": 0.9, "calm_read_negative": 0.05, "smiles_recognised": 0.9}
    rows = [
        {**row, "read": 0.80, "publictest_ferplus_macro_f1_read": 0.9, "tag": "reads too few"},
        {**row, "calm_read_negative": 0.2, "publictest_ferplus_macro_f1_read": 0.9, "tag": "calm read negative"},
        {**row, "calm_read_negative": 0.0, "publictest_ferplus_macro_f1_read": 0.6, "tag": "hides negatives"},
        {**row, "publictest_ferplus_macro_f1_read": 0.7, "tag": "balanced"},
    ]
    assert realfaces.choose_readout(rows)["tag"] == "balanced"
    # nothing meets the goals: the best trade-off among those that read enough
    short = [
        {**row, "smiles_recognised": 0.6, "calm_read_negative": 0.1, "tag": "a"},
        {**row, "smiles_recognised": 0.8, "calm_read_negative": 0.15, "tag": "b"},
    ]
    assert realfaces.choose_readout(short)["tag"] == "b"
