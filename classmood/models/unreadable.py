"""A second head that says how likely people would be unable to read a face (FER+'s ``unknown``/``NF`` votes).

Every architecture here ends in ``features`` (conv layers) and ``head`` (pool, flatten, dropout,
linear). ``WithUnreadable`` shares the pooled features and adds one linear unit whose sigmoid is
the predicted share of annotators who would vote "unknown" or "not a face". It is fitted after the
expression training on frozen features (``training/unreadable.py``), so it never changes what the
expression head says; the exported graph returns it as a second output ``unreadable``.
"""

from __future__ import annotations

import torch
from torch import nn


def pooled_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The features the classifier's linear layer sees: ``features`` -> global average pool -> flatten."""
    head = model.head
    return head[1](head[0](model.features(x)))  # type: ignore[index, operator]


def feature_width(model: nn.Module) -> int:
    """Input width of the classifier's linear layer."""
    linear = model.head[-1]  # type: ignore[index]
    if not isinstance(linear, nn.Linear):
        raise ValueError("the model's head does not end in a linear layer")
    return linear.in_features


class WithUnreadable(nn.Module):
    """``model``'s logits plus one unreadable logit from the same pooled features: ``(logits, unreadable)``."""

    def __init__(self, model: nn.Module, unreadable: nn.Linear | None = None) -> None:
        super().__init__()
        if not hasattr(model, "features") or not hasattr(model, "head"):
            raise ValueError("an unreadable head needs a model with 'features' and 'head' (every registered one)")
        self.model = model
        self.unreadable = unreadable if unreadable is not None else nn.Linear(feature_width(model), 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = pooled_features(self.model, x)
        head = self.model.head
        logits = head[3](head[2](z))  # type: ignore[index, operator]  # dropout, linear
        return logits, self.unreadable(z)[:, 0]
