"""Rebuild a trainable PyTorch model from a shipped ONNX file, so shipped models can be fine-tuned.

The GPU-trained checkpoints of the shipped models stayed on the lent GPU; only their ONNX files
ship. The exporter folded each batch-norm into the convolution before it, so the ONNX graph holds
one weight and one bias per convolution plus the linear head. This module walks the graph's
``Conv`` nodes in order, pours their (float16-stored) weights into a freshly built network of the
same architecture, and turns every batch-norm into an exact identity (running mean 0, running
variance 1 - eps, weight 1, bias = the folded bias). Fine-tune such a model with its batch-norms
in eval mode (``TrainConfig.freeze_bn``): their statistics mean nothing here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from classmood.labels import NUM_CLASSES
from classmood.models import create_model


def _initializers(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializer arrays by the name the graph uses (an fp16-stored weight under its Cast's output)."""
    arrays = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Cast" and node.input[0] in arrays:
            arrays[node.output[0]] = arrays[node.input[0]].astype(np.float32)
    return arrays


def load_onnx_weights(path: str | Path, arch: str, **arch_kwargs: Any) -> nn.Module:
    """A ``create_model(arch, **arch_kwargs)`` network carrying the weights of the exported ``path``."""
    proto = onnx.load(str(path))
    arrays = _initializers(proto)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    linears = [n for n in proto.graph.node if n.op_type in ("Gemm", "MatMul")]
    # A model exported with an unreadable head (models/unreadable.py) has one more linear layer with a
    # single output; fine-tuning starts from its expression network (the head is refitted afterwards).
    linears = [n for n in linears if min(arrays[n.input[1]].shape) > 1] or linears
    # the classifier's width: 7, or 14 for a network with a FER2013-label head (models/label_sets.py)
    classes = min(arrays[linears[-1].input[1]].shape) if linears else NUM_CLASSES
    model = create_model(arch, num_classes=int(classes), **arch_kwargs)
    torch_convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    torch_bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    torch_linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if len(convs) != len(torch_convs) or len(torch_bns) != len(torch_convs) or len(linears) != len(torch_linears):
        raise ValueError(
            f"{path}: {len(convs)} convolutions and {len(linears)} linear layers do not fit {arch} "
            f"({len(torch_convs)} conv, {len(torch_bns)} batch-norm, {len(torch_linears)} linear)"
        )
    with torch.no_grad():
        for node, conv, bn in zip(convs, torch_convs, torch_bns, strict=True):
            weight = torch.from_numpy(np.array(arrays[node.input[1]]))
            if weight.shape != conv.weight.shape:
                raise ValueError(
                    f"{path}: convolution {node.name} has shape {tuple(weight.shape)}, "
                    f"{arch} expects {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(weight)
            bias = (
                torch.from_numpy(np.array(arrays[node.input[2]]))
                if len(node.input) > 2
                else torch.zeros(conv.out_channels)
            )
            bn.weight.fill_(1.0)
            bn.bias.copy_(bias)
            assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats is on
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        for node, lin in zip(linears, torch_linears, strict=True):
            w = arrays[node.input[1]]
            transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i == 1 for a in node.attribute)
            w = w if transposed else w.T
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            bias_name = node.input[2] if len(node.input) > 2 else None
            if bias_name and lin.bias is not None:
                lin.bias.copy_(torch.from_numpy(np.array(arrays[bias_name])))
    return model.eval()
