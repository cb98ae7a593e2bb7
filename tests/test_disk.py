"""The disk (issue 16, item 4): a write that fails half-way, faults injected into the write."""

from __future__ import annotations

import errno
import types
from pathlib import Path
from typing import Any

import pytest
import torch

import painterly.images
from painterly import files
from painterly.job import Job, SaveError, save_or_rescue


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

    job = types.SimpleNamespace(
        checkpoint=tmp_path / "p.png.ckpt", save_checkpoint=refuse, checkpoint_failure=None
    )
    Job._try_checkpoint(job, types.SimpleNamespace(steps=7))  # type: ignore[arg-type]
    assert "at step 7 (No space left on device)" in job.checkpoint_failure
