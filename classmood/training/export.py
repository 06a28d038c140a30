"""Export a trained model to ONNX, the format every inference path in classmood runs (ONNX Runtime).

The exported graph takes raw grey pixels ``faces`` (N, 1, 48, 48) float32 in [0, 255] and returns
softmax ``probs`` (N, 7) and, for a model with an unreadable head (``models/unreadable.py``), a
second output ``unreadable`` (N,): the predicted share of people who could not read the face; a
network with a FER2013-label head (``models/label_sets.py``) adds ``probs_fer2013`` (N, 7) last.
Test-time augmentation is baked in (``tta="flip"`` averages the face and
its mirror image), so evaluation and the video pipeline cannot disagree about it. Weights are
stored as float16 with a Cast back to float32 (``fp16_weights``): half the file size, while the
arithmetic stays float32 because ONNX Runtime folds the casts when it loads the model.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn

from classmood.models.label_sets import split_logits

INPUT_NAME = "faces"
OUTPUT_NAME = "probs"
UNREADABLE_NAME = "unreadable"
FER2013_NAME = "probs_fer2013"


TTA_MODES = ("none", "flip", "flip_scale")


def zoomed(x: torch.Tensor, border: int) -> torch.Tensor:
    """The face a little closer (``border`` > 0 px cropped off each side) or farther (< 0: edge
    pixels added), resized back to the input size: the scale jitter the models were trained with."""
    size = x.shape[-1]
    x = (
        x[..., border : size - border, border : size - border]
        if border > 0
        else F.pad(x, (-border,) * 4, mode="replicate")
    )
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


class ProbabilityHead(nn.Module):
    """Wraps a logits model: softmax, averaged over test-time views of each face.

    ``flip`` averages the face and its mirror image; ``flip_scale`` also a slightly closer and a
    slightly farther view of both (6 views: +0.4 points PublicTest for ``accurate`` and +0.8 for
    ``accurate_alt``, two FER2013 models shipped earlier, over ``flip``, at 3x the time).
    """

    def __init__(self, model: nn.Module, tta: str = "flip") -> None:
        super().__init__()
        if tta not in TTA_MODES:
            raise ValueError(f"unknown tta {tta!r} ({' | '.join(TTA_MODES)})")
        self.model, self.tta = model, tta

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.tta == "none":
            views = [x]
        else:
            views = [x] if self.tta == "flip" else [x, zoomed(x, 1), zoomed(x, -1)]
            views += [v.flip(3) for v in views]
        out = self.model(torch.cat(views, 0) if len(views) > 1 else x)
        logits, unreadable = out if isinstance(out, tuple) else (out, None)
        main, fer2013 = split_logits(logits)
        outputs = [main.softmax(1).reshape(len(views), x.shape[0], -1).mean(0)]
        if unreadable is not None:
            outputs.append(unreadable.sigmoid().reshape(len(views), x.shape[0]).mean(0))
        if fer2013 is not None:
            outputs.append(fer2013.softmax(1).reshape(len(views), x.shape[0], -1).mean(0))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def output_names(model: nn.Module) -> list[str]:
    """The exported graph's output names for ``model``, in ``ProbabilityHead``'s order."""
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 1, 48, 48))
    logits, unreadable = out if isinstance(out, tuple) else (out, None)
    two = split_logits(logits)[1] is not None
    return [OUTPUT_NAME, *([UNREADABLE_NAME] if unreadable is not None else []), *([FER2013_NAME] if two else [])]


def weights_to_fp16(model: onnx.ModelProto, min_size: int = 16) -> onnx.ModelProto:
    """Store large float32 initializers as float16, each followed by a Cast back to float32."""
    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < min_size or np.abs(arr).max(initial=0) > 6e4:
            continue
        name = init.name
        half = numpy_helper.from_array(arr.astype(np.float16), name + "__fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=onnx.TensorProto.FLOAT, name=name + "__cast"))
    for i, node in enumerate(casts):
        graph.node.insert(i, node)
    return model


def export_onnx(
    model: nn.Module,
    path: str | Path,
    tta: str = "flip",
    fp16_weights: bool = True,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``model`` (a logits network for 48x48 grey faces) as an ONNX probabilities model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = ProbabilityHead(model.cpu().float().eval(), tta).eval()
    outputs = output_names(model)
    buf = io.BytesIO()
    # The TorchScript exporter (dynamo=False) handles these small static graphs without onnxscript
    # rewrites; its deprecation notice is not actionable for users, so it is silenced here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head,
            (torch.zeros(2, 1, 48, 48),),
            buf,  # type: ignore[arg-type]  # file-like objects are accepted
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_axes={INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
            opset_version=17,
            dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    if fp16_weights:
        proto = weights_to_fp16(proto)
    meta = {
        "classmood.labels": "angry,disgust,fear,happy,sad,surprise,neutral",
        "classmood.tta": tta,
        "classmood.input": "grey pixels 0..255, N x 1 x 48 x 48",
        **(metadata or {}),
    }
    for k, v in meta.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=k, value=str(v)))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path
