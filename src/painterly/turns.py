"""Runs on one computer share its cores by taking turns (issue 16): a slot per core, locked.

Two painterly processes each running torch's default threads (one per core) run each other
3–5× slower: their OpenMP threads spin against each other. So every run takes, before its first
step, one slot per thread it uses: slot ``k`` is an advisory lock (``flock``) on
``cores-k.lock`` in :func:`lock_folder`, held until the run ends. The kernel releases a lock
when its process exits, crashes or is killed, so a slot is never left taken. A run whose slots
are busy waits; a run of 1 thread beside another of 1 thread on 2 cores does not.

Fairness: a run waiting for its slots first holds ``gate.lock``, so that runs arriving later
(a batch worker's next job) wait behind it instead of taking the slots it waits for; slots are
only ever waited for by the gate's holder, and no holder of a slot asks for more, so there is
no deadlock. ``PAINTERLY_TURNS=off`` turns it off (every run starts at once).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

__all__ = ["TurnStoppedError", "lock_folder", "take_turn", "turns_enabled"]

try:
    _fcntl: ModuleType | None = importlib.import_module("fcntl")
except ImportError:  # Windows: runs then start at once
    _fcntl = None

#: Seconds between two looks at busy slots.
POLL = 0.2


class TurnStoppedError(Exception):
    """The stop request came while the run was waiting for its turn: nothing was painted."""


def lock_folder() -> Path:
    """Where the slots' lock files are: ``$PAINTERLY_LOCK_DIR``, else ``painterly`` in
    ``$XDG_RUNTIME_DIR`` (the user's runtime folder), else in the system's temporary folder
    (``painterly-UID``)."""
    if os.environ.get("PAINTERLY_LOCK_DIR"):
        return Path(os.environ["PAINTERLY_LOCK_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "painterly"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"painterly-{uid}"


def turns_enabled() -> bool:
    """False when ``PAINTERLY_TURNS`` is ``off``, ``0``, ``no`` or ``false``, or without fcntl."""
    value = os.environ.get("PAINTERLY_TURNS", "on").strip().lower()
    return _fcntl is not None and value not in ("off", "0", "no", "false")


def _open(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None


def _try_lock(fd: int) -> bool:
    assert _fcntl is not None
    try:
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    except OSError:
        return False
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)  # for the waiting message of others
    return True


def _holder(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip() or "x")
    return None


def _release(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the last descriptor drops the flock
    fds.clear()


def _take_slots(slots: list[int], want: int) -> list[int] | None:
    """``want`` free slots, locked, or None (then none is held)."""
    assert _fcntl is not None
    taken: list[int] = []
    for fd in slots:
        if len(taken) == want:
            break
        if _try_lock(fd):
            taken.append(fd)
    if len(taken) == want:
        return taken
    for fd in taken:
        _fcntl.flock(fd, _fcntl.LOCK_UN)
    return None


def _busy_holder(gate: int, slots: list[int]) -> int | None:
    """The pid of a run that holds a slot this one waits for (or the gate), if it says."""
    for fd in slots:
        if _try_lock(fd):
            assert _fcntl is not None
            _fcntl.flock(fd, _fcntl.LOCK_UN)
        else:
            return _holder(fd)
    return _holder(gate)


def _wait_for(
    folder: Path,
    want: int,
    cores: int,
    stopped: Callable[[], bool],
    on_wait: Callable[[int | None], object] | None,
) -> list[int]:
    """Hold ``want`` of the ``cores`` slots, waiting for them behind the gate.

    Raises:
        TurnStoppedError: ``stopped()`` became true while waiting.
    """
    gate = _open(folder / "gate.lock")
    slots = [fd for k in range(cores) if (fd := _open(folder / f"cores-{k}.lock")) is not None]
    taken: list[int] = []
    try:
        if gate is None or len(slots) < want:
            return []  # the folder cannot be used: run at once
        told = False
        while True:
            if _try_lock(gate):
                taken = _take_slots(slots, want) or []
                if taken:
                    return taken
            if stopped():
                raise TurnStoppedError("stopped while waiting for the cores")
            if not told and on_wait is not None:
                on_wait(_busy_holder(gate, slots))
                told = True
            time.sleep(POLL)
    finally:
        _release([fd for fd in [gate, *slots] if fd is not None and fd not in taken])


@contextlib.contextmanager
def take_turn(
    threads: int,
    cores: int,
    stopped: Callable[[], bool] = lambda: False,
    on_wait: Callable[[int | None], object] | None = None,
    folder: Path | None = None,
) -> Iterator[None]:
    """Hold ``min(threads, cores)`` slots (at least one) for the block; wait for them first.

    Args:
        threads: the CPU threads the run uses. cores: the slots there are (the machine's
            physical cores).
        stopped: polled while waiting (every :data:`POLL` s); true ends the wait.
        on_wait: called once, with the pid of a run being waited for (None if unknown), when
            the slots are busy.
        folder: the lock files' folder (default :func:`lock_folder`).

    Raises:
        TurnStoppedError: ``stopped()`` became true before the turn came.

    Where turns are off (:func:`turns_enabled`) or the folder cannot be made, it waits for
    nothing.
    """
    folder = folder or lock_folder()
    held: list[int] = []
    if turns_enabled():
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            pass
        else:
            held = _wait_for(folder, max(1, min(threads, cores)), max(1, cores), stopped, on_wait)
    try:
        yield
    finally:
        _release(held)
