"""painterly video: the temporal loss and its mask (Ruder, Dosovitskiy & Brox 2016), the flow,
the measurable result on a panned photo, stop and resume, and the command's messages.
Real weights, float32, 64 px, a few frames of a few steps."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from painterly import cli
from painterly.checkpoint import checkpoint_path
from painterly.config import Config, ConfigError
from painterly.files import file_digest
from painterly.flow import (
    consistency_weight,
    flicker,
    frame_pair,
    optical_flow,
    temporal_difference,
)
from painterly.images import load_image, resize_longest, save_image
from painterly.job import StopRequest
from painterly.ladder import scaled
from painterly.losses import temporal_loss
from painterly.media import VideoError, open_clip, read_frames, write_video
from painterly.objective import Objective, TemporalTarget
from painterly.recipe import read_recipe
from painterly.transfer import StyleTransfer
from painterly.video import FrameEvent, VideoOptions, VideoRun

from .conftest import EXAMPLES, STYLE, pan_frames

PHOTO = EXAMPLES / "content" / "tubingen.jpg"
CONFIG = {"size": 64, "precision": "fp32", "convolution": "direct", "patience": None, "seed": 0}
FIRST, LATER, FRAMES = 20, 10, 4


@pytest.fixture(scope="module")
def pan_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pan")
    for k, frame in enumerate(pan_frames(FRAMES)):
        save_image(frame, folder / f"f{k + 1}.png")
    return folder


@pytest.fixture(scope="module")
def runner() -> StyleTransfer:
    return StyleTransfer(Config(**CONFIG))  # type: ignore[arg-type]


def _video(folder: Path, out: Path, independent: bool, stop: StopRequest | None = None) -> VideoRun:
    config = Config(iterations=FIRST, **CONFIG)  # type: ignore[arg-type]
    options = VideoOptions(frame_iterations=LATER, independent=independent, checkpoint_every=0)
    return VideoRun(config, folder, [STYLE], out, options, stop)


@pytest.fixture(scope="module")
def painted(
    pan_folder: Path, runner: StyleTransfer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, VideoRun]:
    """The pan, stylised as independent frames and with the temporal loss."""
    out = tmp_path_factory.mktemp("painted")
    runs = {}
    for name in ("independent", "temporal"):
        video = _video(pan_folder, out / name, name == "independent")
        video.run(runner)
        runs[name] = video
    return runs


def _frames(video: VideoRun) -> list[torch.Tensor]:
    return [load_image(video.frame_path(k)) for k in range(1, FRAMES + 1)]


def test_temporal_loss_is_the_masked_mean_and_its_gradient_reaches_the_image() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 6, 8, generator=gen).requires_grad_(True)
    warped = torch.rand(1, 3, 6, 8, generator=gen)
    c = torch.ones(1, 1, 6, 8)
    c[..., :, :3] = 0
    loss = temporal_loss(x, warped, c)
    expected = ((x - warped).square() * c).sum() / (3 * 6 * 8)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    loss.backward()
    assert x.grad is not None
    assert torch.allclose(x.grad, 2 * c * (x - warped).detach() / (3 * 6 * 8), atol=1e-7)
    assert float(x.grad[..., :3].abs().max()) == 0 and float(x.grad[..., 3:].abs().min()) > 0
    with pytest.raises(ValueError, match="do not match"):
        temporal_loss(x, warped[..., :4], c)


def test_the_weight_is_zero_at_disocclusions_motion_boundaries_and_outside() -> None:
    h, w = 10, 12
    forward = np.zeros((h, w, 2), np.float32)
    forward[..., 0] = -3.0  # a pan: everything moves 3 px left
    backward = -forward
    c = consistency_weight(forward, backward)[0, 0]
    assert c[:, : w - 3].min() == 1 and c[:, w - 3 :].max() == 0  # entering columns
    broken = forward.copy()
    broken[4:6, 6:8, 0] = 3.0  # the forward flow there does not undo the backward one
    c = consistency_weight(broken, backward)[0, 0]
    assert c[4:6, 3:5].max() == 0  # x + ŵ(x) lands on the broken patch
    assert c[4:6, 6:8].min() == 1 and c[:4, : w - 3].min() == 1
    step = np.zeros((h, w, 2), np.float32)
    step[:, 6:, 1] = 2.0  # half the frame moves down: a motion boundary at column 6
    c = consistency_weight(-step, step)[0, 0]
    assert c[:4, 5:7].max() == 0 and c[:4, :4].min() == 1  # |∇v̂|² = 1 > 0.01·4 + 0.002


def test_dis_flow_of_a_pan_and_the_warp_that_follows_it() -> None:
    a, b = pan_frames(2, shift=3)
    flow = optical_flow(a, b)
    assert np.median(flow[8:40, 8:56, 0]) == pytest.approx(-3, abs=0.2)
    pair = frame_pair(a, b)
    assert 0.85 < pair.reliable < 1
    unwarped = float((b - a).abs().mean())
    assert temporal_difference(b, a, pair) < unwarped / 5


def test_the_objective_adds_the_temporal_term_only_where_the_flow_is_reliable(
    runner: StyleTransfer,
) -> None:
    a, b = pan_frames(2)
    config = Config(**CONFIG)  # type: ignore[arg-type]
    c, styles = scaled(config, b, [load_image(STYLE)], 64, runner.device)
    weight = torch.ones(1, 1, 48, 64)
    weight[..., :, :32] = 0
    still = Objective.at_scale(runner.network, config, c, styles)
    video = Objective.at_scale(
        runner.network, config, c, styles, temporal=TemporalTarget(a, weight)
    )
    grads = []
    for objective in (still, video):
        x = c.clone().requires_grad_(True)
        total, terms = objective(x)
        total.backward()
        assert x.grad is not None
        grads.append(x.grad)
    expected = config.temporal_weight * temporal_loss(c, a, weight)
    assert float(terms["temporal"].detach()) == pytest.approx(float(expected), rel=1e-5)
    assert terms["temporal/previous"] is terms["temporal"]
    parts = terms["content"] + terms["style"] + terms["tv"] + terms["temporal"]
    assert float(terms["total"]) == pytest.approx(float(parts), rel=1e-6)
    assert torch.equal(grads[0][..., :32], grads[1][..., :32])  # c = 0: no pull
    assert not torch.allclose(grads[0][..., 32:], grads[1][..., 32:])


def test_a_temporal_mask_without_a_target_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs a temporal_target"):
        Config(temporal_mask="mask.png")


def test_the_temporal_loss_halves_the_flicker_and_keeps_the_style_loss(
    painted: dict[str, VideoRun], pan_folder: Path, runner: StyleTransfer
) -> None:
    """Issue 14's measurable result: the masked difference between each stylised frame and
    the previous one warped by the input's flow falls by at least half against independent
    frames, while each frame's style loss stays within 10 %."""
    inputs = [load_image(painted["temporal"].work / f"input_{k:05d}.png") for k in range(1, 5)]
    flickers, styles = {}, {}
    style = load_image(STYLE)
    for name, video in painted.items():
        outputs = _frames(video)
        flickers[name] = flicker(inputs, outputs).mean
        losses = []
        for content, out in zip(inputs, outputs, strict=True):
            c, s = scaled(video.config, content, [style], 64, runner.device)
            objective = Objective.at_scale(runner.network, video.config, c, s)
            losses.append(float(objective(out)[1]["style"]))
        styles[name] = losses
    assert flickers["temporal"] <= 0.5 * flickers["independent"], flickers
    recipe = read_recipe(painted["temporal"].frame_path(2))  # its ω and c are inputs there
    warped = painted["temporal"].work / "warped_00002.png"
    assert recipe["inputs"]["temporal"]["sha256"] == file_digest(warped)
    assert recipe["config"]["temporal_mask"] == str(warped.with_name("weight_00002.png"))
    assert recipe["config"]["init"] == str(warped) and recipe["run"]["steps"] == LATER
    for temporal, independent in zip(styles["temporal"], styles["independent"], strict=True):
        assert temporal <= 1.10 * independent, styles


