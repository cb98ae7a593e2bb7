"""``painterly batch PHOTOS… --styles STYLES… -o OUT_DIR``: many pictures, resumable.

Every photo × every style (or ``--pairs FILE``) × every point of ``--grid``, painted through
:mod:`painterly.batch` (itself on the job runner). Exit codes: 0 every job done (or skipped as
done before), 1 at least one job failed (the table says which and why), 2 a bad command line
or input list (before any compute), 130/143 stopped by Ctrl-C/SIGTERM (the running jobs keep
their checkpoints: run the same command again to finish them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .. import batch
from ..job import JobError
from . import common
from .options import UsageError, add_transfer_options, config_from_args

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``batch`` command's arguments."""
    p = sub.add_parser(
        "batch",
        help="every photo in every style (folders, globs), resumable, in parallel or on Ray",
        description="Paint every photo in every style into OUT_DIR as {photo}__{style}.png, "
        "with a manifest (OUT_DIR/manifest.jsonl); run it again to skip what is done and "
        "finish the rest. Exit codes: 0 all done, 1 some job failed, 2 bad usage, "
        "130/143 stopped (rerun to resume).",
    )
    p.add_argument("photos", type=Path, nargs="*", help="photos: files, folders or globs")
    p.add_argument("--styles", nargs="+", default=[], metavar="STYLE", help="paintings, same")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR")
    p.add_argument(
        "--pairs", type=Path, metavar="FILE", help="explicit 'PHOTO STYLE' lines instead of ×"
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="K=V1,V2",
        help="one picture per value of an option (repeat for a product), e.g. "
        "style_weight=1e2,1e3; labels the outputs",
    )
    p.add_argument(
        "--workers", type=int, default=1, metavar="N", help="jobs at once on this machine"
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="each job a Ray task: a local Ray, or the cluster at ADDRESS (painterly[ray])",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="N",
        help="checkpoint each job every N steps and after 10 minutes of work without one (0: "
        "only on Ctrl-C; default 100)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="a log line per job, no bar")
    add_transfer_options(p)


def _plan(args: argparse.Namespace) -> list[batch.BatchJob]:
    """The jobs of the command line, every input and option checked before any compute."""
    if args.workers < 1:
        raise UsageError("--workers must be a positive integer")
    if args.checkpoint_every < 0:
        raise UsageError("--checkpoint-every must be 0 (only on Ctrl-C) or a positive integer")
    if args.ray is not None and args.workers > 1:
        raise UsageError("give --workers (this machine) or --ray (Ray's scheduling), not both")
    if args.ray is not None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError("--ray needs ray: pip install 'painterly[ray]'") from None
    if args.pairs is None and not (args.photos and args.styles):
        raise UsageError("give PHOTOS and --styles STYLES, or --pairs FILE")
    if args.pairs is not None and (args.photos or args.styles):
        raise UsageError("--pairs replaces PHOTOS and --styles: give one or the other")
    config = config_from_args(args, **({} if args.seed is not None else {"seed": 0}))
    config.check_styles(1)
    grid = [batch.parse_grid(g) for g in args.grid]
    pairs = batch.read_pairs(args.pairs) if args.pairs is not None else None
    photos = batch.expand_inputs(args.photos) if pairs is None else []
    styles = batch.expand_inputs(args.styles, "style") if pairs is None else []
    if args.output.exists() and not args.output.is_dir():
        raise JobError(f"{args.output}: is a file; -o names the output folder")
    return batch.plan_jobs(photos, styles, args.output, config, pairs=pairs, grid=grid)


def run(args: argparse.Namespace) -> int:
    """Plan, paint the jobs as they come, print the table; the exit code says how it went."""
    jobs = _plan(args)
    skipped = sum(batch.Manifest(args.output).is_done(j) for j in jobs)
    common.say(
        args.quiet,
        f"painterly: batch of {len(jobs)} jobs into {args.output} ({skipped} done before), "
        f"seed {jobs[0].config.seed}, "
        + (f"Ray {args.ray or 'local'}" if args.ray is not None else f"{args.workers} worker(s)"),
    )
    bar = tqdm(
        total=len(jobs),
        initial=skipped,
        disable=args.quiet,
        unit="job",
        desc="batch",
        dynamic_ncols=True,
        file=sys.stderr,
    )

    def progress(name: str, step: int, total: int) -> None:
        bar.set_postfix_str(f"{name}: step {step}/{total}")

    results = []
    with common.Signals() as signals:
        try:
            for result in batch.run_jobs(
                jobs,
                args.output,
                workers=args.workers,
                ray=args.ray,
                stop=signals.stop,
                progress=progress,
                checkpoint_every=args.checkpoint_every,
            ):
                results.append(result)
                if result.state != "skipped":
                    bar.update(1)
                    _log(args.quiet, result)
        finally:
            bar.close()
    _table(results, len(jobs))
    if signals.stop.requested:
        return signals.exit_code()
    return common.EXIT_ERROR if any(r.state == "failed" for r in results) else common.EXIT_OK


def _log(quiet: bool, result: batch.BatchResult) -> None:
    """With --quiet, one line per job that ended (for logs)."""
    if quiet:
        why = f": {result.error}" if result.error else ""
        common.say(
            False, f"painterly: {result.state} {result.job.name} {result.seconds:.1f} s{why}"
        )


def _table(results: list[batch.BatchResult], planned: int) -> None:
    """The end: one row per job (state, name, seconds or reason) and the counts."""
    for r in sorted(results, key=lambda r: ("failed", "stopped", "done", "skipped").index(r.state)):
        detail = r.error or (f"{r.seconds:.1f} s" if r.seconds else "")
        if r.resumed:
            detail += " (resumed)"
        for message in r.warnings:
            detail += f"; warning: {message}"
        print(f"  {r.state:<8} {r.job.name:<40} {detail}", file=sys.stderr)
    counts = {s: sum(r.state == s for r in results) for s in ("done", "skipped", "failed")}
    stopped = planned - counts["done"] - counts["skipped"] - counts["failed"]
    print(
        f"painterly: batch: {counts['done']} done, {counts['skipped']} skipped, "
        f"{counts['failed']} failed"
        + (f", {stopped} stopped or not started (run again to finish)" if stopped else ""),
        file=sys.stderr,
    )
