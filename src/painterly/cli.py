"""The ``painterly`` command: ``stylize``, ``resume``, ``reproduce``, ``animate``, ``sweep``,
``layers``, ``serve``.

Exit codes: 0 success; 1 unexpected internal error; 2 bad input, option or output path
(reported before any compute); 3 the run would not fit in memory (said before any compute, with
a size that fits); 4 the loss became non-finite (the best finite image is saved);
130 interrupted by Ctrl-C, 143 stopped by SIGTERM (either way the best image so far is
saved to the output path, and for ``stylize`` a checkpoint that ``painterly resume`` continues).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import io
import math
import os
import secrets
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from .checkpoint import (
    CheckpointError,
    checkpoint_path,
    file_digest,
    load_checkpoint,
    save_checkpoint,
)
from .config import INIT_KEYWORDS, PRESETS, Config, ConfigError
from .images import (
    ImageError,
    load_alpha,
    load_image,
    output_format,
    resize_longest,
    resize_to,
    save_image,
    to_pil,
)
from .plot import animate, plot_losses, step_frames
from .recipe import RecipeError, pixels_digest, read_recipe, recipe_config
from .sheet import contact_sheet
from .transfer import (
    NonFiniteLossError,
    Result,
    RunState,
    StepEvent,
    StyleTransfer,
    TransferInterrupted,
    check_sizes,
    estimate_peak_memory,
)
from .vgg import LAYER_ALIASES, LAYER_NAMES, layer_stride
from .weights import WeightsError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_MEMORY, EXIT_NONFINITE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM


class UsageError(Exception):
    """A problem with the command line, reported with exit code 2."""


class NotEnoughMemoryError(Exception):
    """The run would not fit in the memory available, reported with exit code 3."""


def _available_memory(device: torch.device) -> int | None:
    """Bytes free for a run: CUDA's free memory, or Linux's MemAvailable; None if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _check_memory(runner: StyleTransfer, content: Path, downscale: bool = False) -> int:
    """Refuse, before compute, a run whose estimated peak exceeds the memory available.

    Returns the size to run at: the config's, or with ``downscale`` the largest (a multiple
    of 16 px) that fits.
    """
    config = runner.config
    # The size from the header alone: resizing first could itself exhaust memory.
    with Image.open(content) as probe:
        w, h = probe.size
        if probe.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF: turned a quarter
            w, h = h, w
    scale = config.size / max(w, h)
    width, height = max(1, round(w * scale)), max(1, round(h * scale))
    need = estimate_peak_memory(config, height, width, runner.precision)
    have = _available_memory(runner.device)
    if have is None or need <= have:
        return config.size
    fixed = estimate_peak_memory(config, 0, 0, runner.precision)
    fits = int(config.size * math.sqrt(max(have - fixed, 0) / max(need - fixed, 1))) // 16 * 16
    gib = 2**30
    message = (
        f"a {width}x{height} px run needs about {need / gib:.1f} GiB, but {have / gib:.1f} GiB "
        f"is available on {runner.device}"
    )
    if downscale and fits >= config.min_side * 2 ** (len(config.ladder) - 1):
        print(f"painterly: warning: {message}; painting at --size {fits} instead", file=sys.stderr)
        return fits
    raise NotEnoughMemoryError(f"{message}; --size {fits} should fit (or add --downscale-to-fit)")


