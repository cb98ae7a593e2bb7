"""The style-transfer options of the command line, derived from :class:`~painterly.config.Config`.

:func:`painterly.config.command_options` reads each option's name, kind, default and help from
the Config's fields; this module turns that table into argparse arguments and back into a
Config. ``--help``, the Config and the README's option table therefore cannot drift (a test
holds the README to the same table).
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import PRESETS, Config, OptionSpec, command_options

__all__ = ["UsageError", "add_transfer_options", "config_from_args", "csv"]


class UsageError(Exception):
    """A problem with the command line, reported with exit code 2."""


_KINDS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str}


def csv(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    """An argparse type for a comma-separated list of ``kind`` ("1,2,3" → (1, 2, 3))."""

    def parse(text: str) -> tuple[Any, ...]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        try:
            return tuple(kind(t) for t in items)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = f"list of {getattr(kind, '__name__', 'value')}"
    return parse


class _Unset:
    """The value of an optional number's word ("none", "auto"): given, meaning None."""

    def __repr__(self) -> str:
        return "unset"


_UNSET = _Unset()


def _number_or_word(kind: Callable[[str], Any], word: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        text = text.strip().lower()
        # "--patience none", "off" or 0 switch the rule off; "--scales auto" chooses.
        if text == word or (word == "none" and text in ("off", "0")):
            return _UNSET
        return kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def _argument(spec: OptionSpec) -> dict[str, Any]:
    """argparse keyword arguments for one option."""
    if spec.kind == "bool":
        return {"action": argparse.BooleanOptionalAction}
    if spec.kind == "choice":
        return {"choices": spec.choices}
    if spec.kind == "list":
        assert spec.item is not None
        return {"type": csv(_KINDS[spec.item]), "metavar": spec.metavar}
    kind = _KINDS[spec.kind]
    if spec.word is not None:
        return {"type": _number_or_word(kind, spec.word), "metavar": spec.metavar}
    return {"type": kind, "metavar": spec.metavar}


def _shown(spec: OptionSpec, default: Any) -> str | None:
    if default is None:
        return spec.word
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    return str(default)


def add_transfer_options(parser: argparse.ArgumentParser, preset: str = "default") -> None:
    """The ``--preset`` option and one option per Config field, defaults shown from ``preset``."""
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
    for spec in command_options():
        shown = _shown(spec, getattr(defaults, spec.name))
        text = (
            spec.help
            if "default" in spec.help or shown is None
            else f"{spec.help} (default: {shown})"
        )
        group.add_argument(spec.flag, dest=spec.name, default=None, help=text, **_argument(spec))


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--save-every``, ``--save-dir`` and ``--quiet``."""
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


def config_from_args(args: argparse.Namespace, **fixed: Any) -> Config:
    """The Config of a command line: the preset, the options given, ``fixed``; a random seed
    when none is given (it is printed).

    Raises:
        ConfigError: an invalid value. UsageError: options that would be silently ignored.
    """
    overrides = {
        spec.name: getattr(args, spec.name)
        for spec in command_options()
        if getattr(args, spec.name, None) is not None
    }
    overrides.update(fixed)
    overrides = {k: None if v is _UNSET else v for k, v in overrides.items()}
    if overrides.get("seed") is None:
        overrides["seed"] = secrets.randbelow(2**31)
    config = Config.from_preset(args.preset, **overrides)
    if "iterations" in overrides and "scale_iterations" in overrides:
        raise UsageError("give --iterations or --scale-iterations, not both")
    if "tolerance" in overrides and config.patience is None:
        raise UsageError("--tolerance has no effect with --patience none")
    return config
