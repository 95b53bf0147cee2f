"""FLOPs, size, latency per thread and peak RSS per backend × precision. Not built yet."""
