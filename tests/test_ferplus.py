"""FER+ votes: reading and aligning them, soft targets and majority labels, training on them, the unreadable
head, and evaluation on both label sets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from classmood.data import ferplus as fp
from classmood.data import load_splits
from classmood.labels import EMOTIONS
from tests.conftest import synthetic_faces

HEADER = "Usage,row,ferplus_image," + ",".join(fp.VOTE_COLUMNS)


def _votes_row(usage: str, row: int, **votes: int) -> str:
    return f"{usage},{row},fer{row:07d}.png," + ",".join(str(votes.get(c, 0)) for c in fp.VOTE_COLUMNS)


def _vote_vector(**votes: float) -> np.ndarray:
    return np.array([[votes.get(c, 0.0) for c in fp.VOTE_COLUMNS]], np.float32)


def test_majority_label_rules() -> None:
    votes = np.concatenate(
        [
            _vote_vector(neutral=6, sadness=4),  # plain majority -> neutral
            _vote_vector(neutral=5, sadness=5),  # tie -> none
            _vote_vector(contempt=6, anger=4),  # contempt majority -> none
            _vote_vector(unknown=7, happiness=3),  # unknown majority -> none
            _vote_vector(NF=8, neutral=2),  # not a face -> none
            np.full((1, 10), np.nan, np.float32),  # no votes -> none
            _vote_vector(anger=4, disgust=3, fear=3),  # plurality is enough
        ]
    )
    got = fp.majority_labels(votes)
    want = [EMOTIONS.index("neutral"), -1, -1, -1, -1, -1, EMOTIONS.index("angry")]
    assert got.tolist() == want
    assert fp.not_a_face(votes).tolist() == [False, False, False, False, True, False, False]


def test_soft_targets_drop_or_fold_contempt_and_ignore_unknown() -> None:
    votes = _vote_vector(neutral=4, anger=2, contempt=2, unknown=2)
    dropped = fp.soft_targets(votes)[0]
    assert dropped[EMOTIONS.index("neutral")] == pytest.approx(4 / 6)
    assert dropped[EMOTIONS.index("angry")] == pytest.approx(2 / 6)
    assert dropped.sum() == pytest.approx(1.0)
    folded = fp.soft_targets(votes, contempt="disgust")[0]
    assert folded[EMOTIONS.index("disgust")] == pytest.approx(2 / 8)
    assert fp.unreadable_share(votes)[0] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="contempt"):
        fp.soft_targets(votes, contempt="smirk")
    assert fp.soft_targets(np.full((1, 10), np.nan, np.float32)).sum() == 0


SAD, NEUTRAL = EMOTIONS.index("sad"), EMOTIONS.index("neutral")


def _dataset_with_votes(root: Path, n_train: int, n_val: int, noise: float, seed: int = 0) -> Path:
    """A FER CSV that labels a share ``noise`` of neutral faces sad, and FER+ votes that say neutral.

    The class is visible in the image (conftest.synthetic_faces); the votes follow it (8 of 10), as
    FER+'s annotators do where FER2013 called a calm face sad. Every fifth face is blanked (no bar
    to see) and 7 of its 10 annotators said "unknown".
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines, vote_lines = ["emotion,pixels,Usage"], [HEADER]
    for k, (usage, n) in enumerate((("Training", n_train), ("PublicTest", n_val))):
        images, truth = synthetic_faces(n, seed + k)
        fer = np.where((truth == NEUTRAL) & (rng.random(n) < noise), SAD, truth)
        for i in range(n):
            main = fp.VOTE_COLUMNS[fp.CLASS_COLUMNS[truth[i]]]
            votes = {main: 8, "unknown": 2}
            if i % 5 == 4:
                images[i] = rng.integers(0, 80, size=(48, 48), dtype=np.uint8)
                votes = {main: 3, "unknown": 7}
            lines.append(f"{fer[i]},{' '.join(map(str, images[i].ravel()))},{usage}")
            vote_lines.append(_votes_row(usage, i, **votes))
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    (root / fp.VOTES_FILE).write_text("\n".join(vote_lines) + "\n")
    return root