def _csv(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        try:
            return tuple(kind(t) for t in items)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = f"list of {kind.__name__}"
    return parse


def _patience(text: str) -> int:
    """Steps of patience; "none", "off" or 0 switch the rule off (returned as 0, not None,
    so that the option still counts as given)."""
    return 0 if text.lower() in ("none", "off") else int(text)


def _scales(text: str) -> int:
    """A number of scales, or "auto" (returned as -1: given, and turned into None)."""
    return -1 if text.lower() == "auto" else int(text)


# (flag, Config field, argparse keyword arguments). Defaults are read from Config, so --help
# and the code cannot drift; the parser's own default is None, meaning "not given".
_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("--size", "size", {"type": int, "metavar": "PX", "help": "longest side of the output"}),
    ("--iterations", "iterations", {"type": int, "metavar": "N", "help": "optimiser steps"}),
    ("--content-weight", "content_weight", {"type": float, "metavar": "ALPHA", "help": "α"}),
    ("--style-weight", "style_weight", {"type": float, "metavar": "BETA", "help": "β"}),
    ("--tv-weight", "tv_weight", {"type": float, "metavar": "W", "help": "total variation weight"}),
    ("--content-layers", "content_layers", {"type": _csv(str), "metavar": "L1,L2"}),
    ("--style-layers", "style_layers", {"type": _csv(str), "metavar": "L1,L2"}),
    (
        "--style-layer-weights",
        "style_layer_weights",
        {"type": _csv(float), "metavar": "W1,W2", "help": "w_l per style layer (default equal)"},
    ),
    ("--normalization", "normalization", {"choices": ("paper", "blog")}),
    ("--init", "init", {"metavar": "content|noise|style|FILE"}),
    ("--optimizer", "optimizer", {"choices": ("lbfgs", "adam")}),
    ("--learning-rate", "learning_rate", {"type": float, "metavar": "LR"}),
    ("--line-search", "line_search", {"action": argparse.BooleanOptionalAction}),
    ("--pooling", "pooling", {"choices": ("max", "avg")}),
    ("--precision", "precision", {"choices": ("auto", "fp32", "bf16")}),
    (
        "--convolution",
        "convolution",
        {
            "choices": ("auto", "direct", "winograd"),
            "help": "winograd: fewer FLOPs, less precise; auto: winograd for bf16 on a CPU",
        },
    ),
    ("--device", "device", {"metavar": "auto|cpu|cuda[:N]"}),
    ("--weights", "weights", {"metavar": "embedded|torchvision|FILE"}),
    ("--seed", "seed", {"type": int, "help": "noise seed (default: random, always printed)"}),
    (
        "--scales",
        "scales",
        {
            "type": _scales,
            "metavar": "N|auto",
            "help": "coarse-to-fine scales; auto: 1 up to 1024 px, more above",
        },
    ),
    (
        "--scale-iterations",
        "scale_iterations",
        {"type": _csv(int), "metavar": "N1,N2", "help": "steps per scale, coarse to fine"},
    ),
    (
        "--patience",
        "patience",
        {"type": _patience, "metavar": "N|none", "help": "stop after N steps without progress"},
    ),
    ("--tolerance", "tolerance", {"type": float, "help": "relative improvement that counts"}),
    (
        "--preserve-colors",
        "preserve_colors",
        {"choices": ("none", "luminance", "histogram"), "help": "keep the photo's colours"},
    ),
    (
        "--style-blend-weights",
        "style_blend_weights",
        {"type": _csv(float), "metavar": "W1,W2", "help": "one weight per style (normalised)"},
    ),
    (
        "--style-scale",
        "style_scale",
        {"type": float, "metavar": "S", "help": "style's longest side / output's"},
    ),
    (
        "--style-masks",
        "style_masks",
        {"type": _csv(str), "metavar": "M1,M2", "help": "one mask image per style (white: here)"},
    ),
    ("--style-loss", "style_loss", {"choices": ("gram", "w2"), "help": "style statistic"}),
    (
        "--ema-decay",
        "ema_decay",
        {"type": float, "metavar": "D", "help": "average the iterates (0: off; e.g. 0.9)"},
    ),
]


