"""PyTorch/ONNX → verified TFLite, NCNN, MNN and ONNX Runtime artifacts; each backend runs as
`python -m converters.<name>`, all of them as `python -m converters.all`."""
