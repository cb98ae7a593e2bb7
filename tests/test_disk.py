"""The disk (issue 16, item 4): a write that fails half-way (faults injected into the write), an
output folder removed during a run, an output that is a symbolic link, two runs writing one
output at once."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

import painterly.images
import painterly.job
from painterly import cli, files
from painterly.config import Config
from painterly.files import ClaimedError, claim, lock_path
from painterly.images import load_image, save_image
from painterly.job import Job, JobError, SaveError, save_or_rescue
from painterly.transfer import StyleTransfer

from .conftest import CONTENT, STYLE


def _full_disk(monkeypatch: pytest.MonkeyPatch, folders: set[Path]) -> None:
    """Writes into ``folders`` put 100 bytes down, then fail with ENOSPC (a full disk)."""
    real = files.atomic_write

    def atomic_write(path: Any, write: Any) -> Path:
        if Path(path).parent.resolve() not in folders:
            return real(path, write)

        def half(f: Any) -> None:
            f.write(b"\x89PNG" + b"x" * 96)
            raise OSError(errno.ENOSPC, "No space left on device")

        return real(path, half)

    monkeypatch.setattr(painterly.images, "atomic_write", atomic_write)


def test_failed_save_keeps_old_file_and_rescues_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir, spare_dir = tmp_path / "out", tmp_path / "spare"
    out_dir.mkdir()
    old = out_dir / "picture.png"
    old.write_bytes(b"the picture of before")
    monkeypatch.setenv("PAINTERLY_RESCUE_DIR", str(spare_dir))
    _full_disk(monkeypatch, {out_dir.resolve()})
    image = torch.rand(1, 3, 16, 24)
    with pytest.raises(SaveError) as caught:
        save_or_rescue(image, old, {"seed": 1})
    err = caught.value
    assert old.read_bytes() == b"the picture of before"
    assert sorted(p.name for p in out_dir.iterdir()) == ["picture.png"]  # no .part left
    assert "No space left on device" in str(err) and str(spare_dir / "picture.png") in str(err)
    assert err.rescued == spare_dir / "picture.png" and err.rescued.stat().st_size > 100
    assert err.image is image


def test_failed_save_and_failed_rescue_say_the_picture_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir, spare_dir = tmp_path / "out", tmp_path / "spare"
    out_dir.mkdir()
    spare_dir.mkdir()
    monkeypatch.setenv("PAINTERLY_RESCUE_DIR", str(spare_dir))
    _full_disk(monkeypatch, {out_dir.resolve(), spare_dir.resolve()})
    with pytest.raises(SaveError, match=r"failed too .* the picture is lost") as caught:
        save_or_rescue(torch.rand(1, 3, 16, 16), out_dir / "p.png", None)
    assert caught.value.rescued is None and list(spare_dir.iterdir()) == []


def test_failed_checkpoint_lets_the_run_go_on(tmp_path: Path) -> None:
    def refuse(state: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    job = Job(Config(), torch.rand(1, 3, 32, 32), [torch.rand(1, 3, 32, 32)], tmp_path / "p.png")
    job.save_checkpoint = refuse  # type: ignore[method-assign]
    job._try_checkpoint(types.SimpleNamespace(steps=7))  # type: ignore[arg-type]
    assert job.checkpoint_failure is not None
    assert "at step 7 (No space left on device)" in job.checkpoint_failure


def test_a_failed_step_image_lets_the_run_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = tmp_path / "steps"
    steps.mkdir()
    _full_disk(monkeypatch, {steps.resolve()})
    job = Job(Config(), torch.rand(1, 3, 32, 32), [torch.rand(1, 3, 32, 32)], None, save_every=1)
    job.save_dir = steps
    for step in (3, 4):
        job._try_save_step(types.SimpleNamespace(step=step, image=lambda: torch.rand(1, 3, 8, 8)))  # type: ignore[arg-type]
    assert job.step_failure == (
        f"the step image {steps / 'step_00003.png'} could not be written (No space left on "
        "device); the run went on without it"
    )
    assert list(steps.iterdir()) == []


def test_an_output_folder_removed_during_the_run_is_made_again(tmp_path: Path) -> None:
    """Its checkpoint and the picture are written where asked, and the outcome says so."""
    import shutil

    out = tmp_path / "out" / "deep" / "p.png"
    config = Config(size=64, iterations=3, scales=1, seed=0, patience=None)
    job = Job(config, CONTENT, [STYLE], out, checkpoint_every=0)
    job.check_files()

    def remove_at_step_one(event: object) -> None:
        if getattr(event, "step", 0) == 1:
            shutil.rmtree(tmp_path / "out")
            job.stop.request("test")  # stop: the checkpoint is written at this step, and kept

    outcome = job.run(StyleTransfer(config), remove_at_step_one)
    assert outcome.stopped and outcome.checkpoint == out.with_name("p.png.ckpt")
    assert outcome.checkpoint.stat().st_size > 0
    assert load_image(out).shape[-2:] == outcome.image.shape[-2:]
    assert any(f"the output folder {out.parent} was removed" in w for w in outcome.warnings)
    assert not lock_path(out).exists()  # the claim was given back


def test_an_output_that_is_a_symlink_is_written_through_atomically(tmp_path: Path) -> None:
    real = tmp_path / "pictures"
    real.mkdir()
    (real / "p.png").write_bytes(b"the picture of before")
    link, dangling = tmp_path / "p.png", tmp_path / "new.png"
    link.symlink_to(real / "p.png")
    dangling.symlink_to(real / "new.png")
    for path in (link, dangling):
        save_image(torch.rand(1, 3, 8, 8), path)
        assert path.is_symlink()  # the link stays a link ...
        assert load_image(path).shape == (1, 3, 8, 8)  # ... to the new picture
    assert sorted(p.name for p in real.iterdir()) == ["new.png", "p.png"]  # no .part left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.png", "p.png", "pictures"]
    # A link and its target are one output: a claim on one is a claim on the other.
    held = claim(link)
    assert held is not None and lock_path(link) == real / ".p.png.lock"
    with pytest.raises(ClaimedError) as caught:
        claim(real / "p.png")
    assert caught.value.pid == os.getpid()
    held.release()
    assert not (real / ".p.png.lock").exists()
    again = claim(real / "p.png")
    assert again is not None and again.held
    again.release()


def test_a_second_run_on_the_same_output_is_refused_naming_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.png"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from painterly.files import claim; "
            f"c = claim({str(out)!r}); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        argv = ["stylize", str(CONTENT), str(STYLE), "-o", str(out), "--size", "64"]
        assert cli.main([*argv, "--iterations", "1", "--scales", "1", "-q"]) == cli.EXIT_USAGE
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [
            f"painterly: error: {out}: another painterly run (pid {holder.pid}) is writing this "
            "file now; wait for it to end or choose another output"
        ]
        job = Job(Config(), CONTENT, [STYLE], out.with_name("./p.png"))
        with pytest.raises(JobError, match=f"pid {holder.pid}"):
            job.claim_output()
    finally:
        holder.kill()
        holder.wait()
    # Killed, it leaves its lock file; the kernel has let go of the lock, so it is taken over.
    assert lock_path(out).exists()
    taken = claim(out)
    assert taken is not None and lock_path(out).read_text() == f"{os.getpid()}\n"
    taken.release()


@pytest.mark.parametrize(("seconds", "expected"), [(0.0, [None, 1, 2, 3]), (1e9, [None] * 4)])
def test_a_checkpoint_is_also_written_once_enough_work_has_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seconds: float, expected: list[int | None]
) -> None:
    """Found painting 4096 px: the default ladder's top scale, 10 steps of over a minute each,
    had no step on a multiple of --checkpoint-every, so a kill lost it all. Now a checkpoint
    also follows the first step past job.CHECKPOINT_SECONDS of work since the last."""
    monkeypatch.setattr(painterly.job, "CHECKPOINT_SECONDS", seconds)
    config = Config(size=64, iterations=4, scales=1, seed=0, patience=None)
    job = Job(config, CONTENT, [STYLE], tmp_path / "p.png", checkpoint_every=1000)
    job.check_files()
    seen: list[int | None] = []
    job.run(StyleTransfer(config), lambda event: seen.append(job.checkpointed_at))
    assert seen == expected  # the listener sees the checkpoint of the step before
