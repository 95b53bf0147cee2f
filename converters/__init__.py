"""PyTorch/ONNX → verified TFLite (later NCNN, MNN) artifacts; each backend runs as `python -m converters.<name>`."""
