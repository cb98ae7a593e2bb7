"""The web app under load and slow clients (issue 16, item 3): a real uvicorn on a loopback
port, a job painting, tens of concurrent polls, an upload that trickles in and a client that
never reads its response. ``benchmarks/bench_web.py`` is the 30-second version with figures."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import uvicorn

from painterly.web import bind, create_app
from painterly.web.jobs import ImageStore, JobQueue, Limits

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")

JOB = {"content": "content-chelsea_cat", "style": "style-starry_night", "size": 64}


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def _serve(limits: Limits) -> Iterator[int]:
    """uvicorn serving the app on a free loopback port, in a thread; yields the port."""
    sock = bind("127.0.0.1", 0, stall_s=limits.stall_s)
    app = create_app(limits, queue=JobQueue(limits))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _request(port: int, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _poll(port: int, job_id: str, rounds: int) -> list[int]:
    """A page's polling on one kept-alive connection: status, queue, live image, losses."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses = []
    try:
        for _ in range(rounds):
            for path in (
                f"/api/jobs/{job_id}",
                "/api/queue",
                f"/api/jobs/{job_id}/frame",
                f"/api/jobs/{job_id}/losses.png",
            ):
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
    finally:
        conn.close()
    return statuses


def _trickle(port: int, length: int) -> socket.socket:
    """An upload whose headers promise ``length`` bytes, none of which are sent yet."""
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(
        f"POST /api/images?name=slow.png HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Length: {length}\r\n\r\n".encode()
    )
    return slow


