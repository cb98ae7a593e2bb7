"""``painterly serve``: the local web app (:mod:`painterly.web`)."""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_OK, warn
from .options import UsageError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``serve`` command's arguments."""
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


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    try:
        import uvicorn  # noqa: F401 - checked here so that a missing extra is said in words

        from .. import web
    except ImportError as exc:
        raise UsageError(
            f"painterly serve needs the web extra ({exc.name} is missing): "
            "pip install 'painterly[web]'"
        ) from None
    if not web.is_loopback(args.host):
        warn(
            f"listening on {args.host}, beyond this computer: anyone who can reach this "
            "address can use the app (there is no login) and this computer's CPU"
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
