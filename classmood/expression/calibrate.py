"""Fitting a model's readout: temperature on PublicTest, the deployment prior, the uncertain thresholds.

**Temperature.** One scalar ``T`` minimising the negative log-likelihood of PublicTest labels under
``p^(1/T)`` (Guo et al. 2017, "On calibration of modern neural networks"). It never changes the
arg-max, only how confident the probabilities are, which the ``uncertain`` rule then relies on.

**Deployment prior.** A classifier's probabilities carry the class balance it was trained with.
Ours were trained with class weights ``frequency^-power`` (``TrainConfig.class_weight_power``), so
they behave as if each class had prior ``frequency^(1-power)`` (normalised): with power 0.5 about
16 % neutral, 16 % sad, 15 % angry, 15 % fear. A class listening to a lesson is mostly at rest. By
Bayes' rule the probabilities under another prior are ``p * p_deploy / p_train``, renormalised
(Saerens et al. 2002). ``classroom_prior`` states our assumption in one number: a share
``neutral`` of faces at rest, the rest in FER2013's own proportions of the six other classes. It
is an assumption about the setting, not something learnt from any one clip; ``evaluate`` shows its
effect on PublicTest next to the raw model.
"""

from __future__ import annotations

import itertools

import numpy as np

from classmood.labels import EMOTIONS

# FER2013 Training class counts (the data README), EMOTIONS order.
TRAINING_COUNTS = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965], np.float64)
NEUTRAL, HAPPY = EMOTIONS.index("neutral"), EMOTIONS.index("happy")


def training_prior(class_weight_power: float = 0.5) -> np.ndarray:
    """The class balance a model trained with weights ``frequency^-power`` behaves as if it had."""
    p = TRAINING_COUNTS ** (1.0 - class_weight_power)
    return p / p.sum()


def classroom_prior(neutral: float, base: np.ndarray | None = None, happy: float | None = None) -> np.ndarray:
    """``neutral`` of faces at rest (and ``happy`` smiling, if given); the other classes in ``base``'s
    proportions (default FER2013 Training's; a model taught FER+ votes passes FER+'s, where fear is
    4 % instead of 14 %). A class listening to a lesson is mostly at rest, smiles now and then, and
    rarely shows the negative expressions at the rates of a web-image dataset."""
    fixed = neutral + (happy or 0.0)
    if not 0 < neutral < 1 or (happy is not None and not 0 < happy < 1) or not fixed < 1:
        raise ValueError("the neutral (and happy) shares must be between 0 and 1 and leave room for the others")
    others = (TRAINING_COUNTS if base is None else np.asarray(base, np.float64)).copy()
    others[NEUTRAL] = 0
    if happy is not None:
        others[HAPPY] = 0
    p = others / others.sum() * (1 - fixed)
    p[NEUTRAL] = neutral
    if happy is not None:
        p[HAPPY] = happy
    return p


def prior_weights(deploy: np.ndarray, train: np.ndarray) -> tuple[float, ...]:
    """Per-class weights ``deploy / train``, scaled so the largest is 1 (only ratios matter)."""
    w = np.asarray(deploy, np.float64) / np.asarray(train, np.float64)
    return tuple(round(float(v), 4) for v in w / w.max())


def model_train_prior(metadata: dict[str, str], class_weight_power: float = 0.5) -> np.ndarray:
    """The class balance a model learnt: stored by ``train`` in its metadata, else FER2013's under the power."""
    import json

    raw = metadata.get("classmood.train_prior")
    if raw:
        p = np.asarray(json.loads(raw), np.float64)
        if p.shape == (len(EMOTIONS),) and (p > 0).all():
            return p / p.sum()
    return training_prior(class_weight_power)


def soft_nll(probs: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Cross-entropy of temperature-scaled probabilities against target distributions (FER+ votes)."""
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return float(-(targets * logp).sum(axis=1).mean())


def fit_soft_temperature(probs: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises the cross-entropy against vote distributions (bounded 0.25-4)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda t: soft_nll(probs, targets, t), bounds=(0.25, 4.0), method="bounded")
    return round(float(res.x), 3)


def nll(probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the labels' negative log-likelihood (bounded 0.25-4)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda t: nll(probs, labels, t), bounds=(0.25, 4.0), method="bounded")
    return round(float(res.x), 3)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Mean |confidence - accuracy| over equal-width confidence bins, weighted by their size."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    return float(ece)


def fit_model_temperature(probs: np.ndarray, labels: np.ndarray, votes: np.ndarray | None, kind: str) -> float:
    """The temperature for a model's PublicTest probabilities, fitted to the labels it was taught:
    FER2013's (``kind="fer2013"``) or FER+'s vote distributions (``"ferplus"``, needs ``votes``)."""
    if kind == "ferplus":
        from classmood.data import ferplus as fp

        if votes is None:
            raise ValueError("fitting to FER+ needs the votes")
        soft = fp.soft_targets(votes)
        voted = soft.sum(axis=1) > 0
        return fit_soft_temperature(probs[voted], soft[voted])
    return fit_temperature(probs, labels)
