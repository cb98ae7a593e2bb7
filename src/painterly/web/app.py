"""The web app: one static page and a small JSON API over :mod:`painterly.web.jobs`.

Routes (all JSON unless said otherwise; errors are ``{"error": "a sentence"}``):

``GET /``                           the page (HTML; its script and style from ``/static/``)
``GET /api/info``                   limits, defaults, whether colours can be preserved, examples
``POST /api/images?name=N``         the request body is an image file; decoded, kept, described
``GET /api/images/{id}/preview``    a JPEG of a kept image (at most 480 px)
``POST /api/jobs``                  ``{content, style, size, strength, iterations,
                                    preserve_colors}`` → the queued job
``GET /api/jobs/{id}``              its state, step, losses, ETA, live-image version
``GET /api/jobs/{id}/frame``        the live image (PNG)
``GET /api/jobs/{id}/result``       the picture, as a download (PNG)
``GET /api/jobs/{id}/losses.png``   the loss curves so far (matplotlib)
``POST /api/jobs/{id}/stop``        stop it (the best image so far is kept) or cancel it
``GET /api/queue``                  what is running and waiting, for every tab

Safety: uploads are read with a byte limit into a temporary file the server names itself,
decoded by Pillow (whatever the name or type claims), checked against a pixel limit and
deleted at once; nothing the client sends is ever used as a path; errors reach the page as
sentences, tracebacks only the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .jobs import (
    LIMITS,
    PRESERVE_CHOICES,
    PRESERVE_COLORS,
    ImageStore,
    Job,
    JobOptions,
    JobQueue,
    Limits,
    StoredImage,
    UserError,
    display_name,
    example_name,
    find_examples,
)

__all__ = ["create_app"]

log = logging.getLogger("painterly.web")

_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_HEADERS = {
    # Everything the page needs comes from this server; nothing inline, nothing framed.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_JSON_LIMIT = 16 * 1024


class Beside:
    """One thread for the work beside the painting: decoding uploads and examples, drawing
    loss curves. One thread, not a pool: at most one decode's pixels at a time, one malloc
    arena and one set of matplotlib's per-thread font files, instead of one per pool thread
    (which left ~35 more font files open after a load test). On Linux it runs
    at a lower priority (nice +5), so that the painting keeps the processor it needs."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, "painterly-web-side", initializer=_lower_priority)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the thread, awaited."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _lower_priority() -> None:
    if sys.platform.startswith("linux"):  # per thread there (a thread is a task)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)


class _Guard:
    """Adds :data:`_HEADERS` to every response, and refuses requests that change something
    (anything but GET and HEAD) when a browser says they come from another site's page: a web
    page elsewhere must not be able to queue jobs or upload files here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in _HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if (
            scope["method"] not in ("GET", "HEAD")
            and origin is not None
            and urlsplit(origin).netloc != headers.get("host")
        ):
            refused = _error("Requests from other web pages are refused.", 403)
            await refused(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _static_text(name: str) -> bytes:
    return resources.files("painterly.web").joinpath("static").joinpath(name).read_bytes()


async def _read_limited(
    request: Request, limit: int, sink: Callable[[bytes], object], limits: Limits
) -> None:
    """Pass the body to ``sink`` chunk by chunk. Refused: past ``limit`` bytes (413); a body
    whose next piece takes over ``limits.body_idle_s`` seconds to come, or that is not whole
    within ``limits.body_total_s`` seconds (408: a client that trickles must not hold a
    connection and a temporary file for ever); a client gone half-way (400, quietly)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UserError(_too_big(int(declared), limit), 413)
    total = 0
    deadline = anyio.current_time() + limits.body_total_s
    chunks = request.stream().__aiter__()
    while True:
        wait = min(limits.body_idle_s, deadline - anyio.current_time())
        try:
            with anyio.fail_after(max(wait, 0.0)):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UserError(_too_slow(total, wait < limits.body_idle_s, limits), 408) from None
        except ClientDisconnect:
            raise UserError("The upload was cut off before it was complete.") from None
        total += len(chunk)
        if total > limit:  # no length was declared: say "over" the limit
            raise UserError(_too_big(limit + 1, limit).replace("(", "(over "), 413)
        sink(chunk)


def _too_slow(received: int, whole: bool, limits: Limits) -> str:
    if whole:
        return (
            f"The upload is too slow: {_bytes(received)} arrived in {limits.body_total_s:g} s, "
            "the longest one upload may take. Try a smaller picture."
        )
    return (
        f"The upload stopped: nothing more arrived for {limits.body_idle_s:g} s (the limit) "
        f"after {_bytes(received)}. Try again."
    )


def _too_big(size: int, limit: int) -> str:
    return (
        f"The file is too large ({_bytes(size)}); the limit is {_bytes(limit)}. "
        "Use a smaller picture."
    )


def _bytes(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n / 1024:.3g} KB"


