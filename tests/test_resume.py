"""Checkpoints: a run stopped at any step and resumed ends exactly as if it had never stopped."""

from __future__ import annotations

import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import cli
from painterly.checkpoint import (
    CheckpointError,
    checkpoint_path,
    file_digest,
    load_checkpoint,
    save_checkpoint,
)
from painterly.cli import common
from painterly.config import Config
from painterly.transfer import RunState, StepEvent, StyleTransfer

from .conftest import CONTENT, STYLE

BASE = {"size": 64, "seed": 3, "init": "noise", "patience": None}


def _stop_at(step: int, states: dict[int, RunState]):
    def callback(event: StepEvent) -> bool:
        states[event.step] = event.state()
        return event.step == step

    return callback


@pytest.mark.parametrize(
    ("options", "stop"),
    [
        ({"iterations": 10}, 4),
        ({"iterations": 10, "optimizer": "adam", "learning_rate": 0.02}, 6),
        ({"iterations": 8, "line_search": True}, 3),
        ({"scale_iterations": (5, 5), "scales": 2, "size": 96}, 5),  # at the end of a scale
        ({"scale_iterations": (5, 5), "scales": 2, "size": 96}, 7),  # inside the second
        ({"iterations": 10, "ema_decay": 0.8, "preserve_colors": "luminance"}, 5),
        ({"iterations": 8, "style_blend_weights": (3, 7), "style_loss": "w2"}, 3),
    ],
    ids=["lbfgs", "adam", "line-search", "scale-boundary", "second-scale", "ema", "two-styles"],
)
def test_resumed_run_ends_bit_for_bit_like_an_uninterrupted_one(
    options: dict[str, object], stop: int
) -> None:
    cfg = Config(**{**BASE, **options})
    style = [STYLE, CONTENT] if cfg.style_blend_weights else STYLE
    whole = StyleTransfer(cfg).run(CONTENT, style)
    states: dict[int, RunState] = {}
    part = StyleTransfer(cfg).run(CONTENT, style, _stop_at(stop, states))
    assert part.stop_reason == "stopped" and part.steps == stop
    resumed = StyleTransfer(cfg).run(CONTENT, style, resume=states[stop])
    assert torch.equal(resumed.image, whole.image)
    assert resumed.history == whole.history
    assert (resumed.steps, resumed.stop_reason) == (whole.steps, whole.stop_reason)


def test_resume_keeps_the_patience_rule_where_it_was() -> None:
    # A style weight of 0 from the content image: nothing to gain, the rule stops the run.
    options = {"init": "content", "init_colors": "content", "style_weight": 0.0, "patience": 3}
    cfg = Config(**{**BASE, **options}, iterations=50)
    whole = StyleTransfer(cfg).run(CONTENT, STYLE)
    assert whole.stop_reason == "converged" and whole.steps < 50
    for stop in range(1, whole.steps + 1):
        states: dict[int, RunState] = {}
        StyleTransfer(cfg).run(CONTENT, STYLE, _stop_at(stop, states))
        resumed = StyleTransfer(cfg).run(CONTENT, STYLE, resume=states[stop])
        assert (resumed.steps, resumed.stop_reason) == (whole.steps, "converged"), stop
        assert torch.equal(resumed.image, whole.image)


