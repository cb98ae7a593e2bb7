"""Videos in and out: decoding a clip (a video file or a folder of frames) and encoding frames.

Decoding and encoding go through PyAV (``av``, FFmpeg's libraries in a wheel: no system
``ffmpeg`` needed), an optional extra (``pip install 'painterly[video]'``) imported only here,
only when a video file is read or written. A folder of frames is read with Pillow
(:func:`painterly.images.load_image`), in natural order of the file names (``f2`` before
``f10``).

Frames are tensors (1, 3, H, W) float32 in [0, 1] (RGB); times are in seconds. Every failure
a user can act on (a missing file, an unsupported codec, a corrupt frame, an extension no
encoder writes) is a :class:`VideoError` naming the file and, for a frame, its number.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .images import ImageError, load_image

__all__ = [
    "ENCODERS",
    "Clip",
    "VideoError",
    "check_video_output",
    "folder_frames",
    "open_clip",
    "read_frames",
    "write_video",
]

#: Output extension → (video encoder, pixel format, encoder options). H.264 and VP9 want
#: even sides: odd ones are cropped by one pixel.
ENCODERS: dict[str, tuple[str, str, dict[str, str]]] = {
    ".mp4": ("libx264", "yuv420p", {"crf": "18", "preset": "medium"}),
    ".mov": ("libx264", "yuv420p", {"crf": "18", "preset": "medium"}),
    ".mkv": ("libx264", "yuv420p", {"crf": "18", "preset": "medium"}),
    ".webm": ("libvpx-vp9", "yuv420p", {"crf": "30", "b": "0"}),
    ".avi": ("mpeg4", "yuv420p", {"qscale": "2"}),
}

#: The frame rate given to a folder of frames, which has none of its own.
FOLDER_FPS = Fraction(24)

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


class VideoError(ValueError):
    """A clip that cannot be read or written as asked, said in words (names the file)."""


def _av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise VideoError(
            "reading and writing video files needs PyAV: pip install 'painterly[video]'"
        ) from exc
    return av


@dataclass(frozen=True)
class Clip:
    """What a clip is, from its header.

    Attributes:
        path: the file or folder. fps: frames per second (a folder: :data:`FOLDER_FPS`, or
            what the caller gives). frames: the number of frames, when known (0: unknown).
        width, height: px. audio: whether a video file has an audio stream.
        files: a folder's frame files in order (empty for a video file).
    """

    path: Path
    fps: Fraction
    frames: int
    width: int
    height: int
    audio: bool = False
    files: tuple[Path, ...] = ()

    @property
    def is_folder(self) -> bool:
        """True for a folder of frames."""
        return bool(self.files)

    def describe(self) -> str:
        """``clip.mp4: 640x360, 25 fps, 75 frames, with audio``."""
        count = f"{self.frames} frames" if self.frames else "frame count unknown"
        sound = ", with audio" if self.audio else ""
        return f"{self.path}: {self.width}x{self.height}, {float(self.fps):g} fps, {count}{sound}"


def _natural(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def folder_frames(folder: Path) -> list[Path]:
    """The image files of a folder of frames, in natural order of their names.

    Raises:
        VideoError: no image files in it.
    """
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()),
        key=_natural,
    )
    if not files:
        raise VideoError(f"{folder}: no frames in this folder (.png, .jpg, .webp, .tiff …)")
    return files


def open_clip(path: Path, fps: float | None = None) -> Clip:
    """The clip at ``path``: a video file (its first video stream) or a folder of frames.

    Args:
        fps: the frame rate of a folder of frames (default :data:`FOLDER_FPS`); ignored for
            a video file, whose own rate is used.

    Raises:
        VideoError: missing, no video stream, a codec this FFmpeg cannot decode, not a
            video, or a folder without frames or with a first frame that does not decode.
    """
    if not path.exists():
        raise VideoError(f"{path}: no such file or folder")
    if path.is_dir():
        files = folder_frames(path)
        try:
            first = load_image(files[0])
        except ImageError as exc:
            raise VideoError(f"frame 1 of {path}: {exc}") from None
        rate = Fraction(fps).limit_denominator(1001) if fps else FOLDER_FPS
        h, w = first.shape[-2:]
        return Clip(path, rate, len(files), w, h, False, tuple(files))
    return _open_file(path)


def _open_file(path: Path) -> Clip:
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream in this file")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if ctx is None or ctx.codec is None:
                raise VideoError(f"{path}: its video codec cannot be decoded here")
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            return Clip(
                path,
                Fraction(rate),
                int(stream.frames or 0),
                int(ctx.width),
                int(ctx.height),
                bool(container.streams.audio),
            )
    except av.error.DecoderNotFoundError:
        raise VideoError(f"{path}: unsupported codec (this FFmpeg has no decoder for it)") from None
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: not a readable video ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip() or type(exc).__name__


def read_frames(
    clip: Clip, start: float = 0.0, end: float | None = None, limit: int | None = None
) -> Iterator[torch.Tensor]:
    """The clip's frames from ``start`` (s, inclusive) to ``end`` (s, exclusive), at most
    ``limit`` of them, each (1, 3, H, W) float32 in [0, 1].

    Raises:
        VideoError: a frame that does not decode (its number is named; the frames before it
            were yielded).
    """
    if clip.is_folder:
        yield from _folder_frames(clip, start, end, limit)
        return
    av = _av()
    count = 0
    try:
        with av.open(str(clip.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else index / float(clip.fps)
                if t < start - 1e-6:
                    continue
                if (end is not None and t >= end - 1e-6) or (limit is not None and count >= limit):
                    return
                count += 1
                yield _tensor(frame.to_ndarray(format="rgb24"))
    except av.FFmpegError as exc:
        raise VideoError(
            f"{clip.path}: frame {count + 1} is corrupt or cannot be decoded ({_reason(exc)})"
        ) from None


def _folder_frames(
    clip: Clip, start: float, end: float | None, limit: int | None
) -> Iterator[torch.Tensor]:
    first = round(start * float(clip.fps))
    last = len(clip.files) if end is None else min(len(clip.files), round(end * float(clip.fps)))
    if limit is not None:
        last = min(last, first + limit)
    for index in range(first, last):
        try:
            yield load_image(clip.files[index])
        except ImageError as exc:
            raise VideoError(f"frame {index + 1} of {clip.path}: {exc}") from None


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 → (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0


def check_video_output(path: Path) -> None:
    """An output file extension an encoder here writes.

    Raises:
        VideoError: another extension, or PyAV is missing.
    """
    if path.suffix.lower() not in ENCODERS:
        raise VideoError(
            f"{path}: write the video as {', '.join(ENCODERS)}, or give a folder for PNG frames"
        )
    av = _av()
    codec = ENCODERS[path.suffix.lower()][0]
    try:
        av.codec.Codec(codec, "w")
    except (av.FFmpegError, ValueError):
        raise VideoError(f"{path}: this FFmpeg has no {codec} encoder") from None


def write_video(
    frames: Sequence[Path],
    path: Path,
    fps: Fraction,
    audio_from: Clip | None = None,
    start: float = 0.0,
    end: float | None = None,
) -> bool:
    """Encode image files as a video at ``fps``, atomically (a temporary file, then a rename),
    with the audio of ``audio_from`` between ``start`` and ``end`` (s) copied (not re-encoded)
    when it has any and the container takes its codec.

    Returns:
        Whether audio was copied.

    Raises:
        VideoError: no frames, an unknown extension, or the encoder fails.
    """
    if not frames:
        raise VideoError(f"{path}: no frames to write")
    check_video_output(path)
    av = _av()
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.part{path.suffix}")
    try:
        with av.open(str(tmp), "w") as out:
            video = _video_stream(out, path, frames[0], fps)
            audio = _audio_stream(out, audio_from)
            for file in frames:
                with Image.open(file) as im:
                    rgb = np.asarray(im.convert("RGB"))[: video.height, : video.width]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                for packet in video.encode(frame):
                    out.mux(packet)
            for packet in video.encode():
                out.mux(packet)
            copied = audio is not None and _copy_audio(out, audio, audio_from, start, end)
        os.replace(tmp, path)
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: cannot encode ({_reason(exc)})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return copied


def _video_stream(out: Any, path: Path, first: Path, fps: Fraction) -> Any:
    codec, pix_fmt, options = ENCODERS[path.suffix.lower()]
    with Image.open(first) as im:
        width, height = im.size
    stream = out.add_stream(codec, rate=fps, options=dict(options))
    stream.width, stream.height = width - width % 2, height - height % 2
    stream.pix_fmt = pix_fmt
    return stream


def _audio_stream(out: Any, clip: Clip | None) -> Any:
    """The output's copy of the clip's first audio stream, or None (no audio, or a codec this
    container cannot hold)."""
    if clip is None or not clip.audio or clip.is_folder:
        return None
    av = _av()
    try:
        with av.open(str(clip.path)) as source:
            return out.add_stream_from_template(source.streams.audio[0])
    except (av.FFmpegError, ValueError):
        return None


def _copy_audio(out: Any, stream: Any, clip: Clip | None, start: float, end: float | None) -> bool:
    """Mux the clip's audio packets in [start, end) s into ``stream``, shifted to start at 0."""
    assert clip is not None
    av = _av()
    copied = False
    with av.open(str(clip.path)) as source:
        audio = source.streams.audio[0]
        base = audio.time_base
        offset = round(start / base) if base else 0
        for packet in source.demux(audio):
            if packet.pts is None or packet.dts is None:
                continue
            t = float(packet.pts * base)
            if t < start - 1e-6 or (end is not None and t >= end):
                continue
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = stream
            out.mux(packet)
            copied = True
    return copied
