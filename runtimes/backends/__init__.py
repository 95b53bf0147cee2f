"""Backend adapters, one module per runtime (onnxruntime, LiteRT, ncnn, MNN, OpenCV DNN), and in base.py the
Backend interface, the runtime table and the mapping of raw outputs to canonical order."""
