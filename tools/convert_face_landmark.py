"""Convert MediaPipe's face mesh network to ONNX once (issue 24), outside the project's environment.

Source: the ``mediapipe`` 0.10.21 wheel on PyPI (Apache-2.0; later wheels no longer bundle the
models), file ``mediapipe/modules/face_landmark/face_landmark.tflite``. Run in a throwaway venv:

    python -m venv /tmp/conv && /tmp/conv/bin/pip install tf2onnx tensorflow-cpu onnxruntime
    pip download mediapipe==0.10.21 --no-deps -d /tmp/mp && unzip /tmp/mp/*.whl -d /tmp/mp/whl
    /tmp/conv/bin/python tools/convert_face_landmark.py \
        /tmp/mp/whl/mediapipe/modules/face_landmark/face_landmark.tflite \
        classmood/weights/face_landmark.onnx [crops.npy]

Only the format changes (tf2onnx, opset 17) and the batch dimension is made free so that all faces of
a frame run in one call; with ``crops.npy`` ((N, 192, 192, 3) float32 RGB in [0, 1]) the ONNX outputs are
compared with the TFLite interpreter's and the largest absolute difference is printed.
"""

import subprocess
import sys

import numpy as np
import onnx
import onnx.numpy_helper


def main(tflite: str, out: str, crops: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "tf2onnx.convert", "--tflite", tflite, "--output", out, "--opset", "17"], check=True
    )
    model = onnx.load(out)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    # tf2onnx writes the final reshapes to (1, 1, 1, 1404) and (1, 1, 1, 1): let the batch through
    consts = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in consts:
            shape = onnx.numpy_helper.to_array(consts[node.input[1]]).copy()
            if shape[0] == 1:
                shape[0] = -1
                consts[node.input[1]].CopyFrom(onnx.numpy_helper.from_array(shape, node.input[1]))
    for o in model.graph.output:
        o.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.checker.check_model(model)
    onnx.save(model, out)
    if crops is None:
        return
    import onnxruntime as ort
    import tensorflow as tf

    x = np.load(crops).astype(np.float32)
    interp = tf.lite.Interpreter(model_path=tflite)
    interp.allocate_tensors()
    inp, outs = interp.get_input_details()[0], interp.get_output_details()
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    batch = session.run(None, {session.get_inputs()[0].name: x})
    worst = {}
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i : i + 1])
        interp.invoke()
        for d in outs:
            ref = interp.get_tensor(d["index"])
            j = next(k for k, b in enumerate(batch) if b[i].size == ref.size)
            diff = float(np.abs(batch[j][i].reshape(-1) - ref.reshape(-1)).max())
            worst[d["name"]] = max(worst.get(d["name"], 0.0), diff)
    print(f"{len(x)} crops, ONNX outputs {names}; max abs diff vs TFLite per output: {worst}")


if __name__ == "__main__":
    main(*sys.argv[1:])
