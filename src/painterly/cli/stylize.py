"""``painterly stylize CONTENT STYLE… -o OUT``: one picture."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..job import Job
from . import common
from .options import UsageError, add_output_options, add_transfer_options, config_from_args

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``stylize`` command's arguments."""
    p = sub.add_parser("stylize", help="repaint CONTENT in the style of STYLE")
    p.add_argument("content", type=Path, help="the photo")
    p.add_argument("style", type=Path, nargs="+", help="the painting, or several to blend")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output image (.png .jpg .webp .tiff)"
    )
    add_transfer_options(p)
    add_output_options(p)
    long_run = p.add_argument_group("long runs")
    long_run.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="N",
        help="write OUT.ckpt every N steps and after 10 minutes of work without one, to resume "
        "from after a crash; 0: only on Ctrl-C/SIGTERM (default: 100; removed when the run ends)",
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
        help="paint at the largest size that fits in memory (when not even tiles fit) instead of "
        "refusing (exit 3)",
    )


def run(args: argparse.Namespace) -> int:
    """Check everything cheap, load the model, check memory, paint."""
    config = config_from_args(args)
    if args.save_every is not None and args.save_every < 1:
        raise UsageError("--save-every must be a positive integer")
    if args.save_dir is not None and args.save_every is None:
        raise UsageError("--save-dir needs --save-every")
    if args.checkpoint_every < 0:
        raise UsageError("--checkpoint-every must be 0 (only on Ctrl-C) or a positive integer")
    save_dir = args.save_dir or args.output.with_name(args.output.stem + "_steps")
    config.check_styles(len(args.style))
    job = Job(
        config,
        args.content,
        args.style,
        args.output,
        save_every=args.save_every,
        save_dir=save_dir if args.save_every else None,
        checkpoint_every=args.checkpoint_every,
        keep_alpha=args.keep_alpha,
        plot=plot_path(args) if args.plot else None,
    )
    job.check_files()
    runner = common.load_runner(config)
    check = job.check_memory(runner, args.downscale_to_fit)
    if check.tile is not None and config.tile is None and check.whole is not None:
        common.warn(
            f"a {check.width}x{check.height} px run needs about {check.whole / 2**30:.1f} GiB "
            f"whole; evaluating it in exact tiles of {check.tile} px "
            f"(about {check.need / 2**30:.1f} GiB)"
        )
    if not check.ok:
        common.warn(
            f"{check.describe(str(runner.device))}; painting at --size {job.config.size} instead"
        )
    code, _ = common.paint(runner, job, args.quiet)
    return code


def plot_path(args: argparse.Namespace) -> Path:
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
