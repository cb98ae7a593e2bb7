"""Atomic file writes (a temporary file in the target's folder, then a rename) and claims on
output paths (a lock file beside the output, so that two runs do not write one file at once).

A crash, a full disk or a kill at any moment leaves either the old file or the new one at the
path, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import secrets
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

__all__ = [
    "Claim",
    "ClaimedError",
    "atomic_write",
    "claim",
    "file_digest",
    "lock_path",
    "real_target",
]

try:
    _fcntl: ModuleType | None = importlib.import_module("fcntl")
except ImportError:  # Windows: no claims; the last run to finish writes the file
    _fcntl = None


def real_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` changes: ``path`` itself, or, when ``path`` is a symbolic
    link (to a file, or dangling), the file it finally points to (links of links followed)."""
    target = Path(path)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Create or replace ``path`` with what ``write`` writes to the open binary file it gets.

    Missing parent folders are created (a folder removed during a run is made again). When
    ``path`` is a symbolic link, the file it points to is replaced, atomically, and the link
    stays (:func:`real_target`). The temporary file is a fresh hidden name in the same folder
    as the file replaced (so that :func:`os.replace` is atomic), opened exclusively; unlike
    ``mkstemp`` it gets the usual permissions from the umask. It is removed if anything fails.

    Returns:
        ``path``, as given.

    Raises:
        OSError: the folder cannot be created or written; the file is then unchanged.
        Whatever ``write`` raises, after removing the temporary file.
    """
    target = real_target(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Path(path)


class ClaimedError(OSError):
    """Another process holds the claim on an output path.

    Attributes:
        path: the file claimed (symbolic links followed). pid: the claimant's process id, when
            its lock file says it.
    """

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"another painterly run (pid {pid})" if pid else "another painterly run"
        super().__init__(
            f"{path}: {who} is writing this file now; wait for it to end or choose another output"
        )
        self.path, self.pid = path, pid


class Claim:
    """A held claim on an output path (see :func:`claim`); :meth:`release` gives it back, and
    so does the end of the process or the claim's garbage collection."""

    def __init__(self, lock: Path, fd: int) -> None:
        self.lock = lock
        self._release = weakref.finalize(self, _let_go, lock, fd)

    @property
    def held(self) -> bool:
        """True until released."""
        return self._release.alive

    def release(self) -> None:
        """Remove the lock file and unlock it (a second call does nothing)."""
        self._release()


def _let_go(lock: Path, fd: int) -> None:
    with contextlib.suppress(OSError):  # before unlocking: a waiter then sees a new file
        lock.unlink(missing_ok=True)
    os.close(fd)


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of an output path: ``.NAME.lock`` beside the file really written."""
    target = real_target(path).absolute()
    return target.with_name(f".{target.name}.lock")


def claim(path: str | os.PathLike[str]) -> Claim | None:
    """Claim ``path`` for this process: an exclusive ``flock`` on :func:`lock_path`, which holds
    this process's id. Two paths that lead to one file (a symbolic link and its target) share
    the claim. The kernel gives the lock back when the process ends, however it ends; a lock
    file left by a killed run is taken over.

    Returns:
        The claim; None where files cannot be locked (no ``fcntl``, a file system without
        locks): the run then goes ahead unclaimed.

    Raises:
        ClaimedError: another process holds it (its pid in the message).
        OSError: the lock file cannot be created (the folder is missing or not writable).
    """
    if _fcntl is None:
        return None
    lock = lock_path(path)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise ClaimedError(real_target(path), int(text) if text.isdigit() else None) from None
        except OSError:  # no locks on this file system
            os.close(fd)
            return None
        try:  # its last holder may have removed the file between our open and our lock
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return Claim(lock, fd)


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, as hex.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
