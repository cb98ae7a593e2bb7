"""Atomic file writes: a temporary file in the target's folder, then a rename.

A crash, a full disk or a kill at any moment leaves either the old file or the new one at the
path, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "file_digest"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Create or replace ``path`` with what ``write`` writes to the open binary file it gets.

    Missing parent folders are created. The temporary file is a fresh hidden name in the same
    folder (so that :func:`os.replace` is atomic), opened exclusively; unlike ``mkstemp`` it gets
    the usual permissions from the umask. It is removed if anything fails.

    Raises:
        OSError: the folder cannot be created or written; ``path`` is then unchanged.
        Whatever ``write`` raises, after removing the temporary file.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


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