def _describe(image: StoredImage) -> dict[str, Any]:
    return {
        "id": image.id,
        "name": image.name,
        "width": image.width,
        "height": image.height,
        "preview": f"/api/images/{image.id}/preview",
    }


async def _read_json_object(request: Request, limits: Limits) -> dict[str, Any]:
    """The request body as a JSON object (at most :data:`_JSON_LIMIT` bytes, else 413);
    anything else is refused (400) in words."""
    body = bytearray()
    await _read_limited(request, _JSON_LIMIT, body.extend, limits)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UserError("The request was not understood (expected a JSON object).")
    return data


class _PageRoutes:
    """``GET /`` and ``GET /static/{name}``: the page and its own files, read once at start;
    a name that is not one of them is a 404, never a lookup on disk."""

    def __init__(self) -> None:
        self.files = {name: _static_text(name) for name in ("index.html", *_STATIC)}

    def routes(self) -> list[Route]:
        return [Route("/", self.index), Route("/static/{name}", self.static)]

    async def index(self, request: Request) -> Response:
        return Response(self.files["index.html"], media_type="text/html; charset=utf-8")

    async def static(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        if name not in _STATIC:
            raise UserError("Not found.", 404)
        return Response(self.files[name], media_type=_STATIC[name])


def _info_routes(limits: Limits, found: dict[str, Path], credits: dict[str, str]) -> list[Route]:
    """``GET /api/info``: the limits, the job defaults, the colour choices (None when colours
    cannot be preserved) and the example images ``found`` with their ``credits``."""

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "limits": {
                    "upload_mb": limits.upload_bytes // 2**20,
                    "upload_megapixels": limits.upload_pixels // 1_000_000,
                    "size": [limits.size_min, limits.size_max],
                    "iterations": [limits.iterations_min, limits.iterations_max],
                    "strength": [limits.strength_min, limits.strength_max],
                },
                "defaults": vars(JobOptions()),
                "preserve_colors": list(PRESERVE_CHOICES) if PRESERVE_COLORS else None,
                "examples": [
                    {
                        "id": key,
                        "kind": key.split("-", 1)[0],
                        "name": example_name(path),
                        "credit": credits.get(key, ""),
                        "preview": f"/api/images/{key}/preview",
                    }
                    for key, path in found.items()
                ],
            }
        )

    return [Route("/api/info", info)]


class _ImageRoutes:
    """``POST /api/images`` and ``GET /api/images/{id}/preview`` over the image ``store``.

    An upload is read (at most ``limits.upload_bytes``, else 413) into a file this server
    names itself under ``tmpdir``, handed to the store to decode and check, and deleted at once.
    """

    def __init__(self, store: ImageStore, limits: Limits, tmpdir: str, side: Beside) -> None:
        self.store = store
        self.limits = limits
        self.tmpdir = tmpdir
        self.side = side
        self.arriving = 0  # uploads being read now (one event loop: a plain counter)

    def routes(self) -> list[Route]:
        return [
            Route("/api/images", self.upload, methods=["POST"]),
            Route("/api/images/{image_id}/preview", self.preview),
        ]

    async def upload(self, request: Request) -> Response:
        name = display_name(request.query_params.get("name"))
        most = self.limits.uploads_at_once
        if self.arriving >= most:
            raise UserError(
                f"Too many uploads at once: {self.arriving + 1} with this one, the limit is "
                f"{most}; try again in a moment.",
                503,
            )
        self.arriving += 1
        fd, raw = tempfile.mkstemp(prefix="upload-", suffix=".bin", dir=self.tmpdir)
        path = Path(raw)
        try:
            with os.fdopen(fd, "wb") as f:
                await _read_limited(request, self.limits.upload_bytes, f.write, self.limits)
            if path.stat().st_size == 0:
                raise UserError(f"{name} is empty.")
            image = await self.side.run(self.store.add_upload, path, name)
        finally:
            self.arriving -= 1
            path.unlink(missing_ok=True)
        return JSONResponse(_describe(image), status_code=201)

    async def preview(self, request: Request) -> Response:
        image = await self.side.run(self.store.get, str(request.path_params["image_id"]))
        if image is None:
            raise UserError("That image is no longer here; please add it again.", 404)
        return Response(
            image.preview, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"}
        )