def test_loader_attaches_votes_only_when_rows_align(tmp_path: Path) -> None:
    root = _dataset_with_votes(tmp_path / "d", 14, 7, noise=0.0)
    splits = load_splits(root)
    assert splits["Training"].votes is not None and splits["Training"].votes.shape == (14, 10)
    majority = fp.majority_labels(splits["PublicTest"].votes)
    assert (majority == np.where(np.arange(7) % 5 == 4, -1, splits["PublicTest"].labels)).all()
    # a votes file for another export (row counts differ) is not attached rather than misaligned
    lines = (root / fp.VOTES_FILE).read_text().splitlines()
    (root / fp.VOTES_FILE).write_text("\n".join(lines[:-1]) + "\n")
    again = load_splits(root)
    assert again["Training"].votes is not None and again["PublicTest"].votes is None


def test_training_targets_mix_and_drops(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="training needs PyTorch")
    from classmood.training.targets import training_targets

    root = _dataset_with_votes(tmp_path / "d", 14, 7, noise=1.0)
    faces = load_splits(root)["Training"]
    assert faces.labels[6] == SAD  # the calm face FER2013 called sad
    votes = faces.votes.copy()  # type: ignore[union-attr]
    votes[0] = np.nan  # no votes
    votes[1] = _vote_vector(NF=9, neutral=1)[0]  # not a face
    faces = faces.with_votes(votes)
    t = training_targets(faces, "ferplus", label_mix=0.25)
    assert 1 not in t.keep and 0 in t.keep and len(t.keep) == 13 and t.dropped_not_face == 1
    assert t.dist is not None and np.allclose(t.dist.sum(axis=1), 1.0)
    row0 = t.dist[list(t.keep).index(0)]
    assert row0[faces.labels[0]] == 1.0  # unvoted: its FER2013 label
    row6 = t.dist[list(t.keep).index(6)]
    assert row6[SAD] == pytest.approx(0.25)  # FER2013's (wrong) label gets the mix share
    assert row6[NEUTRAL] == pytest.approx(0.75)
    assert training_targets(faces, "ferplus", missing="drop").keep.tolist() == list(range(2, 14))
    assert training_targets(faces, "fer2013").dist is None
    with pytest.raises(ValueError, match="ferplus_votes"):
        training_targets(replace(faces, votes=None), "ferplus")


def test_soft_cross_entropy_equals_weighted_cross_entropy_on_one_hot_targets() -> None:
    torch = pytest.importorskip("torch", reason="training needs PyTorch")
    import torch.nn.functional as F

    from classmood.training.train import soft_cross_entropy

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 7, generator=gen)
    y = torch.randint(0, 7, (32,), generator=gen)
    w = torch.rand(7, generator=gen) + 0.5
    ref = F.cross_entropy(logits, y, weight=w)
    got = soft_cross_entropy(logits, F.one_hot(y, 7).float(), w)
    assert float(got) == pytest.approx(float(ref), rel=1e-5)


