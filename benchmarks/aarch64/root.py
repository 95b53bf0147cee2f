"""The emulated arm64 root: a Debian bookworm (Python 3.11, as Raspberry Pi OS) built once with mmdebstrap and
cached, a venv with the aarch64 wheels, the project installed from the working tree, commands run by chroot
under a chosen core (QEMU_CPU). Needs root, qemu-user-static with binfmt, and mmdebstrap on this host."""
from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

DEFAULT_ROOT = Path.home() / ".cache" / "facekit" / "aarch64" / "bookworm"
VENV = "/opt/venv"
PROJECT = "/opt/facekit"
# aarch64 wheels of the base install (no tflite-runtime wheel exists there: ai-edge-litert is the interpreter)
# and matplotlib for the benchmark's plots.
WHEELS = ("numpy", "opencv-python-headless", "onnxruntime", "ai-edge-litert", "ncnn", "MNN", "scipy", "tqdm",
          "matplotlib")
HOST_CERTS = "/etc/ssl/certs/ca-certificates.crt"
HOST_SETUP = ("apt-get install qemu-user-static binfmt-support mmdebstrap && "
              "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64")


def check_host() -> None:
    """Clear errors, with the commands that fix them, before any long step."""
    if os.geteuid() != 0:
        raise ValueError("the emulated root needs root (chroot and mounts); run as root")
    missing = [tool for tool in ("mmdebstrap", "qemu-aarch64-static", "chroot") if shutil.which(tool) is None]
    binfmt = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if missing or not binfmt.is_file() or "enabled" not in binfmt.read_text():
        raise ValueError(f"aarch64 emulation is not set up here ({', '.join(missing) or 'binfmt not enabled'}); "
                         f"run: {HOST_SETUP}")


def run_logged(command: list[str], log: Path, env: dict | None = None, timeout: float = 3600) -> str:
    """Run a command, append its output to `log`, return its stdout; RuntimeError naming the log if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    with open(log, "a") as f:
        f.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{command[0]} {' '.join(command[1:3])} ... failed ({tail}); see {log}")
    return done.stdout


def chroot(root: Path, command: list[str], log: Path, core: str | None = None, timeout: float = 3600) -> str:
    """Run `command` inside the root (as the venv's programs), emulating `core` (e.g. cortex-a72) if given."""
    env = {"PATH": f"{VENV}/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    if (root / HOST_CERTS.lstrip("/")).is_file():
        env["PIP_CERT"] = HOST_CERTS
    if core:
        env["QEMU_CPU"] = core
    return run_logged([shutil.which("chroot") or "/usr/sbin/chroot", str(root), *command], log, env=env,
                      timeout=timeout)


@contextmanager
def mounted(root: Path):
    """/proc and /dev inside the root for the duration; never /sys: with the host's /sys, onnxruntime reads the x86
    CPU topology and segfaults at import under emulation."""
    points = [(Path("/proc"), root / "proc", ["-t", "proc", "proc"]), (Path("/dev"), root / "dev", ["--bind", "/dev"])]
    done = []
    try:
        for _, target, how in points:
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", *how, str(target)], check=True, capture_output=True)
            done.append(target)
        yield root
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


def ensure_root(root: Path, log: Path) -> None:
    """Build the root (in `<root>.partial`, then renamed) and its venv, unless both are complete (a stamp file is
    written only after every wheel installed, so a failed attempt is resumed, never taken for a finished root)."""
    stamp = root / VENV.lstrip("/") / ".facekit-wheels"
    if not (root / "usr" / "bin" / "python3").exists():
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        run_logged(["mmdebstrap", "--arch=arm64", "--variant=apt",
                    "--include=python3,python3-venv,python3-pip,libgomp1", "bookworm", str(partial)], log)
        shutil.rmtree(root, ignore_errors=True)
        os.replace(partial, root)
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")  # pip inside reaches the package registry
    if Path(HOST_CERTS).is_file():  # the host's CAs, in case its registry is reached through a TLS proxy
        (root / HOST_CERTS.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(HOST_CERTS, root / HOST_CERTS.lstrip("/"))
    if stamp.is_file():
        return
    with mounted(root):
        chroot(root, ["/usr/bin/python3", "-m", "venv", VENV], log)
        chroot(root, ["pip", "install", "--quiet", *WHEELS], log)
    stamp.write_text(" ".join(WHEELS) + "\n")


def install_project(root: Path, repo: Path, log: Path) -> None:
    """Copy the working tree (tracked files and new ones git does not ignore) into the root and pip-install it
    (the base install, no extras)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                           capture_output=True, check=True).stdout
    target = root / PROJECT.lstrip("/")
    shutil.rmtree(target, ignore_errors=True)
    for name in filter(None, files.decode().split("\0")):
        source = repo / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    chroot(root, ["pip", "install", "--quiet", PROJECT], log)
