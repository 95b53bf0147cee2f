"""Benchmarks: MACs/FLOPs/params from the ONNX graph, size, latency per thread count (fresh pinned processes),
end-to-end time and peak RSS per backend × precision, with device records, reports and plots. Never imports torch
or tensorflow (the FLOPs counter needs only the onnx package)."""
