"""The device record every result carries: CPU, architecture, cores, frequency, the SIMD features that decide which
kernels the runtimes pick, and the runtime versions. Read from /proc and /sys on Linux; missing fields are None.

On ARM the features come from the auxiliary vector (getauxval AT_HWCAP/AT_HWCAP2), which the kernel, or QEMU for an
emulated core, sets: under qemu-user /proc/cpuinfo is the x86 host's text, so a run whose architecture and
/proc/cpuinfo disagree is labelled emulated, and its times are never timings.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from models.spec import installed_versions

# The features that change which int8/fp16 kernels run: x86 (AVX2, AVX-512, VNNI) and ARM (NEON, dotprod, fp16, i8mm).
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
              "amx_int8", "asimd", "asimddp", "fphp", "asimdhp", "i8mm", "sve", "sve2", "bf16")
# Linux arch/arm64 uapi hwcap.h: the bits that decide ncnn/MNN/XNNPACK kernels on a Pi.
HWCAP_BITS = {"fp": 0, "asimd": 1, "fphp": 9, "asimdhp": 10, "asimddp": 20, "sve": 22}
HWCAP2_BITS = {"sve2": 1, "i8mm": 13, "bf16": 14}
AT_HWCAP, AT_HWCAP2 = 16, 26
ARM_CORES = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72 (Raspberry Pi 4)", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76 (Raspberry Pi 5)",
             "0xd0c": "Neoverse-N1", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78", "0xd46": "Cortex-A510",
             "0xd47": "Cortex-A710", "0xd4f": "Neoverse-V2"}
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


def arm_features(hwcap: int, hwcap2: int) -> list[str]:
    """The ARM features named in HWCAP_BITS/HWCAP2_BITS that the two auxiliary-vector words say are present."""
    present = {name for name, bit in HWCAP_BITS.items() if hwcap >> bit & 1}
    present |= {name for name, bit in HWCAP2_BITS.items() if hwcap2 >> bit & 1}
    return [flag for flag in (*HWCAP_BITS, *HWCAP2_BITS) if flag in present]


def auxv_hwcaps() -> tuple[int, int]:
    """(AT_HWCAP, AT_HWCAP2) of this process, (0, 0) where getauxval is unavailable."""
    import ctypes

    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (AttributeError, OSError):
        return 0, 0
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    return int(getauxval(AT_HWCAP)), int(getauxval(AT_HWCAP2))


def is_emulated(machine: str, fields: dict[str, str]) -> bool:
    """An ARM process whose /proc/cpuinfo describes an x86 CPU (qemu-user passes the host's text through)."""
    arm = machine in ("aarch64", "arm64") or machine.startswith("arm")
    return arm and ("vendor_id" in fields or "flags" in fields) and "CPU implementer" not in fields


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
    machine = platform.machine()
    arm = machine in ("aarch64", "arm64")
    emulated = is_emulated(machine, fields)
    core = ARM_CORES.get(fields.get("CPU part", "").lower()) if arm and not emulated else None
    if emulated:
        core = f"emulated {os.environ.get('QEMU_CPU', 'QEMU default core')}"
    cpu = core or fields.get("model name") or fields.get("Model") or platform.processor() or "unknown CPU"
    mhz = None if emulated else max_mhz() or (float(fields["cpu MHz"]) if "cpu MHz" in fields else None)
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return {
        "label": label or f"{cpu} ({machine}, {usable} cores)",
        "cpu": cpu,
        "machine": machine,
        "cores": cores,
        "usable_cores": usable,
        "max_mhz": mhz,
        "simd": arm_features(*auxv_hwcaps()) if arm else simd_features(fields),
        "emulated": emulated,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "runtimes": installed_versions(*RUNTIME_PACKAGES),
    }
