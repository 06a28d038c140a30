"""Real-call robustness: the degradations the benchmark applies, the training-time simulation, the
readout (calibration, deployment prior, uncertain), fine-tuning from shipped weights and the bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classmood.benchmarks.degradations import CONDITIONS, gaussian_blur, h264, low_contrast
from classmood.expression.calibrate import classroom_prior, fit_temperature, prior_weights, training_prior
from classmood.expression.readout import UNCERTAIN, Readout, detail
from classmood.labels import EMOTIONS
from tests.conftest import synthetic_faces

NEUTRAL, HAPPY = EMOTIONS.index("neutral"), EMOTIONS.index("happy")


def _faces(n: int = 12) -> np.ndarray:
    images, _ = synthetic_faces(n)
    # a textured face-like pattern so blur and coding have detail to remove
    yy, xx = np.mgrid[:48, :48]
    pattern = (127 + 80 * np.sin(xx / 2.5) * np.cos(yy / 3.0)).astype(np.uint8)
    return np.clip(images.astype(np.int32) // 2 + pattern // 2, 0, 255).astype(np.uint8)


def test_every_condition_keeps_shape_and_range() -> None:
    faces = _faces()
    for cond in CONDITIONS:
        out = cond.apply(faces, np.random.default_rng(0))
        assert out.shape == faces.shape and out.dtype == np.uint8, cond.name
    clean = next(c for c in CONDITIONS if c.name == "clean")
    assert (clean.apply(faces, np.random.default_rng(0)) == faces).all()


def test_detail_falls_with_blur_but_not_with_contrast() -> None:
    faces = _faces()
    sharp, blurred = detail(faces).mean(), detail(gaussian_blur(faces, 1.5)).mean()
    assert blurred < 0.5 * sharp
    flat = detail(low_contrast(faces, 0.4)).mean()
    assert abs(flat - sharp) < 0.15 * sharp  # a dim face is not a blurred face


def test_h264_round_trip_keeps_faces_recognisable() -> None:
    faces = _faces(30)
    coded = h264(faces, 40, 30, np.random.default_rng(0))
    err = np.abs(coded.astype(np.float32) - faces).mean()
    assert 0.5 < err < 25  # coded (not identical), but still the same faces


def test_readout_default_is_the_identity() -> None:
    p = np.random.default_rng(0).dirichlet(np.ones(7), size=20).astype(np.float32)
    np.testing.assert_array_equal(Readout().calibrate(p), p)
    assert (Readout().decide(p) == p.argmax(1)).all()


def test_temperature_keeps_the_decision_and_prior_moves_it() -> None:
    p = np.array([[0.30, 0.0, 0.05, 0.05, 0.30, 0.05, 0.25]], np.float32)
    sharp = Readout(temperature=0.5).calibrate(p)
    assert sharp.argmax() == p.argmax() and sharp.max() > p.max()
    np.testing.assert_allclose(sharp.sum(), 1, atol=1e-6)
    weights = prior_weights(classroom_prior(0.5), training_prior(0.5))
    assert max(weights) == 1 and weights[NEUTRAL] == 1
    assert Readout(prior=weights).decide(p)[0] == NEUTRAL  # a close call between angry, sad and neutral


def test_uncertain_for_unconfident_small_or_blurred_faces() -> None:
    faces = _faces(3)
    confident = np.tile(np.eye(7, dtype=np.float32)[HAPPY] * 0.9 + 0.1 / 7, (3, 1))
    readout = Readout(min_confidence=0.5, min_face_px=20, min_detail=0.2)
    assert (readout.decide(confident, faces, np.array([40, 40, 40])) == HAPPY).all()
    flat = np.full((3, 7), 1 / 7, np.float32)
    assert (readout.decide(flat, faces, np.array([40, 40, 40])) == UNCERTAIN).all()
    assert readout.decide(confident, faces, np.array([40, 12, 40]))[1] == UNCERTAIN
    blurred = gaussian_blur(faces, 2.5)
    assert (readout.decide(confident, blurred, np.array([40, 40, 40])) == UNCERTAIN).all()


def test_readout_metadata_round_trip_and_validation() -> None:
    r = Readout(0.9, tuple(float(w) for w in np.linspace(0.2, 1, 7)), 0.4, 18, 0.15)
    assert Readout.from_metadata({"classmood.readout": r.to_metadata()}) == r
    assert Readout.from_metadata({}) == Readout()
    with pytest.raises(ValueError):
        Readout(temperature=0)
    with pytest.raises(ValueError):
        Readout(prior=(1.0, 2.0))


def test_classroom_prior_is_a_distribution_with_the_stated_neutral_share() -> None:
    p = classroom_prior(0.5)
    assert p.sum() == pytest.approx(1) and p[NEUTRAL] == pytest.approx(0.5)
    t = training_prior(0.5)  # class-weighted training behaves like ~16 % neutral, ~16 % sad
    assert t[NEUTRAL] == pytest.approx(0.164, abs=0.005) and t[EMOTIONS.index("sad")] == pytest.approx(0.162, abs=0.005)
    with pytest.raises(ValueError):
        classroom_prior(1.0)


def test_fit_temperature_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (4000, 7))
    labels = np.array([rng.choice(7, p=np.exp(r) / np.exp(r).sum()) for r in logits])
    over = np.exp(logits / 2.0)  # a model twice too flat: T = 0.5 undoes it
    probs = over / over.sum(1, keepdims=True)
    assert fit_temperature(probs, labels) == pytest.approx(0.5, abs=0.05)


def test_shipped_model_with_a_bad_readout_is_refused(tmp_path: Path, tiny_run: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from classmood.errors import ClassmoodError
    from classmood.expression.model import ExpressionModel

    proto = onnx.load(str(tiny_run / "model.onnx"))
    proto.metadata_props.append(onnx.StringStringEntryProto(key="classmood.readout", value='{"temperature": -1}'))
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(ClassmoodError, match="invalid readout"):
        ExpressionModel(bad)


def test_written_readout_is_used_by_evaluate_and_keeps_the_raw_numbers(
    tmp_path: Path, tiny_run: Path, fer_csv: Path
) -> None:
    pytest.importorskip("onnx")
    import shutil

    from classmood.expression.evaluate import evaluate
    from classmood.expression.model import ExpressionModel
    from classmood.training.ship_readout import write_readout

    path = tmp_path / "m.onnx"
    shutil.copy(tiny_run / "model.onnx", path)
    before = evaluate(fer_csv, "PublicTest", str(path))["PublicTest"]
    assert "deployed" not in before
    readout = Readout(0.8, None, 0.99)
    write_readout(path, readout)
    assert ExpressionModel(path).readout == readout
    after = evaluate(fer_csv, "PublicTest", str(path))["PublicTest"]
    assert after["accuracy"] == before["accuracy"]  # the judged number stays the raw model's
    d = after["deployed"]
    assert 0 <= d["coverage"] < 1 and len(d["confusion"][0]) == 8  # 8th column: uncertain
    assert d["accuracy"] <= before["accuracy"]
    write_readout(path, Readout())
    assert ExpressionModel(path).readout == Readout()


def test_robust_bench_reports_every_condition(tiny_run: Path, fer_csv: Path) -> None:
    from classmood.benchmarks.robust import format_table, run_robust_bench

    result = run_robust_bench(fer_csv, [str(tiny_run / "model.onnx")], gallery=False)
    json.dumps(result)  # printable as --json
    scores = result["models"][str(tiny_run / "model.onnx")]["scores"]["shipped"]
    assert set(scores) == {c.name for c in CONDITIONS}
    for row in scores.values():
        assert 0 <= row["neutral_as_negative"] <= 1 and 0 <= row["happy_recognised"] <= 1
        assert row["coverage"] == 1.0  # no readout: every face is read
    assert "neutral->neg" in format_table(result)


torch = pytest.importorskip("torch", reason="training needs PyTorch (pip install 'classmood[train]')")


def test_degrade_batch_is_seeded_bounded_and_off_by_default() -> None:
    from classmood.training.degrade import DegradeConfig, degrade_batch

    x = torch.from_numpy(_faces(64)).float().unsqueeze(1)
    assert degrade_batch(x, DegradeConfig()) is x
    cfg = DegradeConfig(p=1.0)
    a = degrade_batch(x, cfg, torch.Generator().manual_seed(3))
    b = degrade_batch(x, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 255
    assert (a - x).abs().mean() > 5
    sharp = detail(x[:, 0].numpy().astype(np.uint8)).mean()
    soft = detail(a[:, 0].round().numpy().astype(np.uint8)).mean()
    assert soft < 0.8 * sharp  # the simulated call removes detail, as a real one does


def test_jpeg_like_loses_more_at_lower_quality() -> None:
    from classmood.training.degrade import jpeg_like

    x = torch.from_numpy(_faces(8)).float().unsqueeze(1)
    err = [(jpeg_like(x, torch.full((8,), q)) - x).abs().mean().item() for q in (95.0, 50.0, 10.0)]
    assert err[0] < err[1] < err[2] and err[0] < 3


def test_onnx_weights_rebuild_the_exported_network(tiny_run: Path) -> None:
    from classmood.expression.model import ExpressionModel
    from classmood.training.from_onnx import load_onnx_weights

    model = load_onnx_weights(tiny_run / "model.onnx", "plain_cnn_small")
    faces = _faces(9).astype(np.float32)
    with torch.no_grad():
        x = torch.from_numpy(faces).unsqueeze(1)
        probs = ((model(x).softmax(1) + model(x.flip(3)).softmax(1)) / 2).numpy()
    np.testing.assert_allclose(probs, ExpressionModel(tiny_run / "model.onnx").predict_proba(faces), atol=1e-5)
    with pytest.raises(ValueError, match="do not fit"):
        load_onnx_weights(tiny_run / "model.onnx", "resnet18_lite")


def test_match_contrast_makes_a_dim_face_read_like_a_bright_one() -> None:
    from classmood.models import create_model

    model = create_model("plain_cnn_small", match_contrast=True).eval()
    faces = torch.from_numpy(_faces(4)).float().unsqueeze(1)
    dim = (faces - faces.mean()) * 0.3 + 60
    with torch.no_grad():
        torch.testing.assert_close(model(dim).softmax(1), model(faces).softmax(1), atol=1e-4, rtol=0)


def test_robust_fine_tune_from_onnx_with_offline_teachers(tmp_path: Path, tiny_run: Path) -> None:
    from classmood.training.train import TrainConfig, train
    from tests.conftest import write_fer_csv

    csv = write_fer_csv(tmp_path / "fer.csv", {"Training": 64, "PublicTest": 14})
    onnx_path = str(tiny_run / "model.onnx")
    cfg = TrainConfig.from_dict(
        {
            "arch": "plain_cnn_small",
            "arch_kwargs": {"match_contrast": True},
            "data": str(csv),
            "out": str(tmp_path / "runs" / "ft"),
            "epochs": 1,
            "batch_size": 16,
            "lr": 0.01,
            "threads": 2,
            "init_onnx": onnx_path,
            "freeze_bn": True,
            "teacher_onnx": [onnx_path],
            "degrade": {"p": 0.5},
        }
    )
    summary = train(cfg)
    assert summary["initialised_from"] == onnx_path and onnx_path in summary["distilled_from"]
    row = json.loads((tmp_path / "runs" / "ft" / "metrics.jsonl").read_text().splitlines()[0])
    assert 0 <= row["val_degraded_accuracy"] <= 1
    assert list((tmp_path / "runs" / "_teacher_cache").glob("teacher_probs_*.npy"))  # computed once, reused