def _add_transfer_options(parser: argparse.ArgumentParser, preset: str = "default") -> None:
    group = parser.add_argument_group(
        f"style transfer options (defaults shown: the {preset} preset)"
    )
    group.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=preset,
        help=f"set of defaults (default: {preset})",
    )
    defaults = Config.from_preset(preset)
    for flag, name, spec in _OPTIONS:
        kwargs = dict(spec)
        default = getattr(defaults, name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        shown = "auto" if name == "scales" and default is None else shown
        helptext = kwargs.pop("help", name.replace("_", " "))
        if "default" not in helptext and shown is not None:
            helptext = f"{helptext} (default: {shown})"
        group.add_argument(flag, dest=name, default=None, help=helptext, **kwargs)
    out = parser.add_argument_group("output")
    out.add_argument(
        "--save-every", type=int, metavar="N", help="also save the image every N steps"
    )
    out.add_argument(
        "--save-dir", type=Path, help="folder for those (default: OUT's name + _steps)"
    )
    out.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar; only the final line (with the seed)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``painterly`` command."""
    parser = argparse.ArgumentParser(
        prog="painterly",
        description="Repaint a photo in the style of a painting (Gatys et al. 2016).",
        epilog="Exit codes: 0 ok, 1 internal error, 2 bad input or option, 3 not enough memory, "
        "4 non-finite loss, "
        "130 interrupted (Ctrl-C), 143 terminated (SIGTERM).",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"painterly {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("stylize", help="repaint CONTENT in the style of STYLE")
    p.add_argument("content", type=Path, help="the photo")
    p.add_argument("style", type=Path, nargs="+", help="the painting, or several to blend")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output image (.png .jpg .webp .tiff)"
    )
    _add_transfer_options(p)
    long_run = p.add_argument_group("long runs")
    long_run.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="N",
        help="write OUT.ckpt every N steps, to resume from after a crash; 0: only on "
        "Ctrl-C/SIGTERM (default: 100; removed when the run ends)",
    )
    long_run.add_argument(
        "--keep-alpha",
        action="store_true",
        help="put the photo's transparency back on the output (.png .webp .tiff)",
    )
    long_run.add_argument(
        "--plot",
        nargs="?",
        const=True,
        metavar="FILE",
        help="draw the loss curves per term (default FILE: OUT's name + _losses.png)",
    )
    long_run.add_argument(
        "--downscale-to-fit",
        action="store_true",
        help="paint at the largest size that fits in memory instead of refusing (exit 3)",
    )

    an = sub.add_parser("animate", help="turn the images of --save-every into an animation")
    an.add_argument("folder", type=Path, help="the folder of step_NNNNN.png images")
    an.add_argument("-o", "--output", type=Path, required=True, help="run.gif, .webp or .png")
    an.add_argument("--fps", type=float, default=10.0, help="frames per second (default: 10)")

    rp = sub.add_parser(
        "reproduce", help="make a picture again from the recipe painterly stored in it"
    )
    rp.add_argument("image", type=Path, help="a picture painterly made (or its .json sidecar's)")
    rp.add_argument("-o", "--output", type=Path, required=True, help="where to write it")
    rp.add_argument("--content", type=Path, help="the photo, if it moved since")
    rp.add_argument(
        "--style", type=Path, nargs="+", help="the painting(s), in order, if they moved since"
    )
    rp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser(
        "resume", help="continue a stopped stylize run from its checkpoint (OUT.ckpt)"
    )
    r.add_argument("checkpoint", type=Path, help="the .ckpt file next to the output")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("sweep", help="one image per content weight α, and a labelled contact sheet")
    s.add_argument("content", type=Path)
    s.add_argument("style", type=Path)
    s.add_argument("-o", "--output", type=Path, required=True, help="the contact sheet image")
    s.add_argument(
        "--content-weights", type=_csv(float), required=True, metavar="A1,A2,…", help="values of α"
    )
    _add_transfer_options(s, preset="blog-fast")

    sub.add_parser("layers", help="list VGG19 layer names and their Keras aliases")

    w = sub.add_parser(
        "serve",
        help="a web app on this computer: paint in the browser (needs painterly[web])",
        description="Serve a web page where you drop a photo and a painting, watch the picture "
        "form and download it. Jobs run one at a time. Ctrl-C stops the server.",
    )
    w.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this computer only; 0.0.0.0 opens it "
        "to the network, with a warning)",
    )
    w.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    w.add_argument("--open", action="store_true", help="open the page in the default browser")
    return parser


def _config(args: argparse.Namespace, **fixed: Any) -> Config:
    overrides = {
        name: getattr(args, name)
        for _, name, _ in _OPTIONS
        if getattr(args, name, None) is not None
    }
    overrides.update(fixed)
    if overrides.get("patience") == 0:
        overrides["patience"] = None
    if overrides.get("scales") == -1:
        overrides["scales"] = None
    if overrides.get("seed") is None:
        overrides["seed"] = secrets.randbelow(2**31)
    config = Config.from_preset(args.preset, **overrides)
    # Options that would be silently ignored in this combination:
    if "iterations" in overrides and "scale_iterations" in overrides:
        raise UsageError("give --iterations or --scale-iterations, not both")
    if "tolerance" in overrides and config.patience is None:
        raise UsageError("--tolerance has no effect with --patience none")
    return config


def _check_paths(
    inputs: Sequence[Path],
    output: Path,
    init: str,
    save_dir: Path | None = None,
    config: Config | None = None,
    extra_outputs: Sequence[Path] = (),
) -> None:
    """Everything about the files that can fail, checked before the model loads; with
    ``config``, also the content's size at every scale (the first input is the content).
    ``extra_outputs``: other files the run writes (a plot), checked against the inputs too."""
    for path in inputs:
        image = load_image(path)
        if config is not None and path is inputs[0]:
            check_sizes(config, *image.shape[-2:])
    if output.is_dir():
        raise UsageError(f"{output}: is a folder; give the output a file name")
    for parent in output.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{output}: {parent} is a file, not a folder")
    output_format(output)
    read = list(inputs)
    if init not in INIT_KEYWORDS:
        if not Path(init).exists():
            close = difflib.get_close_matches(init, INIT_KEYWORDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"--init {init!r} is neither content, noise, style nor an existing file{hint}"
            )
        load_image(init)
        read.append(Path(init))
    # Every file the run will write (the picture, its checkpoint, its plot) against every
    # file it reads, by resolved path, so that a symlink or ./name is caught too.
    written = [output, checkpoint_path(output), *extra_outputs]
    for path in read:
        for target in written:
            if path.resolve() == target.resolve():
                raise UsageError(f"{target}: the output would overwrite an input image")
    for folder in (output.parent, save_dir):
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{folder}: cannot create this folder ({exc.strerror})") from None
        if not os.access(folder, os.W_OK):
            raise UsageError(f"{folder}: this folder is not writable")


class _Signals:
    """Ctrl-C and SIGTERM during a run: the first asks for a stop at the end of the current
    step (so that the checkpoint is whole); a second one stops at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None:
            raise _Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        self.received = signum
        print(
            "\npainterly: stopping at the end of this step (again to stop at once)",
            file=sys.stderr,
        )

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _style_role(index: int) -> str:
    """The role of the index-th style image: "style", "style2", "style3", …"""
    return "style" if index == 0 else f"style{index + 1}"


class _Job:
    """One stylize run as the command line sees it: inputs, output, checkpoints, alpha."""

    def __init__(
        self,
        config: Config,
        content: Path,
        styles: Sequence[Path],
        output: Path,
        options: dict[str, Any],
        digests: dict[str, str] | None = None,
    ) -> None:
        self.config, self.content, self.output = config, content, output
        # Roles as in recipes: "content", "style", "style2", …; "mask1", …; "init"; "weights".
        roles = {"content": content}
        roles.update({_style_role(k): path for k, path in enumerate(styles)})
        # What the run reads: the files, or (reproduce) their pixels prepared as the recipe says.
        self.sources: dict[str, Path | torch.Tensor] = dict(roles)
        self.max_side: dict[str, int] = {}
        self.options = options
        self.checkpoint = checkpoint_path(output)
        self.inputs = {role: str(path.resolve()) for role, path in roles.items()}
        for k, mask in enumerate(config.style_masks or ()):
            self.inputs[f"mask{k + 1}"] = str(Path(mask).resolve())
        for role in ("init", "weights"):
            value = getattr(config, role)
            if role == "init" and value in INIT_KEYWORDS:
                continue
            if role == "weights" and value in ("embedded", "torchvision"):
                continue
            self.inputs[role] = str(Path(value).resolve())
        self.digests = digests or {role: file_digest(p) for role, p in self.inputs.items()}
        self.alpha = load_alpha(content) if options.get("keep_alpha") else None
        self.checkpointed_at: int | None = None
        self.losses: list[dict[str, Any]] = list(options.pop("losses", None) or [])

    def finish(self, image: torch.Tensor) -> torch.Tensor:
        """The image to write: with the photo's alpha put back when asked."""
        if self.alpha is None:
            return image
        alpha = resize_to(self.alpha, *image.shape[-2:])
        return torch.cat([image, alpha], dim=1)

    @property
    def styles(self) -> list[Path | torch.Tensor]:
        """What the run reads as its style image(s), in order."""
        return [v for role, v in self.sources.items() if role.startswith("style")]

    def save_checkpoint(self, state: RunState) -> None:
        config = self.config.replace(
            **{role: self.inputs[role] for role in ("init", "weights") if role in self.inputs}
        )
        if config.style_masks:
            masks = [self.inputs[f"mask{k + 1}"] for k in range(len(config.style_masks))]
            config = config.replace(style_masks=tuple(masks))
        options = {**self.options, "losses": self.losses if self.options.get("plot") else None}
        save_checkpoint(self.checkpoint, state, config, self.inputs, self.digests, options)
        self.checkpointed_at = state.steps

    def record(self, event: StepEvent) -> None:
        """Keep the step's loss terms for the plot."""
        if self.options.get("plot"):
            self.losses.append(event.losses())

    def plot(self) -> None:
        """Draw the loss curves, if asked, and say where."""
        if self.options.get("plot") and self.losses:
            path = plot_losses(self.losses, self.options["plot"], f"{self.output.name}: losses")
            print(f"painterly: drew the losses in {path}", file=sys.stderr)


class _Progress:
    """tqdm bar, periodic saves and checkpoints, and orderly stops, fed by step events."""

    def __init__(
        self,
        config: Config,
        quiet: bool,
        save_every: int | None,
        save_dir: Path | None,
        label: str = "",
        job: _Job | None = None,
        start: int = 0,
    ) -> None:
        self.bar = tqdm(
            total=sum(steps for _, steps in config.ladder),
            initial=start,
            disable=quiet,
            unit="step",
            desc=label or "painting",
            dynamic_ncols=True,
            file=sys.stderr,
        )
        self.save_every, self.save_dir, self.job = save_every, save_dir, job
        self.signals: _Signals | None = None
        self.stop_at: int | None = None  # end the run after this step (reproduce)

    def __call__(self, event: StepEvent) -> bool:
        self.bar.update(event.step - self.bar.n)
        self.bar.set_postfix_str(
            f"loss {event.loss:.3g} = content {event.content_loss:.3g} + style "
            f"{event.style_loss:.3g}" + (f" + tv {event.tv_loss:.3g}" if event.tv_loss else ""),
            refresh=False,
        )
        if self.job:
            self.job.record(event)
        if self.save_every and self.save_dir and event.step % self.save_every == 0:
            image = event.image()
            save_image(
                self.job.finish(image) if self.job else image,
                self.save_dir / f"step_{event.step:05d}.png",
            )
        stop = self.signals is not None and self.signals.received is not None
        every = self.job.options.get("checkpoint_every") if self.job else None
        if self.job and (stop or (every and event.step % every == 0)):
            self.job.save_checkpoint(event.state(copy=False))  # written at once
        return stop or (self.stop_at is not None and event.step >= self.stop_at)

    def close(self) -> None:
        self.bar.close()


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def _run(
    runner: StyleTransfer,
    content: Path | torch.Tensor,
    style: Path | torch.Tensor | list[Path | torch.Tensor],
    progress: _Progress,
    output: Path,
    job: _Job | None = None,
    resume: RunState | None = None,
) -> Result:
    """One run; Ctrl-C/SIGTERM stop it at the end of a step (``stop_reason="interrupted"``;
    ``"stopped"`` when ``progress.stop_at`` ended it).
    Saves the best image on a hard interrupt or a non-finite loss, then re-raises."""
    with _Signals() as signals:
        progress.signals = signals
        try:
            result = runner.run(content, style, progress, resume=resume)
        except (TransferInterrupted, NonFiniteLossError) as exc:
            progress.close()
            image = job.finish(exc.result.image) if job else exc.result.image
            save_image(image, output, exc.result.recipe)
            hint = ""
            if job and job.checkpointed_at is not None and isinstance(exc, TransferInterrupted):
                hint = (
                    f"; the checkpoint of step {job.checkpointed_at} continues with: "
                    f"painterly resume {job.checkpoint}"
                )
            _say(
                False,
                f"painterly: {exc} — saved the best image so far (step {exc.result.steps}) to "
                f"{output}{hint}",
            )
            raise
        finally:
            progress.close()
    if result.stop_reason == "stopped" and signals.received is not None:
        result = dataclasses.replace(result, stop_reason="interrupted")
    return result


def _exit_code(progress: _Progress) -> int:
    """The exit code of a run stopped by a signal: 143 for SIGTERM, else 130."""
    received = progress.signals.received if progress.signals else None
    return EXIT_TERMINATED if received == signal.SIGTERM else EXIT_INTERRUPTED


def _stylize(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.save_every is not None and args.save_every < 1:
        raise UsageError("--save-every must be a positive integer")
    if args.save_dir is not None and args.save_every is None:
        raise UsageError("--save-dir needs --save-every")
    if args.checkpoint_every < 0:
        raise UsageError("--checkpoint-every must be 0 (only on Ctrl-C) or a positive integer")
    save_dir = args.save_dir or args.output.with_name(args.output.stem + "_steps")
    plot = _plot_path(args) if args.plot else None
    config.check_styles(len(args.style))
    _check_paths(
        [args.content, *args.style, *map(Path, config.style_masks or ())],
        args.output,
        config.init,
        save_dir if args.save_every else None,
        config,
        [plot] if plot else [],
    )
    if args.keep_alpha:
        if output_format(args.output) not in ("PNG", "WEBP", "TIFF"):
            raise UsageError(
                f"{args.output}: --keep-alpha needs a format with transparency: .png, .webp, .tiff"
            )
        if load_alpha(args.content) is None:
            raise UsageError(f"--keep-alpha: {args.content} has no transparency to keep")
    options = {
        "output": str(args.output.resolve()),
        "save_every": args.save_every,
        "save_dir": str(save_dir.resolve()) if args.save_every else None,
        "checkpoint_every": args.checkpoint_every,
        "keep_alpha": args.keep_alpha,
        "plot": str(plot.resolve()) if plot else None,
    }
    runner = StyleTransfer(config)
    size = _check_memory(runner, args.content, args.downscale_to_fit)
    if size != config.size:
        config = config.replace(size=size)
        runner.config = config  # the network does not depend on the size
    job = _Job(config, args.content, args.style, args.output, options)
    return _paint(runner, job, args.quiet)


def _plot_path(args: argparse.Namespace) -> Path:
    """Where --plot draws: the FILE given, or OUT's name + _losses.png; checked now."""
    path: Path = args.output.with_name(args.output.stem + "_losses.png")
    if args.plot is not True:
        path = Path(args.plot)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot {path}: write the plot as .png, .svg or .pdf")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'painterly[plot]'") from None
    return path


def _animate(args: argparse.Namespace) -> int:
    frames = step_frames(args.folder)
    try:
        animate(frames, args.output, fps=args.fps)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"painterly: wrote {args.output} from {len(frames)} images", file=sys.stderr)
    return EXIT_OK


