"""A network that answers in two label sets at once: FER+'s annotators (deployed) and FER2013's own.

FER2013's one label per face agrees with the majority of FER+'s ten annotators on only 63 % of
images, so one output cannot be good at both: a model that matched FER+ perfectly would score about
63 % against FER2013's labels, while the original study (and every FER2013 paper) reports accuracy
on those labels. A network built with ``num_classes = 2 * NUM_CLASSES`` (``TrainConfig.fer2013_head``)
has two seven-way linear heads on the same features: the first seven logits are taught FER+'s vote
distributions and are what classmood reads faces with; the last seven are taught FER2013's labels,
exported as the second probabilities output ``probs_fer2013`` and used only to score the model on
FER2013's own labels. The shared features cost nothing extra at run time (one more 7-way linear).
"""

from __future__ import annotations

import torch

from classmood.labels import NUM_CLASSES

TWO_LABEL_SETS = 2 * NUM_CLASSES


def split_logits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(deployed logits, FER2013-label logits or None)`` from a network's output of 7 or 14 columns."""
    if logits.shape[1] == TWO_LABEL_SETS:
        return logits[:, :NUM_CLASSES], logits[:, NUM_CLASSES:]
    return logits, None