# The hostile file is a plain pickle (protocol 4+): torch's weights_only loader warns about
# its protocol before refusing it, as it should.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_checkpoint_file_round_trip_and_refusals(tmp_path: Path) -> None:
    cfg = Config(**BASE, iterations=3)
    states: dict[int, RunState] = {}
    StyleTransfer(cfg).run(CONTENT, STYLE, _stop_at(2, states))
    content = tmp_path / "c.jpg"
    content.write_bytes(CONTENT.read_bytes())
    inputs = {"content": str(content), "style": str(STYLE)}
    digests = {k: file_digest(v) for k, v in inputs.items()}
    path = save_checkpoint(tmp_path / "o.png.ckpt", states[2], cfg, inputs, digests, {"x": 1})
    ckpt = load_checkpoint(path)
    assert ckpt.config == cfg and ckpt.options == {"x": 1} and ckpt.inputs == inputs
    assert torch.equal(ckpt.state.image, states[2].image) and ckpt.state.steps == 2
    ckpt.verify_inputs()
    content.write_bytes(CONTENT.read_bytes() + b"\0")
    with pytest.raises(CheckpointError, match="changed since"):
        ckpt.verify_inputs()
    content.unlink()
    with pytest.raises(CheckpointError, match="gone"):
        ckpt.verify_inputs()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"format": "painterly-checkpoint", "x": Evil()}))
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    other = tmp_path / "other.ckpt"
    torch.save({"format": "painterly-checkpoint", "version": 99}, other)
    for bad, match in [(evil, "not a readable"), (garbage, "not a readable"), (other, "99")]:
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.ckpt")


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def _stylize(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "painterly", "stylize", str(CONTENT), str(STYLE), "-o", str(out),
        "--size", "64", "--iterations", "40", "--patience", "none", "--seed", "7", "-q", *extra,
    ]  # fmt: skip


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 240
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def test_sigint_at_a_random_moment_then_resume_gives_the_uninterrupted_picture(
    tmp_path: Path,
) -> None:
    whole = tmp_path / "whole.png"
    assert cli.main(_stylize(whole)[3:]) == 0
    out = tmp_path / "out.png"
    proc = subprocess.Popen(_stylize(out, "--save-every", "1"), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(tmp_path / "out_steps" / "step_00003.png", proc)
        time.sleep(random.uniform(0, 0.5))  # somewhere inside a later step
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    ckpt = checkpoint_path(out)
    assert f"painterly resume {ckpt}" in err and "Traceback" not in err
    assert ckpt.exists() and out.exists()
    assert load_checkpoint(ckpt).state.steps < 40  # it really stopped early
    done = subprocess.run(
        [sys.executable, "-m", "painterly", "resume", str(ckpt), "-q"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert np.array_equal(_pixels(out), _pixels(whole))
    assert not ckpt.exists()  # a finished run leaves no checkpoint behind


def test_sigkill_loses_only_the_steps_since_the_last_checkpoint(tmp_path: Path) -> None:
    whole = tmp_path / "whole.png"
    assert cli.main(_stylize(whole)[3:]) == 0
    out = tmp_path / "out.png"
    proc = subprocess.Popen(
        _stylize(out, "--checkpoint-every", "5", "--save-every", "1"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(tmp_path / "out_steps" / "step_00012.png", proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    state = load_checkpoint(checkpoint_path(out)).state
    assert state.steps in (10, 15)  # the last checkpoint before the kill
    assert cli.main(["resume", str(checkpoint_path(out)), "-q"]) == 0
    assert np.array_equal(_pixels(out), _pixels(whole))


def test_resume_refuses_a_changed_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = tmp_path / "photo.jpg"
    content.write_bytes(CONTENT.read_bytes())
    out = tmp_path / "o.png"
    args = ["stylize", str(content), str(STYLE), "-o", str(out), "--size", "64"]
    assert cli.main([*args, "--iterations", "4", "--checkpoint-every", "2", "-q"]) == 0
    assert not checkpoint_path(out).exists()
    # Stop it from inside, as a signal would, after a checkpoint was written.
    states: dict[int, RunState] = {}
    cfg = Config(size=64, iterations=4, seed=1)
    StyleTransfer(cfg).run(content, STYLE, _stop_at(2, states))
    inputs = {"content": str(content), "style": str(STYLE)}
    digests = {k: file_digest(v) for k, v in inputs.items()}
    save_checkpoint(checkpoint_path(out), states[2], cfg, inputs, digests, {"output": str(out)})
    with Image.open(CONTENT) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(content)
    assert cli.main(["resume", str(checkpoint_path(out))]) == 2
    assert "changed since the checkpoint" in capsys.readouterr().err


def test_a_second_signal_stops_at_once() -> None:
    with common.Signals() as signals:
        signals._handle(signal.SIGINT, None)
        assert signals.received == signal.SIGINT  # the first only asks
        with pytest.raises(KeyboardInterrupt):
            signals._handle(signal.SIGINT, None)
    with common.Signals() as signals:
        signals._handle(signal.SIGTERM, None)
        with pytest.raises(common.Terminated):
            signals._handle(signal.SIGTERM, None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
