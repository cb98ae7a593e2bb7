"""Several videos and chunks of one through painterly.workers (issue 14, item 5): the chunk
plan, the same frames from 2 local workers as from a serial chunked run, the warm-up at a
chunk's boundary, resume at the next unfinished frame of a chunk, the command's outputs.
Real weights, 64 px, a 6-frame pan, a few steps a frame; one thread, fp32, direct
convolutions for pixel equality across processes (as tests/test_batch.py's SAME)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from painterly import cli
from painterly.checkpoint import checkpoint_path
from painterly.config import Config
from painterly.images import load_image, save_image
from painterly.job import JobError, StopRequest
from painterly.media import open_clip
from painterly.recipe import read_recipe
from painterly.transfer import StyleTransfer
from painterly.video import Part, VideoOptions, VideoRun, plan_parts, run_videos

from .conftest import STYLE, pan_frames

SAME = {"size": 64, "precision": "fp32", "convolution": "direct", "threads": 1, "seed": 0}
FIRST, LATER, FRAMES = 4, 3, 6
CHUNKED = VideoOptions(frame_iterations=LATER, checkpoint_every=0, chunks=2, overlap=2)


@pytest.fixture(scope="module")
def pan_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pan")
    for k, frame in enumerate(pan_frames(FRAMES)):
        save_image(frame, folder / f"f{k + 1}.png")
    return folder


def _video(
    folder: Path, out: Path, options: VideoOptions = CHUNKED, stop: StopRequest | None = None
) -> VideoRun:
    config = Config(iterations=FIRST, patience=None, **SAME)  # type: ignore[arg-type]
    return VideoRun(config, folder, [STYLE], out, options, stop)


def _frames(folder: Path) -> list[torch.Tensor]:
    return [load_image(folder / f"frame_{k:05d}.png") for k in range(1, FRAMES + 1)]


@pytest.fixture(scope="module")
def serial(pan_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> VideoRun:
    """The pan in two chunks (overlap 2), one after another in this process, as a video file."""
    video = _video(pan_folder, tmp_path_factory.mktemp("serial") / "pan.mp4")
    results = list(run_videos([video]))
    assert [(r.state, r.frames, r.painted) for r in results] == [("done", FRAMES, FRAMES)]
    return video


def test_chunks_are_even_runs_of_frames_with_warm_up_before_each_but_the_first() -> None:
    assert plan_parts(6, 2, 2) == [Part(1, 1, 3, 0), Part(2, 4, 6, 2)]
    assert plan_parts(5, 3, 4) == [Part(1, 1, 2, 0), Part(2, 3, 3, 2), Part(3, 4, 5, 3)]
    assert [p.begin for p in plan_parts(7, 3, 1)] == [1, 2, 5]
    with pytest.raises(JobError, match="more chunks than the 2 frames"):
        plan_parts(2, 3, 0)
    with pytest.raises(JobError, match="give --max-frames"):
        plan_parts(0, 2, 0)
    with pytest.raises(JobError, match="--overlap must be 0 or a positive integer, got -1"):
        VideoOptions(chunks=2, overlap=-1).check()


def test_the_boundary_frame_is_painted_once_in_order_after_a_warm_up(serial: VideoRun) -> None:
    names = sorted(p.name for p in serial.frames_dir.glob("*.png"))
    assert names == [f"frame_{k:05d}.png" for k in range(1, FRAMES + 1)]
    chunk = serial.work / "chunk_002"
    assert sorted(p.name for p in chunk.glob("warmup_*.png")) == [
        "warmup_00002.png",
        "warmup_00003.png",
    ]
    first_warmup = read_recipe(chunk / "warmup_00002.png")
    assert first_warmup["run"]["steps"] == FIRST and first_warmup["config"]["init"] != str(
        chunk / "warped_00002.png"
    )  # the warm-up's first frame starts on its own
    boundary = read_recipe(serial.frame_path(4))
    warped = chunk / "warped_00004.png"
    assert boundary["config"]["init"] == str(warped) and boundary["run"]["steps"] == LATER
    assert boundary["config"]["temporal_target"] == str(warped)
    clip = open_clip(serial.output)  # encoded once, from all the chunks' frames
    assert clip.frames == FRAMES


def test_two_local_workers_paint_the_frames_of_the_serial_chunked_run(
    serial: VideoRun, pan_folder: Path, tmp_path: Path
) -> None:
    """Two chunks side by side in two spawned workers, and a second video (unchunked) in the
    same pool, give exactly the serial run's frames, and ``painterly video``'s for the other."""
    other = pan_folder.parent / "reversed"
    other.mkdir(exist_ok=True)
    for k, frame in enumerate(reversed(pan_frames(2))):
        save_image(frame, other / f"f{k + 1}.png")
    whole = VideoOptions(frame_iterations=LATER, checkpoint_every=0)
    alone = _video(other, tmp_path / "alone", whole)
    alone.run(StyleTransfer(alone.config))  # as `painterly video` paints it
    chunked, second = _video(pan_folder, tmp_path / "pan"), _video(other, tmp_path / "rev", whole)
    results = list(run_videos([chunked, second], workers=2))
    assert sorted((r.video.output.name, r.state) for r in results) == [
        ("pan", "done"),
        ("rev", "done"),
    ]
    for k, (mine, ref) in enumerate(
        zip(_frames(tmp_path / "pan"), _frames(serial.frames_dir), strict=True), start=1
    ):
        assert torch.equal(mine, ref), f"frame {k}"
    for k in range(1, 3):
        assert torch.equal(load_image(second.frame_path(k)), load_image(alone.frame_path(k)))


def test_a_stopped_chunk_resumes_at_its_next_unfinished_frame(
    serial: VideoRun, pan_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pan"
    stop = StopRequest()

    def progress(name: str, done: int, total: int) -> None:
        if name.endswith("chunk 2/2") and done == 1:  # frame 4 written: stop inside frame 5
            stop.request("test")

    first = list(run_videos([_video(pan_folder, out, stop=stop)], stop=stop, progress=progress))
    assert [r.state for r in first] == ["stopped"]
    assert (out / "frame_00004.png").is_file() and not (out / "frame_00006.png").exists()
    assert checkpoint_path(out / "frame_00005.png").is_file()
    again = _video(pan_folder, out)
    [result] = run_videos([again])
    assert (result.state, result.painted) == ("done", 2)  # frames 5 and 6 only
    pairs = zip(_frames(out), _frames(serial.frames_dir), strict=True)
    for k, (mine, ref) in enumerate(pairs, start=1):
        assert torch.equal(mine, ref), f"frame {k}"


def test_the_command_takes_several_inputs_into_a_folder(
    pan_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = tmp_path / "short"
    shutil.copytree(pan_folder, short)
    for extra in ("f4.png", "f5.png", "f6.png"):
        (short / extra).unlink()
    out = tmp_path / "out"
    args = ["video", str(pan_folder), str(short), str(STYLE), "-o", str(out), "--size", "64",
            "--iterations", "2", "--frame-iterations", "1", "--chunks", "2", "--overlap", "1",
            "--threads", "1", "-q"]  # fmt: skip
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert f"wrote {out / pan_folder.name}: 6 frames (6 painted)" in err
    assert f"wrote {out / 'short'}: 3 frames (3 painted)" in err
    assert len(list((out / "short").glob("frame_*.png"))) == 3
    assert cli.main(["resume", str(out / "short"), "-q"]) == 0
    assert "3 frames (0 painted)" in capsys.readouterr().err
    assert cli.main(["video", str(pan_folder), str(STYLE), "-o", str(out / "x.mp4"), "--size",
                     "64", "--chunks", "7", "-q"]) == 2  # fmt: skip
    assert "--chunks 7: more chunks than the 6 frames to paint" in capsys.readouterr().err


def test_ray_tasks_paint_the_chunks_at_the_drivers_paths(
    local_ray: object, serial: VideoRun, pan_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pan"
    [result] = run_videos([_video(pan_folder, out)], ray=True)
    assert (result.state, result.frames, result.painted) == ("done", FRAMES, FRAMES)
    pairs = zip(_frames(out), _frames(serial.frames_dir), strict=True)
    for k, (mine, ref) in enumerate(pairs, start=1):
        assert torch.equal(mine, ref), f"frame {k}"
