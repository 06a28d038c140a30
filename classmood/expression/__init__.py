"""Expression inference on face crops (ONNX Runtime): how probabilities become a reading a teacher sees."""
