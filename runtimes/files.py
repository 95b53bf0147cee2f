"""Atomic output (temp file or folder, then rename) and content hashes, shared by every package."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # what every tool reads as images


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader sees the old file or the whole new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def staging_dir(beside: Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `beside` (same file system, so it can be renamed); removed on exit
    unless it was moved away with replace_dir."""
    beside = Path(beside)
    beside.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{beside.name}.", suffix=".tmp", dir=beside.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(source: Path, final: Path) -> None:
    """Rename `source` to `final`, replacing any folder there: a reader sees the old folder or the new one."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old.{os.getpid()}")
        os.replace(final, old)
    os.replace(source, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_output_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `final`; on success it replaces `final`, on error it is removed."""
    with staging_dir(final) as tmp:
        yield tmp
        replace_dir(tmp, Path(final))


def prepare_output(path: Path, suffixes: tuple[str, ...] | None = None) -> Path:
    """Create the target's folder if missing and prove it is writable; ValueError naming the path if not."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(f"{path}: unsupported suffix {path.suffix!r}; use one of {', '.join(suffixes)}")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{path}: cannot write here ({err.strerror or err})") from err
    _prove_writable(path.parent, path)
    return path


def prepare_output_dir(path: Path) -> Path:
    """Prove an output folder is there or can be made, and can be written in, before any work and without
    creating it; ValueError naming the path if not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: is a file; give a folder for the outputs")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{path}: cannot be made, {existing} is a file")
    _prove_writable(existing, path)
    return path


def _prove_writable(folder: Path, target: Path) -> None:
    """Create and remove a probe file in `folder` (permission bits say nothing to root or on read-only mounts)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".facekit.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{target}: cannot write in {folder} ({err.strerror or err})") from err


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def shared_dir() -> Path:
    """The shared data folder: $FACEKIT_SHARED, else ../shared beside the repository."""
    env = os.environ.get("FACEKIT_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
