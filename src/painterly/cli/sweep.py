"""``painterly sweep CONTENT STYLE --content-weights …``: the blog's α/β experiment, one picture
per content weight α and a labelled contact sheet."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ..images import load_image, save_image, to_pil
from ..job import Job, JobError
from ..sheet import contact_sheet
from . import common
from .options import UsageError, add_output_options, add_transfer_options, config_from_args, csv

__all__ = ["add_parser", "format_weight", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``sweep`` command's arguments (the blog-fast preset by default)."""
    s = sub.add_parser("sweep", help="one image per content weight α, and a labelled contact sheet")
    s.add_argument("content", type=Path)
    s.add_argument("style", type=Path)
    s.add_argument("-o", "--output", type=Path, required=True, help="the contact sheet image")
    s.add_argument(
        "--content-weights", type=csv(float), required=True, metavar="A1,A2,…", help="values of α"
    )
    add_transfer_options(s, preset="blog-fast")
    add_output_options(s)


def format_weight(value: float) -> str:
    """Short and exact: powers of ten as 1e1, 1e-2; anything else as %g (150, 0.025)."""
    mantissa, exponent = f"{value:e}".split("e")
    if float(mantissa) == 1.0 and int(exponent) != 0:
        return f"1e{int(exponent)}"
    return f"{value:g}"


def run(args: argparse.Namespace) -> int:
    """Paint every α with one network, then the sheet."""
    for flag, given in (
        ("--content-weight", args.content_weight),
        ("--save-every", args.save_every),
        ("--save-dir", args.save_dir),
    ):
        if given is not None:
            raise UsageError(f"sweep does not take {flag} (α comes from --content-weights)")
    base = config_from_args(args)
    base.check_styles(1)
    tiles_dir = args.output.with_name(args.output.stem + "_tiles")
    sheet_job = Job(base, args.content, [args.style], args.output)
    sheet_job.check_files()
    _make_tiles_dir(tiles_dir)
    runner = common.load_runner(base)
    sheet_job.check_memory(runner)
    configs = [base.replace(content_weight=a) for a in args.content_weights]
    common.say(
        args.quiet,
        f"painterly: sweep of {len(configs)} runs, preset {base.preset}, seed "
        f"{base.seed}, device {runner.device}, precision {runner.precision}",
    )
    started = time.perf_counter()
    images, labels = [], []
    for index, cfg in enumerate(configs, start=1):
        a, b = cfg.content_weight, cfg.style_weight
        label = f"α={format_weight(a)} β={format_weight(b)}"
        out = tiles_dir / f"{index:02d}_alpha_{format_weight(a)}.png"
        job = Job(cfg, args.content, [args.style], out)
        outcome, signals = common.run_job(runner, job, args.quiet, label)
        if outcome.stopped:
            common.say(
                False,
                f"painterly: stopped at step {outcome.result.steps} of tile {index} — saved the "
                f"best image so far to {out}; a sweep is not resumable, run it again",
            )
            return signals.exit_code()
        images.append(to_pil(outcome.result.image))
        ratio = a / b if b else math.inf
        labels.append(f"{label}\nα/β={format_weight(ratio)}")
    content_im, style_im = to_pil(load_image(args.content)), to_pil(load_image(args.style))
    sheet = contact_sheet(
        [content_im, style_im, *images], ["content", "style", *labels], height=images[0].height
    )
    save_image(sheet, args.output)
    common.say(
        False,  # the one line --quiet keeps: it holds the seed
        f"painterly: wrote {args.output} and {len(images)} tiles in {tiles_dir} "
        f"in {time.perf_counter() - started:.1f} s; seed {base.seed}",
    )
    return common.EXIT_OK


def _make_tiles_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(f"{folder}: cannot create this folder ({exc.strerror})") from None
