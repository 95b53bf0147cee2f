"""PyTorch/ONNX → verified TFLite (and later NCNN, MNN) artifacts; each backend runs as `python -m converters.<name>`."""
