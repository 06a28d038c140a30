"""The models that ship in the package: present, small, loadable offline, and as accurate as reported."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from classmood.expression.evaluate import evaluate
from classmood.expression.model import load_model, shipped_model_path
from classmood.labels import EMOTIONS
from classmood.weights.manifest import read_manifest
from classmood.weights.shipped import SHIPPED
from tests.conftest import SHARED_FER


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_model_is_small_and_recorded(name: str) -> None:
    path = shipped_model_path(name)
    assert path.is_file()
    assert path.stat().st_size < 8_000_000, "shipped models must stay a few MB"
    model = load_model(name)
    assert model.metadata["classmood.labels"] == ",".join(EMOTIONS)
    entry = read_manifest()[name]
    assert entry["tta"] == model.metadata["classmood.tta"]
    assert 0.2 < entry["val"]["accuracy"] <= 1


def test_predict_sample_face_from_a_fresh_process() -> None:
    """The bundled sample (a broadly smiling astronaut) reads as happy, with no network and no PyTorch needed."""
    proc = subprocess.run(
        [sys.executable, "-m", "classmood.cli", "predict", "--sample", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (pred,) = json.loads(proc.stdout)
    assert pred["expression"] == "happy"


@pytest.mark.skipif(
    not (SHARED_FER / "fer2013_publictest.npy.xz").is_file(),
    reason=f"FER2013 PublicTest not found at {SHARED_FER} (the full dataset is not part of the repo)",
)
@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_accuracy_on_publictest_is_what_we_report(name: str) -> None:
    reported = read_manifest()[name]["val"]
    # the raw float file, as published results are (the int8 copy is held to its own tolerance below)
    measured = evaluate(SHARED_FER, "PublicTest", load_model(name, precision="float"))["PublicTest"]
    assert measured["n"] == 3589
    assert measured["accuracy"] >= reported["accuracy"] - 0.001, (measured["accuracy"], reported["accuracy"])
    assert measured["macro_f1"] >= reported["macro_f1"] - 0.002


def test_accurate_is_two_networks_averaged_and_both_models_say_how_readable_a_face_is() -> None:
    """accurate holds the plain CNN and fast's network (one file, the mean of their probabilities); both files
    carry the learnt unreadable head and a readout fitted for FER+ targets; retired names answer plainly."""
    from classmood.errors import ClassmoodError

    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    for name in SHIPPED:
        model = load_model(name)
        probs, unreadable = model.predict(faces)
        assert probs.shape == (5, 7) and unreadable is not None and ((unreadable >= 0) & (unreadable <= 1)).all()
        assert model.metadata["classmood.targets"] == "ferplus" and "classmood.readout" in model.metadata
    assert read_manifest()["accurate"]["arch"] == "plain_cnn+plain_cnn_small"
    assert read_manifest()["accurate"]["macs"] == 29528960 + 117450496  # the small and the plain CNN (round 1)
    for retired in ("ensemble", "accurate_alt"):
        with pytest.raises(ClassmoodError, match="retired"):
            load_model(retired)


@pytest.mark.skipif(
    not (SHARED_FER / "fer2013_publictest.npy.xz").is_file(),
    reason=f"FER2013 PublicTest not found at {SHARED_FER} (the full dataset is not part of the repo)",
)
def test_shipped_models_agree_with_ferplus_annotators_as_reported() -> None:
    """Issue 21's goals on PublicTest against FER+ majority labels: accurate >= 84 %, fast >= 80 %, neutral recall
    >= 0.80 for both (the FER2013-label accuracy they give up for it is reported in the README)."""
    for name, goal in (("accurate", 0.84), ("fast", 0.80)):
        plus = evaluate(SHARED_FER, "PublicTest", load_model(name, precision="float"))["PublicTest"]["ferplus"]
        assert plus["n"] == 3162
        assert (
            plus["accuracy"] >= goal and plus["accuracy"] >= read_manifest()[name]["val"]["ferplus"]["accuracy"] - 0.001
        )
        assert plus["per_class_recall"]["neutral"] >= 0.80


@pytest.mark.parametrize("name", list(SHIPPED))
def test_inference_runs_each_models_int8_copy_made_from_the_float_file(name: str) -> None:
    """The int8 copy is what analysis loads by default; it carries the float file's labels, readout and
    learnt balance (a recalibrated float file with a stale copy would read differently) and reads the
    bundled real face as the float file does."""
    import cv2

    from classmood.expression.predict import sample_face_path
    from classmood.imageio import read_image

    float_path, copy_path = shipped_model_path(name), shipped_model_path(name, "int8")
    assert copy_path.is_file() and copy_path.stat().st_size < 0.6 * float_path.stat().st_size
    copy, original = load_model(name), load_model(name, precision="float")
    assert copy.path == copy_path and copy.quantized and not original.quantized
    assert {k: v for k, v in copy.metadata.items() if k != "classmood.quantized"} == original.metadata
    grey = cv2.cvtColor(read_image(sample_face_path()), cv2.COLOR_BGR2GRAY)
    faces = np.stack([cv2.resize(grey[y:, x:], (48, 48)) for x, y in ((0, 0), (8, 4), (16, 0), (4, 12))])
    (p_copy, u_copy), (p_float, u_float) = copy.predict(faces), original.predict(faces)
    assert np.abs(p_copy - p_float).max() < 0.05 and (p_copy.argmax(1) == p_float.argmax(1)).all()
    assert u_copy is not None and u_float is not None and np.abs(u_copy - u_float).max() < 0.05
    assert read_manifest()[name]["int8"]["file_bytes"] == copy_path.stat().st_size


@pytest.mark.skipif(
    not (SHARED_FER / "fer2013_publictest.npy.xz").is_file(),
    reason=f"FER2013 PublicTest not found at {SHARED_FER} (the full dataset is not part of the repo)",
)
@pytest.mark.parametrize("name", list(SHIPPED))
def test_int8_copies_lose_at_most_half_a_point_on_publictest(name: str) -> None:
    copy = evaluate(SHARED_FER, "PublicTest", load_model(name))["PublicTest"]
    original = evaluate(SHARED_FER, "PublicTest", load_model(name, precision="float"))["PublicTest"]
    assert copy["accuracy"] >= original["accuracy"] - 0.005
    assert copy["ferplus"]["accuracy"] >= original["ferplus"]["accuracy"] - 0.005
