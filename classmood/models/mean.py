"""Several trained networks as one: the mean of their probabilities, exported as a single ONNX graph.

Two differently sized networks fine-tuned on the same targets make different mistakes; averaging
their probabilities is the cheapest accuracy there is (the shipped ``accurate``: the plain CNN and
the small plain CNN, +0.7 points of FER+ majority accuracy over the larger alone for 25 % more
compute). ``MeanOfModels`` returns ``log(mean softmax)``, so the export's softmax gives exactly the
arithmetic mean; unreadable heads (``models/unreadable.py``) and FER2013-label heads
(``models/label_sets.py``) are averaged the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from classmood.models.label_sets import split_logits


class MeanOfModels(nn.Module):
    """Logits whose softmax is the mean of ``members``' softmax (and, if every member has one, the
    unreadable logit whose sigmoid is the mean of theirs)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("a mean of models needs at least two")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        outs = [m(x) for m in self.members]
        heads = [o for o in outs if isinstance(o, tuple)]
        parts = [split_logits(o[0] if isinstance(o, tuple) else o) for o in outs]
        mean_logits = _log_mean_softmax([main for main, _ in parts])
        fer2013 = [aux for _, aux in parts if aux is not None]
        if len(fer2013) == len(parts):  # every member has a FER2013-label head: average those too
            mean_logits = torch.cat([mean_logits, _log_mean_softmax(fer2013)], 1)
        if len(heads) != len(outs):
            return mean_logits
        u = torch.stack([h[1].sigmoid() for h in heads]).mean(0).clamp(1e-6, 1 - 1e-6)
        return mean_logits, torch.log(u / (1 - u))


def _log_mean_softmax(logits: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([z.softmax(1) for z in logits]).mean(0).clamp(min=1e-12).log()
