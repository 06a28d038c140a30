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
NEUTRAL = EMOTIONS.index("neutral")


def training_prior(class_weight_power: float = 0.5) -> np.ndarray:
    """The class balance a model trained with weights ``frequency^-power`` behaves as if it had."""
    p = TRAINING_COUNTS ** (1.0 - class_weight_power)
    return p / p.sum()


def classroom_prior(neutral: float) -> np.ndarray:
    """``neutral`` of faces at rest; the other six classes in FER2013 Training's proportions."""
    if not 0 < neutral < 1:
        raise ValueError("the neutral share must be between 0 and 1")
    others = TRAINING_COUNTS.copy()
    others[NEUTRAL] = 0
    p = others / others.sum() * (1 - neutral)
    p[NEUTRAL] = neutral
    return p


def prior_weights(deploy: np.ndarray, train: np.ndarray) -> tuple[float, ...]:
    """Per-class weights ``deploy / train``, scaled so the largest is 1 (only ratios matter)."""
    w = np.asarray(deploy, np.float64) / np.asarray(train, np.float64)
    return tuple(round(float(v), 4) for v in w / w.max())


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
