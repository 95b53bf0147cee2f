"""The device record every result carries: CPU, architecture, cores, frequency, the SIMD features that decide which
kernels the runtimes pick, and the runtime versions. Read from /proc and /sys on Linux; missing fields are None."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from models.spec import installed_versions

# The features that change which int8/fp16 kernels run: x86 (AVX2, AVX-512, VNNI) and ARM (NEON, dotprod, fp16, i8mm).
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
              "amx_int8", "asimd", "asimddp", "fphp", "asimdhp", "i8mm", "sve", "sve2", "bf16")
RUNTIME_PACKAGES = ("onnxruntime", "ai-edge-litert", "tflite-runtime", "ncnn", "MNN", "opencv-python-headless",
                    "numpy")


def cpuinfo_fields(text: str) -> dict[str, str]:
    """The first value of each 'key : value' line of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def simd_features(fields: dict[str, str]) -> list[str]:
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return [flag for flag in SIMD_FLAGS if flag in flags]


def max_mhz() -> float | None:
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(path.read_text()) / 1000
    except (OSError, ValueError):
        return None


def device_record(label: str | None = None) -> dict:
    try:
        fields = cpuinfo_fields(Path("/proc/cpuinfo").read_text())
    except OSError:
        fields = {}
    cpu = fields.get("model name") or fields.get("Model") or platform.processor() or "unknown CPU"
    mhz = max_mhz() or (float(fields["cpu MHz"]) if "cpu MHz" in fields else None)
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return {
        "label": label or f"{cpu} ({platform.machine()}, {usable} cores)",
        "cpu": cpu,
        "machine": platform.machine(),
        "cores": cores,
        "usable_cores": usable,
        "max_mhz": mhz,
        "simd": simd_features(fields),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "runtimes": installed_versions(*RUNTIME_PACKAGES),
    }
