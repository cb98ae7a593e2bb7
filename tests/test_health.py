"""Issue 16: a long-lived process levels off; runs on one computer take turns on its cores."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from painterly import memory
from painterly.memory import resident_memory
from painterly.turns import TurnStoppedError, take_turn

from .conftest import CONTENT, STYLE

MB = 2**20


_JOBS = """
import json, random, sys
from painterly import Config, StyleTransfer, memory
from painterly.job import Job

memory.TRIM_ABOVE = 32 * 2**20  # from its 256 MiB, so that 8 small jobs show the level
rng = random.Random(0)
config = Config(iterations=1, seed=0, patience=None)
rss = []
for _ in range(8):
    runner = StyleTransfer(config)  # a new network per job, as painterly.stylize makes
    Job(config.replace(size=rng.randint(48, 160)), sys.argv[1], [sys.argv[2]]).run(runner)
    del runner
    rss.append(memory.resident_memory() / 2**20)
print(json.dumps(rss))
"""


@pytest.mark.skipif(resident_memory() is None, reason="no /proc/self/status here")
def test_many_jobs_of_different_sizes_level_off() -> None:
    # glibc's heaps kept every freed block, 40+ MB a job at 48-160 px on the project's CPU
    # (benchmarks/bench_memory.py), until each run handed its memory back (release_memory)
    # and the networks shared their Winograd kernels (each new one made and freed ~400 MB: in
    # the test suite's process this grew by 114 MB over 6 jobs in CI). In a fresh process, so
    # that no earlier test's blocks decide where this one's go.
    out = subprocess.run(
        [sys.executable, "-c", _JOBS, str(CONTENT), str(STYLE)],
        check=True,
        capture_output=True,
        text=True,
    )
    rss = json.loads(out.stdout)
    # 12 MB over 8 jobs in float32 (AMD EPYC Zen 3), 22 MB in bf16 (Zen 4, avx512_bf16 yes): 50 MB
    # there, still climbing ~5 MB a job, before oneDNN's and ideep's caches were bounded.
    growth = max(rss[2:]) - rss[1]
    assert growth < 40, [round(r) for r in rss]


_CACHES = """
import os, painterly
print(os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"], os.environ["LRU_CACHE_CAPACITY"])
"""


def test_importing_painterly_bounds_the_kernel_libraries_caches_unless_set() -> None:
    # oneDNN and ideep read these once, at their first primitive: import painterly sets them
    # (1024 each by default: a process painting many sizes grew ~5 MB a job), a user's value wins.
    env = {k: v for k, v in os.environ.items() if k not in memory.LIBRARY_CACHE_CAPACITIES}
    run = [sys.executable, "-c", _CACHES]
    bounded = subprocess.run(run, env=env, check=True, capture_output=True, text=True)
    assert bounded.stdout.split() == list(memory.LIBRARY_CACHE_CAPACITIES.values())
    assert all(int(v) < 1024 for v in memory.LIBRARY_CACHE_CAPACITIES.values())
    env["LRU_CACHE_CAPACITY"] = "7"
    users = subprocess.run(run, env=env, check=True, capture_output=True, text=True)
    assert users.stdout.split() == [
        memory.LIBRARY_CACHE_CAPACITIES["ONEDNN_PRIMITIVE_CACHE_CAPACITY"],
        "7",
    ]


@pytest.mark.skipif(memory._MALLOC_TRIM is None, reason="no glibc malloc_trim here")
def test_release_memory_hands_freed_heap_pages_back_once_above_the_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 200 MB of 100 KB tensors (below glibc's mmap threshold: they live in its heaps), every
    # other one freed so that the holes cannot be trimmed from the heap's top alone: glibc
    # keeps them resident until malloc_trim(0) returns the free pages inside the heaps.
    monkeypatch.setattr(memory, "_AFTER_TRIM", {"bytes": resident_memory() or 0})
    monkeypatch.setattr(memory, "TRIM_ABOVE", 400 * MB)
    kept = [torch.ones(25_000) for _ in range(2000)]
    del kept[::2]
    before = resident_memory() or 0
    assert not memory.release_memory()  # below the threshold: no trim, pages kept
    assert (resident_memory() or 0) > before - 20 * MB
    assert memory.release_memory(force=True)
    assert (resident_memory() or 0) < before - 60 * MB, round(before / MB)
    assert memory._AFTER_TRIM["bytes"] == pytest.approx(resident_memory(), abs=8 * MB)
    del kept


_FAULTS = """
import json, resource, sys, torch
from painterly import memory

def faults():
    out = []
    for _ in range(12):  # 64 MiB tensors, each freed before the next
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.empty(16 * 2**20).fill_(1.0)
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return out

with memory.keep_freed_pages():
    with memory.keep_freed_pages():
        pass
    kept = faults() if sys.argv[1] == "inside" else None
print(json.dumps({"faults": kept or faults(), "runs": memory._KEEPING["runs"]}))
"""


def _faults(where: str) -> list[int]:
    """Page faults of 12 tensors of 64 MiB made ``inside`` a (nested) keep_freed_pages or
    ``after`` it, each in a fresh process: the heap's state is then the same on every run."""
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS, where], check=True, capture_output=True, text=True
    )
    result = json.loads(out.stdout)
    assert result["runs"] == 0
    faults: list[int] = result["faults"]
    return faults


