"""ONNX export of a model folder (onnx), with optional static int8 quantization (quantize)."""
