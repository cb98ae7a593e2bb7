"""``painterly serve``: a local web app to paint a photo in a browser.

Needs the ``web`` extra (``pip install 'painterly[web]'``): Starlette for the app, uvicorn to
serve it. :func:`create_app` builds the ASGI app; :func:`serve` binds a socket and runs it.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable

from .app import create_app
from .jobs import LIMITS

__all__ = ["LOOPBACK_NAMES", "bind", "create_app", "is_loopback", "serve"]

#: The names a page served on a loopback address may be reached by.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int, stall_s: float = LIMITS.stall_s) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: a free one).

    Every connection it accepts is dropped by the kernel when what the server sent stays
    unread (unacknowledged, or the client's window shut) for ``stall_s`` seconds
    (``TCP_USER_TIMEOUT``, Linux; elsewhere there is no such limit): a client that never
    reads its response then holds neither a connection nor a file descriptor for long.

    Raises:
        OSError: the address cannot be used (in use, not this machine's, unknown name).
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)
        if user_timeout is not None:  # inherited by the accepted connections
            sock.setsockopt(socket.IPPROTO_TCP, user_timeout, round(stall_s * 1000))
        sock.bind(address)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the app until Ctrl-C (or SIGTERM).

    Args:
        host: address to listen on; anything but loopback makes the app reachable from other
            machines (the caller should warn).
        port: TCP port; 0 picks a free one.
        announce: called with the page's address once the socket is bound (default: print it
            to standard error).

    Raises:
        OSError: the address cannot be used.
    """
    import uvicorn

    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound_port}/"
    (announce or (lambda u: print(f"painterly: serving on {u}", file=sys.stderr)))(url)
    hosts = LOOPBACK_NAMES if is_loopback(host) else None
    config = uvicorn.Config(create_app(allowed_hosts=hosts), log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