def test_a_killed_or_stopped_video_resumes_at_its_frame_and_ends_as_if_never_stopped(
    painted: dict[str, VideoRun], pan_folder: Path, runner: StyleTransfer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(painted["temporal"].frames_dir, out)
    (out / f"frame_{FRAMES:05d}.png").unlink()  # killed while painting the last frame
    stop = StopRequest()

    def listener(event: FrameEvent) -> None:
        if event.step is not None and event.step.step == 3:
            stop.request("test")

    results = _video(pan_folder, out, False, stop).run(runner, listener)
    assert [r.outcome is None for r in results] == [True] * (FRAMES - 1) + [False]  # skipped
    assert results[-1].outcome is not None and results[-1].outcome.stopped
    assert checkpoint_path(out / f"frame_{FRAMES:05d}.png").is_file()
    again = _video(pan_folder, out, False).run(runner)
    last = again[-1].outcome
    assert last is not None and not last.stopped and last.result.steps == LATER
    assert not checkpoint_path(out / f"frame_{FRAMES:05d}.png").exists()
    for k in range(1, FRAMES + 1):
        mine = load_image(out / f"frame_{k:05d}.png")
        assert torch.equal(mine, load_image(painted["temporal"].frame_path(k))), f"frame {k}"


def _clip(path: Path, frames: int = 6, fps: int = 10, audio: bool = True) -> Path:
    """A small H.264 clip of the pan (96 × 64 px), with a 440 Hz AAC tone."""
    wide = resize_longest(load_image(PHOTO), 96 + 2 * frames)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        sound = out.add_stream("aac", rate=44100) if audio else None
        for k in range(frames):
            window = wide[0, :, :64, 2 * k : 2 * k + 96].permute(1, 2, 0)
            rgb = np.ascontiguousarray((window * 255).round().byte().numpy())
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        out.mux(video.encode())
        if sound is not None:
            tone = np.sin(np.arange(44100 * frames // fps) * (2 * np.pi * 440 / 44100))
            frame = av.AudioFrame.from_ndarray(
                (0.3 * tone).astype(np.float32)[None], format="flt", layout="mono"
            )
            frame.sample_rate = 44100
            out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return path


def test_frames_are_decoded_in_their_time_range_and_encoded_with_the_audio(tmp_path: Path) -> None:
    clip = open_clip(_clip(tmp_path / "in.mp4"))
    assert (clip.width, clip.height, float(clip.fps), clip.frames, clip.audio) == (
        96,
        64,
        10,
        6,
        True,
    )
    frames = list(read_frames(clip, start=0.2, end=0.5))
    assert len(frames) == 3 and frames[0].shape == (1, 3, 64, 96)
    files = [save_image(f, tmp_path / f"f{k}.png") for k, f in enumerate(frames)]
    assert write_video(files, tmp_path / "out.mp4", clip.fps, clip, 0.2, 0.5)
    out = open_clip(tmp_path / "out.mp4")
    assert (out.frames, float(out.fps), out.audio) == (3, 10, True)
    back = list(read_frames(out))
    assert float((back[1] - frames[1]).abs().mean()) < 4 / 255  # H.264 at crf 18


def test_a_corrupt_video_and_an_unknown_output_are_one_message_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _clip(tmp_path / "in.mp4", audio=False)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(good.read_bytes()[:48] + bytes(2000))
    argv = [str(STYLE), "--size", "64", "--iterations", "2", "-q"]
    assert cli.main(["video", str(broken), *argv, "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"painterly: error: {broken}: ") and err.count("\n") == 1, err
    assert cli.main(["video", str(good), *argv, "-o", str(tmp_path / "o.gif")]) == 2
    assert "write the video as .mp4" in capsys.readouterr().err
    corrupt = tmp_path / "frames"
    corrupt.mkdir()
    save_image(pan_frames(1)[0], corrupt / "f1.png")
    (corrupt / "f2.png").write_bytes(b"not a png")
    with pytest.raises(VideoError, match="frame 2 of"):
        list(read_frames(open_clip(corrupt)))


def test_the_command_writes_a_video_with_its_rate_and_audio_and_resume_finds_it_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = _clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    args = ["video", str(clip), str(STYLE), "-o", str(out), "--size", "64", "--iterations", "3",
            "--frame-iterations", "2", "--max-frames", "3", "--precision", "fp32",
            "--convolution", "direct", "-q"]  # fmt: skip
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert f"wrote {out} with its audio: 3 frames (3 painted)" in err
    written = open_clip(out)
    assert (written.frames, float(written.fps), written.audio) == (3, 10, True)
    assert (written.width, written.height) == (64, 42)  # 64 x 43, cropped to even sides
    assert sorted(p.name for p in (tmp_path / "out_frames").glob("*.png"))[-1] == "frame_00003.png"
    assert cli.main(["resume", str(out), "-q"]) == 0
    assert "3 frames (0 painted, 3 already done)" in capsys.readouterr().err
