"""Fitting the unreadable head: which faces would people fail to read? (FER+'s ``unknown`` + ``NF`` votes).

FER+ asked ten people per face; when several answered "unknown" or "not a face", the face was hard
to read for people too (turned away, covered, cut off, not a face). The head is a logistic regression
on the trained network's frozen pooled features, fitted to that vote share (a soft target, binary
cross-entropy), so it learns what unreadable looks like without touching the expression head. The
readout then calls a face *uncertain* when the predicted share exceeds ``max_unreadable``
(``expression/readout.py``), beside the confidence and detail rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from classmood.data import FaceSet
from classmood.data import ferplus as fp
from classmood.models.unreadable import WithUnreadable, feature_width, pooled_features


@torch.no_grad()
def features_of(model: nn.Module, images: np.ndarray, flip: bool = True, batch: int = 512) -> torch.Tensor:
    """Pooled features of (N, 48, 48) uint8 faces (averaged with their mirror image when ``flip``), on the CPU."""
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).to(dev).float().unsqueeze(1)
        z = pooled_features(model, x)
        if flip:
            z = (z + pooled_features(model, x.flip(3))) / 2
        out.append(z.float().cpu())
    return torch.cat(out)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U), ties counted half."""
    from scipy.stats import rankdata

    pos = np.asarray(positive, bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fit_unreadable_head(
    model: nn.Module, train: FaceSet, steps: int = 300, weight_decay: float = 1e-3, seed: int = 0
) -> nn.Linear:
    """A linear unit on ``model``'s pooled features fitted to each training face's unknown + NF vote share."""
    if train.votes is None:
        raise ValueError(f"an unreadable head needs FER+ votes for {train.split}")
    share = fp.unreadable_share(train.votes)
    voted = ~np.isnan(share)
    z = features_of(model, train.images[voted])
    y = torch.from_numpy(share[voted].astype(np.float32))
    mean, std = z.mean(0), z.std(0).clamp(min=1e-6)
    zn = (z - mean) / std
    torch.manual_seed(seed)
    lin = nn.Linear(z.shape[1], 1)
    nn.init.zeros_(lin.weight)
    with torch.no_grad():
        lin.bias.fill_(float(torch.logit(y.mean().clamp(1e-4, 1 - 1e-4))))
    opt = torch.optim.LBFGS(lin.parameters(), lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(lin(zn)[:, 0], y) + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)  # type: ignore[arg-type]
    # fold the standardisation into the unit, so it reads the raw pooled features
    out = nn.Linear(feature_width(model), 1)
    with torch.no_grad():
        out.weight.copy_(lin.weight / std)
        out.bias.copy_(lin.bias - (lin.weight / std * mean).sum())
    return out


def unreadable_report(model: WithUnreadable, faces: FaceSet) -> dict[str, Any]:
    """How well the head separates faces people could not read, on a held-out split with votes.

    ``auc_any`` is the ROC AUC for "at least 3 of 10 annotators said unknown or not a face";
    ``correlation`` the Pearson correlation with the vote share.
    """
    if faces.votes is None:
        return {}
    share = fp.unreadable_share(faces.votes)
    voted = ~np.isnan(share)
    dev = next(model.parameters()).device
    with torch.no_grad():
        z = features_of(model.model, faces.images[voted]).to(dev)
        pred = torch.sigmoid(model.unreadable(z)[:, 0]).cpu().numpy()
    truth = share[voted]
    return {
        "n": int(voted.sum()),
        "auc_any": auc(pred, truth >= 0.3),
        "positives": int((truth >= 0.3).sum()),
        "correlation": float(np.corrcoef(pred, truth)[0, 1]),
        "mean_predicted": float(pred.mean()),
        "mean_share": float(truth.mean()),
    }