def test_ferplus_targets_learn_the_annotators_label_where_fer2013_is_wrong(tmp_path: Path) -> None:
    """FER2013 calls 80 % of calm faces sad: taught the votes, the model reads them neutral, taught the
    FER2013 labels it reads them sad; the unreadable head, exported as a second output, scores the
    faces people could not read higher than the others."""
    pytest.importorskip("torch", reason="training needs PyTorch")
    from classmood.expression.evaluate import evaluate
    from classmood.expression.model import ExpressionModel
    from classmood.training.train import TrainConfig, train

    root = _dataset_with_votes(tmp_path / "d", 448, 70, noise=0.8)
    base = {"arch": "plain_cnn_small", "batch_size": 32, "lr": 0.05, "threads": 2, "epochs": 4, "data": str(root)}
    results = {}
    for kind in ("fer2013", "ferplus"):
        cfg = TrainConfig.from_dict(
            {**base, "out": str(tmp_path / kind), "targets": kind, "unreadable_head": kind == "ferplus"}
        )
        cfg.augment = type(cfg.augment)(rotate_deg=0, scale=(1, 1), shift=0.0, flip=0.5, erase=0)
        results[kind] = train(cfg)
    plus, plain = (results[k]["val"]["ferplus"] for k in ("ferplus", "fer2013"))
    assert plus["per_class_recall"]["neutral"] > 0.8 > 0.4 > plain["per_class_recall"]["neutral"]
    assert plus["accuracy"] > plain["accuracy"] + 0.05
    assert results["ferplus"]["selected_on"] == "ferplus" and results["fer2013"]["selected_on"] == "fer2013"
    prior = results["ferplus"]["train_prior"]
    assert len(prior) == 7 and sum(prior) == pytest.approx(1.0, abs=1e-4)
    model = ExpressionModel(tmp_path / "ferplus" / "model.onnx")
    assert model.has_unreadable and model.metadata["classmood.targets"] == "ferplus"
    probs, unreadable = model.predict(load_splits(root)["PublicTest"].images)
    assert probs.shape == (70, 7) and unreadable is not None and unreadable.shape == (70,)
    blank = np.arange(70) % 5 == 4
    assert unreadable[blank].mean() > 0.5 > 0.35 > unreadable[~blank].mean()
    assert results["ferplus"]["unreadable"]["auc_any"] > 0.9
    assert not ExpressionModel(tmp_path / "fer2013" / "model.onnx").has_unreadable
    # a checkpoint trained without the head gets one at export (classmood export --fit-unreadable)
    from classmood.training.ship import export_checkpoint

    late, _ = export_checkpoint(
        tmp_path / "fer2013" / "best.pt", str(tmp_path / "late.onnx"), "flip", data=str(root), fit_unreadable=True
    )
    # two checkpoints as one file: the mean of their probabilities (and of their unreadable scores)
    pair, _ = export_checkpoint(
        tmp_path / "ferplus" / "best.pt",
        str(tmp_path / "pair.onnx"),
        "flip",
        average_with=[tmp_path / "fer2013" / "best.pt"],
    )
    faces = load_splits(root)["PublicTest"].images
    want = np.mean([ExpressionModel(tmp_path / k / "model.onnx").predict(faces)[0] for k in ("ferplus", "fer2013")], 0)
    pair_model = ExpressionModel(pair)
    np.testing.assert_allclose(pair_model.predict(faces)[0], want, atol=3e-3)
    assert not pair_model.has_unreadable  # only one of the two has the head
    assert (
        pair_model.metadata["arch"] == "plain_cnn_small+plain_cnn_small"
        and "classmood.targets" not in pair_model.metadata
    )
    late_model = ExpressionModel(late)
    assert late_model.has_unreadable and late_model.metadata["classmood.targets"] == "fer2013"
    _, late_scores = late_model.predict(load_splits(root)["PublicTest"].images)
    assert late_scores is not None and late_scores[blank].mean() > late_scores[~blank].mean()
    # evaluate reports both label sets
    m = evaluate(root, "PublicTest", str(tmp_path / "ferplus" / "model.onnx"))["PublicTest"]
    assert m["ferplus"]["accuracy"] == pytest.approx(plus["accuracy"], abs=0.02)
    assert (
        m["ferplus"]["n"] == 56
        and m["ferplus"]["n_voted"] == 70
        and m["ferplus"]["soft_cross_entropy"] > m["ferplus"]["vote_entropy"]
    )
    assert json.dumps(m)  # JSON-serialisable as `evaluate --json` prints it
    # bench --robust --labels ferplus scores the faces with a FER+ majority against it
    from classmood.benchmarks.robust import run_robust_bench

    robust = run_robust_bench(root, [str(tmp_path / "ferplus" / "model.onnx")], gallery=False, label_set="ferplus")
    assert robust["conditions"][0]["n"] == 56 and "FER+ majority" in robust["data"]
    clean = robust["models"][str(tmp_path / "ferplus" / "model.onnx")]["scores"]["shipped"]["clean"]
    assert clean["accuracy"] == pytest.approx(plus["accuracy"], abs=0.05)
    # a model with the head can be fine-tuned again (its expression network is read back)
    from classmood.training.from_onnx import load_onnx_weights

    again = load_onnx_weights(tmp_path / "ferplus" / "model.onnx", "plain_cnn_small")
    assert sum(p.numel() for p in again.parameters()) > 0


