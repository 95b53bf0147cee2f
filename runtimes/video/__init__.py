"""The video stack behind python -m runtimes.run: frame sources, the tracked and smoothed loop, scene cuts,
drawing and the atomic outputs."""
