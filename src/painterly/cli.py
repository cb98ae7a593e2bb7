"""The ``painterly`` command: ``stylize``, ``sweep`` and ``layers``.

Exit codes: 0 success; 1 unexpected internal error; 2 bad input, option or output path
(reported before any compute); 3 the run would not fit in memory (said before any compute, with
a size that fits); 4 the loss became non-finite (the best finite image is saved);
130 interrupted by Ctrl-C, 143 stopped by SIGTERM (either way the best image so far is
saved to the output path).
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .config import INIT_KEYWORDS, PRESETS, Config, ConfigError
from .images import ImageError, load_image, output_format, resize_longest, save_image, to_pil
from .sheet import contact_sheet
from .transfer import (
    NonFiniteLossError,
    Result,
    StepEvent,
    StyleTransfer,
    TransferInterrupted,
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


def _check_memory(runner: StyleTransfer, content: Path) -> None:
    """Refuse, before compute, a run whose estimated peak exceeds the memory available."""
    config = runner.config
    height, width = resize_longest(load_image(content), config.size).shape[-2:]
    need = estimate_peak_memory(config, height, width, runner.precision)
    have = _available_memory(runner.device)
    if have is None or need <= have:
        return
    fixed = estimate_peak_memory(config, 0, 0, runner.precision)
    fits = config.size * math.sqrt(max(have - fixed, 0) / max(need - fixed, 1))
    gib = 2**30
    raise NotEnoughMemoryError(
        f"a {width}x{height} px run needs about {need / gib:.1f} GiB, but {have / gib:.1f} GiB "
        f"is available on {runner.device}; --size {int(fits) // 16 * 16} should fit"
    )


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
        group.add_argument(
            flag, dest=name, default=None, help=f"{helptext} (default: {shown})", **kwargs
        )
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

    s = sub.add_parser("sweep", help="one image per content weight α, and a labelled contact sheet")
    s.add_argument("content", type=Path)
    s.add_argument("style", type=Path)
    s.add_argument("-o", "--output", type=Path, required=True, help="the contact sheet image")
    s.add_argument(
        "--content-weights", type=_csv(float), required=True, metavar="A1,A2,…", help="values of α"
    )
    _add_transfer_options(s, preset="blog-fast")

    sub.add_parser("layers", help="list VGG19 layer names and their Keras aliases")
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
    inputs: Sequence[Path], output: Path, init: str, save_dir: Path | None = None
) -> None:
    """Everything about the files that can fail, checked before the model loads."""
    for path in inputs:
        load_image(path)
    output_format(output)
    if output.is_dir():
        raise UsageError(f"{output}: is a folder; give the output a file name")
    resolved = output.resolve()
    for path in inputs:
        if path.resolve() == resolved:
            raise UsageError(f"{output}: the output would overwrite an input image")
    if init not in INIT_KEYWORDS:
        if not Path(init).exists():
            close = difflib.get_close_matches(init, INIT_KEYWORDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"--init {init!r} is neither content, noise, style nor an existing file{hint}"
            )
        load_image(init)
    for folder in (output.parent, save_dir):
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{folder}: cannot create this folder ({exc.strerror})") from None
        if not os.access(folder, os.W_OK):
            raise UsageError(f"{folder}: this folder is not writable")


class _Progress:
    """tqdm bar + periodic saves, fed by step events."""

    def __init__(
        self,
        config: Config,
        quiet: bool,
        save_every: int | None,
        save_dir: Path | None,
        label: str = "",
    ) -> None:
        self.bar = tqdm(
            total=sum(steps for _, steps in config.ladder),
            disable=quiet,
            unit="step",
            desc=label or "painting",
            dynamic_ncols=True,
            file=sys.stderr,
        )
        self.save_every, self.save_dir = save_every, save_dir

    def __call__(self, event: StepEvent) -> None:
        self.bar.update(event.step - self.bar.n)
        self.bar.set_postfix_str(
            f"loss {event.loss:.3g} = content {event.content_loss:.3g} + style "
            f"{event.style_loss:.3g}" + (f" + tv {event.tv_loss:.3g}" if event.tv_loss else ""),
            refresh=False,
        )
        if self.save_every and self.save_dir and event.step % self.save_every == 0:
            save_image(event.image(), self.save_dir / f"step_{event.step:05d}.png")

    def close(self) -> None:
        self.bar.close()


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def _run(
    runner: StyleTransfer,
    content: Path,
    style: Path | list[Path],
    progress: _Progress,
    output: Path,
) -> Result:
    """One run; saves the best image on interrupt or non-finite loss, then re-raises."""
    try:
        return runner.run(content, style, progress)
    except (TransferInterrupted, NonFiniteLossError) as exc:
        progress.close()
        save_image(exc.result.image, output)
        _say(
            False,
            f"painterly: {exc} — saved the best image so far (step {exc.result.steps}) to {output}",
        )
        raise
    finally:
        progress.close()


def _stylize(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.save_every is not None and args.save_every < 1:
        raise UsageError("--save-every must be a positive integer")
    if args.save_dir is not None and args.save_every is None:
        raise UsageError("--save-dir needs --save-every")
    save_dir = args.save_dir or args.output.with_name(args.output.stem + "_steps")
    config.check_styles(len(args.style))
    _check_paths(
        [args.content, *args.style, *map(Path, config.style_masks or ())],
        args.output,
        config.init,
        save_dir if args.save_every else None,
    )
    runner = StyleTransfer(config)
    _check_memory(runner, args.content)
    _say(
        args.quiet,
        f"painterly: preset {config.preset}, seed {config.seed}, device "
        f"{runner.device}, precision {runner.precision}, size {config.size} px",
    )
    progress = _Progress(config, args.quiet, args.save_every, save_dir)
    result = _run(runner, args.content, args.style, progress, args.output)
    save_image(result.image, args.output)
    _warn_if_flat(result)
    h, w = result.image.shape[-2:]
    _say(
        False,  # the one line --quiet keeps: it holds the seed
        f"painterly: wrote {args.output} ({w}x{h}) in {result.elapsed:.1f} s — "
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
        save_image(result.image, out)
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


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.command == "layers":
            return _layers()
        if args.command == "sweep":
            return _sweep(args)
        return _stylize(args)
    except (UsageError, ConfigError, ImageError, WeightsError) as exc:
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
