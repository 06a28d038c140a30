"""The models that ship in the package: present, small, loadable offline, and as accurate as reported."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from classmood.expression.evaluate import evaluate
from classmood.expression.model import SHIPPED_MODELS, load_model, shipped_model_path
from classmood.labels import EMOTIONS
from classmood.weights.manifest import read_manifest
from tests.conftest import SHARED_FER


@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
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
@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_shipped_accuracy_on_publictest_is_what_we_report(name: str) -> None:
    reported = read_manifest()[name]["val"]
    measured = evaluate(SHARED_FER, "PublicTest", name)["PublicTest"]  # the raw model, as published results are
    assert measured["n"] == 3589
    assert measured["accuracy"] >= reported["accuracy"] - 0.001, (measured["accuracy"], reported["accuracy"])
    assert measured["macro_f1"] >= reported["macro_f1"] - 0.002


def test_ensemble_is_the_mean_of_its_shipped_members() -> None:
    from classmood.expression.model import ENSEMBLE_MEMBERS, EnsembleModel, load_model

    assert "accurate" in ENSEMBLE_MEMBERS and len(ENSEMBLE_MEMBERS) > 1 and set(ENSEMBLE_MEMBERS) <= set(SHIPPED_MODELS)
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    ensemble = load_model("ensemble")
    assert isinstance(ensemble, EnsembleModel) and ensemble.name == "ensemble"
    members = [load_model(n) for n in ENSEMBLE_MEMBERS]
    expected = np.mean([m.predict_proba(faces, raw=True) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(faces, raw=True), expected, atol=1e-6)
    # read the way its first member is read (one calibration for the averaged probabilities)
    np.testing.assert_allclose(ensemble.predict_proba(faces), members[0].readout.calibrate(expected), atol=1e-6)
    assert ensemble.file_bytes == sum(m.file_bytes for m in members)


@pytest.mark.skipif(
    not (SHARED_FER / "fer2013_publictest.npy.xz").is_file(),
    reason=f"FER2013 PublicTest not found at {SHARED_FER} (the full dataset is not part of the repo)",
)
def test_ensemble_is_more_accurate_than_accurate_alone() -> None:
    """What --model ensemble is for: paying its members' time buys accuracy over the best single model."""
    ensemble = evaluate(SHARED_FER, "PublicTest", "ensemble")["PublicTest"]
    assert ensemble["accuracy"] > read_manifest()["accurate"]["val"]["accuracy"] + 0.003
