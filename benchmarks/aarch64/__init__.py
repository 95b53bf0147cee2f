"""Proof on Raspberry Pi cores by emulation: an arm64 Debian root run under qemu-user as a Cortex-A72 (Pi 4) and a
Cortex-A76 (Pi 5), the project installed into it from the working tree, every artifact run there and its
detections compared with the same artifact's on this machine. `python -m benchmarks.aarch64 --help`."""
