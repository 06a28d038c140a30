"""Model files shipped with classmood (ONNX, float16 weights): ``accurate.onnx`` and ``fast.onnx``."""
