"""``painterly layers``: VGG19's layer names, strides and Keras aliases."""

from __future__ import annotations

import argparse

from ..layers import LAYER_ALIASES, LAYER_NAMES, layer_stride
from .common import EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``layers`` command (no arguments)."""
    sub.add_parser("layers", help="list VGG19 layer names and their Keras aliases")


def run(args: argparse.Namespace) -> int:
    """Print the table on standard output."""
    aliases: dict[str, list[str]] = {}
    for alias, name in LAYER_ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    print(f"{'layer':10} {'stride':>6}  alias (Keras)")
    for name in LAYER_NAMES:
        print(f"{name:10} {layer_stride(name):>6}  {', '.join(aliases.get(name, []))}")
    return EXIT_OK
