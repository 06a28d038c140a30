"""Write a ``Readout`` into an exported model's ONNX metadata (``classmood calibrate --write``).

The readout travels inside the model file, so every place that loads the model (evaluate, the
pipeline, the app, a browser) reads faces the same way without a second file to keep in step.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from classmood.expression.readout import METADATA_KEY, Readout


def write_readout(path: str | Path, readout: Readout) -> None:
    """Replace the readout stored in ``path`` (graph and weights untouched); written atomically."""
    path = Path(path)
    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    if readout != Readout():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=METADATA_KEY, value=readout.to_metadata()))
    tmp = path.with_suffix(".onnx.tmp")
    onnx.save(proto, str(tmp))
    tmp.replace(path)