@pytest.mark.skipif(memory._MALLOPT is None, reason="no glibc mallopt here")
def test_a_run_keeps_its_freed_pages_and_then_gives_the_defaults_back() -> None:
    # glibc unmaps every freed block over 32 MiB: each step of a 512 px run faulted ~0.7 GB
    # of pages in again (issue 17). Inside keep_freed_pages the blocks stay in glibc's heap
    # and, after a few (a 64-byte-aligned block does not fit the hole one freed just before
    # leaves: 7 on the project's CPU), new tensors reuse freed pages. Nested runs keep this
    # until the last one leaves; after it glibc's defaults are back: 16 384 pages a tensor.
    pages = 64 * MB // resource.getpagesize()
    inside, after = _faults("inside"), _faults("after")
    assert sum(inside[-5:]) < pages, inside  # at most one of the last five faulted
    assert min(after) > pages // 2, after


def test_a_run_waits_for_the_cores_another_holds(tmp_path: Path) -> None:
    holding, release, entered = threading.Event(), threading.Event(), threading.Event()
    waited: list[int | None] = []

    def first() -> None:
        with take_turn(2, 2, folder=tmp_path):
            holding.set()
            release.wait(30)

    def second() -> None:
        with take_turn(2, 2, on_wait=waited.append, folder=tmp_path):
            entered.set()

    a = threading.Thread(target=first)
    a.start()
    assert holding.wait(30)
    b = threading.Thread(target=second)
    b.start()
    while not waited and b.is_alive():
        b.join(0.05)
    assert waited == [os.getpid()] and not entered.is_set()  # it says whom it waits for
    release.set()
    a.join(30)
    b.join(30)
    assert entered.is_set()


def test_runs_of_one_thread_share_two_cores_and_a_stop_ends_the_wait(tmp_path: Path) -> None:
    with take_turn(1, 2, folder=tmp_path), take_turn(1, 2, folder=tmp_path):
        # both slots are held: a third run waits, and its stop request ends the wait
        asked: list[int | None] = []
        third = take_turn(1, 2, lambda: bool(asked), asked.append, tmp_path)
        with pytest.raises(TurnStoppedError), third:
            pytest.fail("the third run must not start")
        assert asked == [os.getpid()]
    with take_turn(2, 2, folder=tmp_path):  # all free again
        pass


def test_a_killed_run_leaves_its_cores_free(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from painterly.turns import take_turn\n"
        "with take_turn(2, 2, folder=Path(sys.argv[1])):\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "holding"
        waited: list[int | None] = []
        with (
            pytest.raises(TurnStoppedError),
            take_turn(1, 2, lambda: bool(waited), waited.append, tmp_path),
        ):
            pass
        assert waited == [child.pid]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    with take_turn(2, 2, folder=tmp_path):  # the kernel dropped the dead run's locks
        pass


def test_turns_off_starts_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAINTERLY_TURNS", "off")
    with take_turn(2, 2, folder=tmp_path), take_turn(2, 2, folder=tmp_path):
        pass