def test_a_fer2013_label_head_answers_in_fer2013s_labels_while_faces_are_read_with_fer_plus(tmp_path: Path) -> None:
    """FER2013 calls 80 % of calm faces sad. A network with a second head taught FER2013's labels
    (``fer2013_head``) still reads calm faces neutral with its deployed head, while the second head
    says what FER2013's labeller would have said; evaluate scores FER2013's labels on that head and
    names the deployed head's own score; the head survives export, averaging and fine-tuning."""
    pytest.importorskip("torch", reason="training needs PyTorch")
    from classmood.expression.evaluate import evaluate, format_metrics
    from classmood.expression.model import FER2013_OUTPUT, ExpressionModel
    from classmood.training.from_onnx import load_onnx_weights
    from classmood.training.ship import export_checkpoint
    from classmood.training.train import TrainConfig, train

    root = _dataset_with_votes(tmp_path / "d", 448, 70, noise=0.8)
    base = {"arch": "plain_cnn_small", "batch_size": 32, "lr": 0.05, "threads": 2, "data": str(root)}
    cfg = TrainConfig.from_dict(
        {**base, "epochs": 4, "out": str(tmp_path / "two"), "targets": "ferplus", "fer2013_head": 1.0}
    )
    cfg.augment = type(cfg.augment)(rotate_deg=0, scale=(1, 1), shift=0.0, flip=0.5, erase=0)
    run = train(cfg)
    val = run["val"]
    assert val["ferplus"]["per_class_recall"]["neutral"] > 0.8  # the deployed head: what people agree on
    # FER2013's labels are scored on the head taught them, which beats the deployed head on them
    assert val["accuracy"] > val["deployed_head_accuracy"] + 0.05
    model = ExpressionModel(tmp_path / "two" / "model.onnx")
    assert model.has_fer2013_head and not model.has_unreadable
    faces = load_splits(root)["PublicTest"]
    probs, _ = model.predict(faces.images, raw=True)
    assert probs.shape == (70, 7)
    calm = fp.majority_labels(faces.votes) == NEUTRAL  # type: ignore[arg-type]
    assert (probs[calm].argmax(1) == NEUTRAL).mean() > 0.8
    assert (model.predict_fer2013(faces.images)[calm].argmax(1) == SAD).mean() > 0.5
    m = evaluate(root, "PublicTest", model)["PublicTest"]
    assert m["accuracy"] == pytest.approx(val["accuracy"], abs=0.03)
    assert m["deployed_head"]["accuracy"] < m["accuracy"] and m["ferplus"]["accuracy"] > m["deployed_head"]["accuracy"]
    assert "FER2013-label head" in format_metrics("PublicTest", m) and json.dumps(m)
    # two such networks averaged keep both heads; the exported head is the mean of theirs
    pair, _ = export_checkpoint(
        tmp_path / "two" / "best.pt", str(tmp_path / "pair.onnx"), "flip", average_with=[tmp_path / "two" / "best.pt"]
    )
    pair_model = ExpressionModel(pair)
    assert [o.name for o in pair_model.session.get_outputs()] == ["probs", FER2013_OUTPUT]
    np.testing.assert_allclose(pair_model.predict_fer2013(faces.images), model.predict_fer2013(faces.images), atol=3e-3)
    # fine-tuning reads both heads back and distils from an exported two-head teacher's both heads
    assert load_onnx_weights(tmp_path / "two" / "model.onnx", "plain_cnn_small").head[-1].out_features == 14
    tuned = TrainConfig.from_dict(
        {
            **base,
            "epochs": 1,
            "lr": 0.005,
            "out": str(tmp_path / "tuned"),
            "targets": "ferplus",
            "fer2013_head": 1.0,
            "init_onnx": str(tmp_path / "two" / "model.onnx"),
            "freeze_bn": True,
            "teacher_onnx": [str(pair)],
        }
    )
    again = train(tuned)["val"]
    assert again["accuracy"] > again["deployed_head_accuracy"] and again["ferplus"]["per_class_recall"]["neutral"] > 0.8
    with pytest.raises(ValueError, match="needs 7"):  # a two-head file cannot start a one-head run
        train(replace(tuned, fer2013_head=0.0, teacher_onnx=[], out=str(tmp_path / "bad")))


def test_readout_max_unreadable_marks_faces_uncertain() -> None:
    from classmood.expression.readout import UNCERTAIN, Readout

    probs = np.tile(np.eye(7, dtype=np.float32)[3], (3, 1))
    readout = Readout(max_unreadable=0.3)
    got = readout.decide(probs, unreadable=np.array([0.1, 0.31, 0.9], np.float32))
    assert got.tolist() == [3, UNCERTAIN, UNCERTAIN]
    assert readout.decide(probs).tolist() == [3, 3, 3]  # a model without the head: the rule is off
    assert Readout.from_metadata({"classmood.readout": readout.to_metadata()}) == readout
    assert "unreadable" in readout.describe()