def _resume(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    ckpt.verify_inputs()
    opts = ckpt.options
    output = Path(opts["output"])
    save_dir = Path(opts["save_dir"]) if opts.get("save_dir") else None
    content = Path(ckpt.inputs["content"])
    styles = [Path(p) for role, p in ckpt.inputs.items() if role.startswith("style")]
    masks = [Path(m) for m in ckpt.config.style_masks or ()]
    _check_paths([content, *styles, *masks], output, ckpt.config.init, save_dir, ckpt.config)
    runner = StyleTransfer(ckpt.config)
    _check_memory(runner, content)
    job = _Job(ckpt.config, content, styles, output, opts, ckpt.digests)
    _say(args.quiet, f"painterly: resuming {output} at step {ckpt.state.steps}")
    return _paint(runner, job, args.quiet, ckpt.state)


def _reproduce(args: argparse.Namespace) -> int:
    recipe = read_recipe(args.image)
    config = recipe_config(recipe)
    device = str(recipe.get("device", "auto"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"painterly: warning: the picture was made on {device}; painting on the CPU here, "
            "so it will differ slightly",
            file=sys.stderr,
        )
        device = "cpu"
    config = config.replace(device=device)
    paths: dict[str, Path] = {}
    prepared: dict[str, tuple[torch.Tensor, int]] = {}
    style_roles = [r for r in recipe["inputs"] if r.startswith("style")]
    if args.style and len(args.style) != len(style_roles):
        raise UsageError(f"this picture was made from {len(style_roles)} style image(s)")
    given_paths = {
        "content": args.content,
        **dict(zip(style_roles, args.style or [], strict=False)),
    }
    for role in ["content", *style_roles]:
        given = given_paths.get(role)
        flag = "--content" if role == "content" else "--style"
        record = recipe["inputs"].get(role, {})
        if given is None and not record.get("path"):
            raise UsageError(
                f"the recipe does not say where the {role} image is ({record.get('name')}, "
                f"{record.get('width')}x{record.get('height')} px); give {flag} FILE"
            )
        path = given if given is not None else Path(record["path"])
        if given is None and not path.is_file():
            raise UsageError(f"the {role} image {path} is gone; give {flag} FILE")
        pixels = load_image(path)
        if record.get("max_side"):  # the web app shrinks what it is given
            if max(pixels.shape[-2:]) > record["max_side"]:
                pixels = resize_longest(pixels, record["max_side"])
            prepared[role] = (pixels, int(record["max_side"]))
        if pixels_digest(pixels) != record.get("pixels_sha256"):
            raise UsageError(
                f"{path} is not the {role} image of this picture (its pixels differ from "
                f"{record.get('name')}'s)"
            )
        paths[role] = path
    run = recipe.get("run", {})
    stop_at = None
    if not run.get("complete", True) and run.get("stop_reason") in ("stopped", "interrupted"):
        stop_at = int(run.get("steps", 0)) or None
        _say(args.quiet, f"painterly: the original run was stopped at step {stop_at}; so is this")
    if "init" in recipe["inputs"] and not Path(config.init).is_file():
        raise UsageError(f"the init image {config.init} of this recipe is gone")
    for mask in config.style_masks or ():
        if not Path(mask).is_file():
            raise UsageError(f"the style mask {mask} of this recipe is gone")
    styles = [paths[r] for r in style_roles]
    masks = [Path(m) for m in config.style_masks or ()]
    _check_paths([paths["content"], *styles, *masks], args.output, config.init, None, config)
    runner = StyleTransfer(config)
    _check_memory(runner, paths["content"])
    options = {"output": str(args.output.resolve()), "checkpoint_every": 0}
    job = _Job(config, paths["content"], styles, args.output, options)
    for role, (pixels, side) in prepared.items():
        job.sources[role], job.max_side[role] = pixels, side
    code = _paint(runner, job, args.quiet, stop_at=stop_at)
    if code == EXIT_OK:
        _compare(args.image, args.output)
    return code


def _compare(original: Path, remade: Path) -> None:
    """Say how far the re-made picture is from the original, pixel by pixel; when the original
    is in another format (a lossy JPEG, say), the re-made one encoded the same way."""
    try:
        a, b = load_image(original), load_image(remade)
        with Image.open(original) as im:
            fmt = im.format
        if fmt and fmt != output_format(remade):  # like for like: the same compression
            buffer = io.BytesIO()
            options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
            to_pil(b).save(buffer, format=fmt, **options)
            b = load_image(Image.open(buffer))
    except (ImageError, OSError, ValueError):
        return
    if a.shape != b.shape:
        print(
            f"painterly: the original is {tuple(a.shape[-2:])} px: not comparable", file=sys.stderr
        )
        return
    worst = round(float((a - b).abs().max()) * 255)
    like = f" (both as {fmt})" if fmt and fmt != output_format(remade) else ""
    print(f"painterly: largest difference from {original}{like}: {worst}/255", file=sys.stderr)


def _paint(
    runner: StyleTransfer,
    job: _Job,
    quiet: bool,
    resume: RunState | None = None,
    stop_at: int | None = None,
) -> int:
    """Run a job to its end (or to an orderly stop, or to step ``stop_at``) and write its
    output."""
    config, output = job.config, job.output
    _say(
        quiet,
        f"painterly: preset {config.preset}, seed {config.seed}, device "
        f"{runner.device}, precision {runner.precision}, size {config.size} px",
    )
    save_dir = Path(job.options["save_dir"]) if job.options.get("save_dir") else None
    start = resume.steps if resume else 0
    progress = _Progress(config, quiet, job.options.get("save_every"), save_dir, "", job, start)
    progress.stop_at = stop_at
    styles = job.styles
    style = styles[0] if len(styles) == 1 else styles
    result = _run(runner, job.sources["content"], style, progress, output, job, resume)
    for role, side in job.max_side.items():  # inputs given as pixels: name their files
        path = Path(job.inputs[role])
        record = result.recipe["inputs"][role]
        record.update(name=path.name, path=str(path), sha256=file_digest(path), max_side=side)
    job.plot()
    if result.stop_reason == "interrupted":
        save_image(job.finish(result.image), output, result.recipe)
        _say(
            False,
            f"painterly: stopped at step {result.steps} — saved the best image so far to "
            f"{output} and a checkpoint; continue with: painterly resume {job.checkpoint}",
        )
        return _exit_code(progress)
    save_image(job.finish(result.image), output, result.recipe)
    job.checkpoint.unlink(missing_ok=True)  # the run is complete: nothing left to resume
    _warn_if_flat(result)
    _warn_if_no_progress(result, config)
    h, w = result.image.shape[-2:]
    _say(
        False,  # the one line --quiet keeps: it holds the seed
        f"painterly: wrote {output} ({w}x{h}) in {result.elapsed:.1f} s — "
        f"{result.steps} steps, {result.function_evals} evaluations, loss "
        f"{result.loss:.4g}, stopped by {result.stop_reason}; seed {result.seed}",
    )
    return EXIT_OK


def _warn_if_flat(result: Result) -> None:
    """A near-constant output is a broken run, not a picture: say so loudly (B16)."""
    spread = float(result.image.std()) * 255
    if spread < 2:
        print(
            f"painterly: warning: the output is nearly uniform (std {spread:.2f}/255). Check the "
            "weights: content and style weight 0, or a --tv-weight far above the others, "
            "flatten the picture.",
            file=sys.stderr,
        )


def _warn_if_no_progress(result: Result, config: Config) -> None:
    """A run whose loss never fell below its start diverged or stalled (B21): say so."""
    # The loss is evaluated at the start of each step: one step alone cannot show progress.
    if result.steps > 1 and result.history and 0 < result.history[0] <= result.loss:
        hint = (
            "the --learning-rate is probably too high (pixels are in [0, 1]: try 0.02)"
            if config.optimizer == "adam"
            else "the start may already be as close as it gets (same photo and painting?)"
        )
        print(
            f"painterly: warning: the loss never fell below its starting value "
            f"({result.history[0]:.4g}); the output is the starting image: {hint}.",
            file=sys.stderr,
        )


def _format_weight(value: float) -> str:
    """Short and exact: powers of ten as 1e1, 1e-2; anything else as %g (150, 0.025)."""
    mantissa, exponent = f"{value:e}".split("e")
    if float(mantissa) == 1.0 and int(exponent) != 0:
        return f"1e{int(exponent)}"
    return f"{value:g}"


def _sweep(args: argparse.Namespace) -> int:
    for flag, given in (
        ("--content-weight", args.content_weight),
        ("--save-every", args.save_every),
        ("--save-dir", args.save_dir),
    ):
        if given is not None:
            raise UsageError(f"sweep does not take {flag} (α comes from --content-weights)")
    base = _config(args)
    configs = [base.replace(content_weight=a) for a in args.content_weights]
    tiles_dir = args.output.with_name(args.output.stem + "_tiles")
    base.check_styles(1)
    _check_paths(
        [args.content, args.style, *map(Path, base.style_masks or ())],
        args.output,
        base.init,
        tiles_dir,
        base,
    )
    runner = StyleTransfer(base)
    _check_memory(runner, args.content)
    _say(
        args.quiet,
        f"painterly: sweep of {len(configs)} runs, preset {base.preset}, seed "
        f"{base.seed}, device {runner.device}, precision {runner.precision}",
    )
    started = time.perf_counter()
    images, labels = [], []
    for index, cfg in enumerate(configs, start=1):
        runner.config = cfg  # only α differs, which the network does not depend on
        a, b = cfg.content_weight, cfg.style_weight
        label = f"α={_format_weight(a)} β={_format_weight(b)}"
        progress = _Progress(cfg, args.quiet, None, None, label=label)
        out = tiles_dir / f"{index:02d}_alpha_{_format_weight(a)}.png"
        result = _run(runner, args.content, args.style, progress, out)
        save_image(result.image, out, result.recipe)
        if result.stop_reason == "interrupted":
            _say(
                False,
                f"painterly: stopped at step {result.steps} of tile {index} — saved the best "
                f"image so far to {out}; a sweep is not resumable, run it again",
            )
            return _exit_code(progress)
        images.append(to_pil(result.image))
        ratio = a / b if b else math.inf
        labels.append(f"{label}\nα/β={_format_weight(ratio)}")
    height = images[0].height
    content_im = to_pil(load_image(args.content))
    style_im = to_pil(load_image(args.style))
    sheet = contact_sheet(
        [content_im, style_im, *images], ["content", "style", *labels], height=height
    )
    save_image(sheet, args.output)
    _say(
        False,  # the one line --quiet keeps: it holds the seed
        f"painterly: wrote {args.output} and {len(images)} tiles in {tiles_dir} "
        f"in {time.perf_counter() - started:.1f} s; seed {base.seed}",
    )
    return EXIT_OK


def _layers() -> int:
    aliases: dict[str, list[str]] = {}
    for alias, name in LAYER_ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    print(f"{'layer':10} {'stride':>6}  alias (Keras)")
    for name in LAYER_NAMES:
        print(f"{name:10} {layer_stride(name):>6}  {', '.join(aliases.get(name, []))}")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    try:
        import uvicorn  # noqa: F401 - checked here so that a missing extra is said in words

        from . import web
    except ImportError as exc:
        raise UsageError(
            f"painterly serve needs the web extra ({exc.name} is missing): "
            "pip install 'painterly[web]'"
        ) from None
    if not web.is_loopback(args.host):
        print(
            f"painterly: warning: listening on {args.host}, beyond this computer: anyone who can "
            "reach this address can use the app (there is no login) and this computer's CPU",
            file=sys.stderr,
        )

    def announce(url: str) -> None:
        print(f"painterly: serving on {url} — open it in a browser; Ctrl-C stops", file=sys.stderr)
        if args.open:
            import webbrowser

            webbrowser.open(url)

    try:
        web.serve(args.host, args.port, announce)
    except OSError as exc:
        where = f"{args.host}:{args.port}" if args.port else args.host
        raise UsageError(
            f"cannot listen on {where} ({exc.strerror or exc}); choose another --host or --port"
        ) from None
    return EXIT_OK


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Warnings (an animated input, an upscaled painting) as one line, like every message,
    each once however many times the inputs are read."""
    text = str(message)
    if text not in _WARNED:
        _WARNED.add(text)
        print(f"painterly: warning: {text}", file=sys.stderr)


_WARNED: set[str] = set()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    _WARNED.clear()
    try:
        if args.command == "layers":
            return _layers()
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "resume":
            return _resume(args)
        if args.command == "reproduce":
            return _reproduce(args)
        if args.command == "animate":
            return _animate(args)
        if args.command == "serve":
            return _serve(args)
        return _stylize(args)
    except (
        UsageError,
        ConfigError,
        ImageError,
        WeightsError,
        CheckpointError,
        RecipeError,
    ) as exc:
        print(f"painterly: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NotEnoughMemoryError as exc:
        print(f"painterly: error: {exc}", file=sys.stderr)
        return EXIT_MEMORY
    except TransferInterrupted as exc:
        by_sigterm = isinstance(exc.__context__, _Terminated)
        return EXIT_TERMINATED if by_sigterm else EXIT_INTERRUPTED
    except KeyboardInterrupt as exc:
        print("painterly: interrupted", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, _Terminated) else EXIT_INTERRUPTED
    except NonFiniteLossError:
        return EXIT_NONFINITE
    except BrokenPipeError:  # `painterly layers | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
        warnings.showwarning = shown