class _JobRoutes:
    """``/api/jobs`` (submit, status, frame, result, losses, stop) and ``GET /api/queue`` over
    the job queue ``jobs``; the photo and painting of a new job come from ``store``."""

    def __init__(self, jobs: JobQueue, store: ImageStore, limits: Limits, side: Beside) -> None:
        self.jobs = jobs
        self.store = store
        self.limits = limits
        self.side = side

    def routes(self) -> list[Route]:
        return [
            Route("/api/jobs", self.submit, methods=["POST"]),
            Route("/api/jobs/{job_id}", self.job_status),
            Route("/api/jobs/{job_id}/frame", self.frame),
            Route("/api/jobs/{job_id}/result", self.result),
            Route("/api/jobs/{job_id}/losses.png", self.losses),
            Route("/api/jobs/{job_id}/stop", self.stop, methods=["POST"]),
            Route("/api/queue", self.overview),
        ]

    def find_job(self, request: Request) -> Job:
        job = self.jobs.get(str(request.path_params["job_id"]))
        if job is None:
            raise UserError("There is no such job (it may have been cleared by a restart).", 404)
        return job

    async def submit(self, request: Request) -> Response:
        data = await _read_json_object(request, self.limits)
        options = JobOptions.parse(data, self.limits)
        images = []
        for key, label in (("content", "photo"), ("style", "painting")):
            image_id = data.get(key)
            image = (
                await self.side.run(self.store.get, image_id) if isinstance(image_id, str) else None
            )
            if image is None:
                raise UserError(f"Choose a {label} first (or add it again: it was cleared).")
            images.append(image)
        job = self.jobs.submit(options, images[0], images[1])
        return JSONResponse(self.jobs.status(job), status_code=201)

    async def job_status(self, request: Request) -> Response:
        status = self.jobs.status(self.find_job(request))
        return JSONResponse(status, headers={"Cache-Control": "no-store"})

    async def frame(self, request: Request) -> Response:
        job = self.find_job(request)
        data = job.frame
        if data is None:
            raise UserError("No image yet.", 404)
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def result(self, request: Request) -> Response:
        job = self.find_job(request)
        if job.result is None:
            raise UserError("This picture is not finished yet.", 409)
        stem = f"painterly-{job.content.name.rsplit('.', 1)[0]}-{job.options.size}px"
        ascii_stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
        return Response(
            job.result,
            media_type="image/png",
            headers={"Content-Disposition": f'attachment; filename="{ascii_stem}.png"'},
        )

    async def losses(self, request: Request) -> Response:
        job = self.find_job(request)
        try:  # a recent drawing is shared by every page (drawing takes a good part of a second)
            data = self.jobs.fresh_plot(job) or await self.side.run(self.jobs.draw_plot, job)
        except ImportError:
            raise UserError(
                "Loss curves need matplotlib: pip install 'painterly[web]'.", 404
            ) from None
        if data is None:
            raise UserError("No steps yet.", 404)
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def stop(self, request: Request) -> Response:
        job = self.find_job(request)
        self.jobs.stop(job.id)
        return JSONResponse(self.jobs.status(job))

    async def overview(self, request: Request) -> Response:
        return JSONResponse(self.jobs.overview(), headers={"Cache-Control": "no-store"})


async def _user_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserError)
    response = _error(str(exc), exc.status)
    if exc.status in (408, 413):  # the body may be unread: end the connection with it
        response.headers["Connection"] = "close"
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    words = {404: "Not found.", 405: "That is not allowed here."}
    return _error(words.get(exc.status_code, "The request was not understood."), exc.status_code)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error("Something went wrong inside painterly; the server's log has the details.", 500)


# Every error reaches the page as {"error": a sentence}; a traceback only the server's log.
_EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
    UserError: _user_error,
    HTTPException: _http_error,
    Exception: _internal_error,
}


def _lifespan(
    jobs: JobQueue, tmp: tempfile.TemporaryDirectory[str], side: Beside
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """On shutdown: close the job queue (in a thread: it waits for the running job) and the
    side thread, then remove the uploads' temporary folder ``tmp``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(jobs.close)
            side.close()
            tmp.cleanup()

    return lifespan


def _add_middleware(app: Starlette, allowed_hosts: Sequence[str] | None) -> None:
    """:class:`_Guard` (headers, other sites' pages refused) on every response; outside it,
    when ``allowed_hosts`` is given, Starlette's host check."""
    app.add_middleware(_Guard)
    if allowed_hosts is not None:  # outermost: a page on another name (DNS rebinding) gets nothing
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))


def create_app(
    limits: Limits = LIMITS,
    queue: JobQueue | None = None,
    examples: bool = True,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The web app, ready for any ASGI server (``painterly serve`` uses uvicorn).

    Args:
        limits: upload, size and queue limits.
        queue: the job queue (default: a new one; it runs one job at a time).
        examples: offer the bundled example images when they are found.
        allowed_hosts: host names the app answers to (None: any); ``painterly serve`` on a
            loopback address allows only 127.0.0.1, localhost and ::1.
    """
    found, credits = find_examples() if examples else ({}, {})
    store = ImageStore(found, limits)
    jobs = queue or JobQueue(limits)
    tmp = tempfile.TemporaryDirectory(prefix="painterly-web-")
    side = Beside()
    routes = [
        *_PageRoutes().routes(),
        *_info_routes(limits, found, credits),
        *_ImageRoutes(store, limits, tmp.name, side).routes(),
        *_JobRoutes(jobs, store, limits, side).routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers=_EXCEPTION_HANDLERS,
        lifespan=_lifespan(jobs, tmp, side),
    )
    _add_middleware(app, allowed_hosts)
    app.state.queue = jobs
    app.state.store = store
    app.state.tmpdir = Path(tmp.name)
    return app