def _response(sock: socket.socket) -> bytes:
    sock.settimeout(30)
    data = b""
    with contextlib.suppress(ConnectionError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _connected(server_port: int, client_port: int) -> bool:
    """Whether the server's end of the connection from ``client_port`` still exists
    (``/proc/net/tcp``: local and remote address as hex ``IP:PORT``)."""
    ends = (f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}")
    with open("/proc/net/tcp") as table:
        return any(tuple(line.split()[1:3]) == ends for line in table)


def _step(port: int, job_id: str) -> int:
    import json

    return int(json.loads(_request(port, "GET", f"/api/jobs/{job_id}")[1])["step"])


class _SlowClients:
    """An upload that trickles in a byte every 0.1 s, one that stops after 4 bytes, and a
    client that asks for 5 MB of responses and reads none of them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.trickler, self.stalled = _trickle(port, 100_000), _trickle(port, 100_000)
        self.stalled.sendall(b"\x89PNG")
        self.trickling = threading.Event()
        self.feeder = threading.Thread(target=self._trickle, daemon=True)
        self.feeder.start()
        self.deaf = socket.socket()
        self.deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.deaf.connect(("127.0.0.1", port))
        request = f"GET /static/app.js HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        self.deaf.sendall(request.encode() * 400)

    def _trickle(self) -> None:
        while not self.trickling.wait(0.1):
            self.trickler.sendall(b"x")

    def check_cut_off(self) -> None:
        """The trickling upload is still being received (no answer yet), until it stops: then
        both uploads get 408 and their connections end; the deaf client is dropped."""
        self.trickler.setblocking(False)
        with pytest.raises(BlockingIOError):
            self.trickler.recv(1)
        self.trickling.set()
        self.feeder.join()
        self.trickler.setblocking(True)
        for sock in (self.trickler, self.stalled):
            reply = _response(sock)
            assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
            assert b"nothing more arrived for 1 s (the limit)" in reply
        deadline = time.monotonic() + 60  # the kernel gives up on the client that reads nothing
        while _connected(self.port, self.deaf.getsockname()[1]):
            assert time.monotonic() < deadline, "the client that never reads is still served"
            time.sleep(0.1)
        with pytest.raises(ConnectionResetError):  # it finds out when it reads at last
            while self.deaf.recv(65536):
                pass

    def close(self) -> None:
        for sock in (self.trickler, self.stalled, self.deaf):
            sock.close()


def _wait_for_step(port: int, job_id: str, above: int) -> None:
    deadline = time.monotonic() + 60
    while _step(port, job_id) <= above:
        assert time.monotonic() < deadline, f"the job did not go past step {above}"
        time.sleep(0.05)


def test_slow_clients_hold_up_neither_other_clients_nor_the_job() -> None:
    import json

    limits = Limits(body_idle_s=1.0, body_total_s=600.0, stall_s=1.0)
    with _serve(limits) as port:
        status, body = _request(port, "POST", "/api/jobs", json.dumps({**JOB, "iterations": 1000}))
        assert status == 201, body
        job_id = json.loads(body)["id"]
        _wait_for_step(port, job_id, 0)
        assert _request(port, "GET", f"/api/jobs/{job_id}/losses.png")[0] == 200  # fonts open
        start_fds = _fds()
        slow = _SlowClients(port)
        # Meanwhile 30 pages poll, and all of them are answered while the job goes on.
        step_before = _step(port, job_id)
        with ThreadPoolExecutor(30) as pool:
            polls = pool.map(lambda _: _poll(port, job_id, 5), range(30))
            answers = [code for codes in polls for code in codes]
        assert answers == [200] * 30 * 5 * 4
        _wait_for_step(port, job_id, step_before)
        slow.check_cut_off()
        slow.close()
        assert _request(port, "POST", f"/api/jobs/{job_id}/stop")[0] == 200
        deadline = time.monotonic() + 30
        while _fds() > start_fds:  # every connection's descriptor is given back
            assert time.monotonic() < deadline, f"{_fds() - start_fds} descriptors left open"
            time.sleep(0.05)


def test_an_upload_that_never_pauses_but_never_ends_is_cut_off_and_uploads_are_bounded() -> None:
    limits = Limits(body_idle_s=1.0, body_total_s=2.0, uploads_at_once=1)
    with _serve(limits) as port:
        slow = _trickle(port, 100_000)
        time.sleep(0.2)  # let the server start reading it
        status, body = _request(port, "POST", "/api/images?name=second.png", b"\x89PNG")
        assert status == 503
        assert b"Too many uploads at once: 2 with this one, the limit is 1" in body
        sending = threading.Event()

        def trickle() -> None:
            with contextlib.suppress(OSError):
                while not sending.wait(0.2):
                    slow.sendall(b"x")

        feeder = threading.Thread(target=trickle, daemon=True)
        feeder.start()
        reply = _response(slow)
        sending.set()
        feeder.join()
        slow.close()
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"The upload is too slow: " in reply and b"arrived in 2 s" in reply


def test_uploads_are_decoded_one_at_a_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import torch

    from painterly.web import jobs

    busy, most = [0], [0]
    lock = threading.Lock()

    def decode(path: Any, name: str, limits: Limits) -> torch.Tensor:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.05)
        with lock:
            busy[0] -= 1
        return torch.rand(1, 3, 32, 32)

    monkeypatch.setattr(jobs, "decode_upload", decode)
    store = ImageStore()
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda k: store.add_upload(tmp_path / f"{k}.png", f"{k}.png"), range(6)))
    assert most[0] == 1


def test_loss_curves_are_drawn_once_for_all_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import painterly.plot

    drawn: list[int] = []

    def draw(records: list[Any], title: str) -> bytes:
        drawn.append(len(records))
        time.sleep(0.05)
        return b"png %d" % len(records)

    monkeypatch.setattr(painterly.plot, "loss_figure_bytes", draw)
    queue = JobQueue(Limits(plot_interval=600.0), machine_lock=None)
    job: Any = types.SimpleNamespace(losses=[{"total": 1.0}], plot=None, finished=False)
    try:
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda _: queue.fresh_plot(job) or queue.draw_plot(job), range(8)))
        assert got == [b"png 1"] * 8 and drawn == [1]
        job.losses.append({"total": 0.5})  # a new step, but the drawing is recent: shared
        assert queue.fresh_plot(job) == b"png 1" and drawn == [1]
        job.finished = True  # the last drawing shows every step
        assert queue.fresh_plot(job) is None and queue.draw_plot(job) == b"png 2"
        assert drawn == [1, 2]
    finally:
        queue.close()
