"""The web app under load (issue 16, item 3), on loopback, against the same job unloaded.

``painterly serve`` runs in its own process; it is first warmed up (16 uploads kept, loss
curves drawn once). A job paints (192 px, one scale) for a 30-second window three times:
alone, under load, alone again (the two unloaded windows bracket the loaded one, so that a
drift of the machine shows); ``--parts`` adds windows with the pages alone and the uploads
alone. Under load:

- N pages (default 32), each polling as the page's script does on its own kept-alive
  connection: the job's status every 0.35 s, the live image whenever its version changes, the
  loss curves whenever the number of steps changes, the queue every 1.5 s;
- a burst of 8 simultaneous uploads (a 1024 px JPEG) every 5 s;
- an upload that stops after its first bytes (the server cuts it off with 408 after 15 s);
- a client that pipelines 400 requests and reads none of the responses (the kernel drops it
  after the 30 s the server allows).

Printed: the CPU, the step time of each window (from the job's own clock) and the loaded one's
ratio to the unloaded mean, the requests answered by status, latencies of the status polls,
the server's resident memory (VmRSS) and open file descriptors before and after each window.

    PYTHONPATH=src python benchmarks/bench_web.py [--pages 32] [--window 30] [--parts]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
UPLOAD = ROOT / "examples" / "content" / "tubingen.jpg"
JOB = {"content": "content-tubingen", "style": "style-starry_night", "size": 192}


def machine() -> str:
    """CPU model and the flags that matter here."""
    import torch

    from painterly.kernels import cpu_flags, cpu_model

    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in cpu_flags().items())
    return f"{cpu_model()} ({flags}); {os.cpu_count()} CPUs; torch {torch.__version__}"


class Server:
    """``painterly serve`` in a child process, and its /proc figures."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "painterly", "serve"], stderr=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, line
        self.port = int(match.group(1))

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def get(self, path: str) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())  # type: ignore[no-any-return]
        finally:
            conn.close()

    def post(self, path: str, body: bytes, kind: str = "application/json") -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": kind})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Page(threading.Thread):
    """One browser tab's polling (as ``static/app.js`` does), until ``done`` is set."""

    def __init__(self, port: int, job_id: str, done: threading.Event, tally: Tally) -> None:
        super().__init__(daemon=True)
        self.port, self.job_id, self.done, self.tally = port, job_id, done, tally

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        frame, steps, queue_at = -1, -1, 0.0
        while not self.done.is_set():
            status = self.tally.fetch(conn, f"/api/jobs/{self.job_id}", timed=True)
            if status is not None and status["frame"] != frame:
                frame = status["frame"]
                self.tally.fetch(conn, f"/api/jobs/{self.job_id}/frame?v={frame}")
            if status is not None and status["loss_steps"] != steps:
                steps = status["loss_steps"]
                self.tally.fetch(conn, f"/api/jobs/{self.job_id}/losses.png?v={steps}")
            if time.monotonic() - queue_at > 1.5:
                queue_at = time.monotonic()
                self.tally.fetch(conn, "/api/queue")
            self.done.wait(0.35)
        conn.close()


class Tally:
    """Status codes and status-poll latencies of every client, thread-safe."""

    def __init__(self) -> None:
        self.codes: Counter[int] = Counter()
        self.latency: list[float] = []
        self.lock = threading.Lock()

    def fetch(self, conn: http.client.HTTPConnection, path: str, timed: bool = False) -> Any:
        start = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):  # counted as status 0
            conn.close()
            with self.lock:
                self.codes[0] += 1
            return None
        took = time.perf_counter() - start
        with self.lock:
            self.codes[response.status] += 1
            if timed:
                self.latency.append(took)
        return json.loads(body) if response.status == 200 and timed else None


def bursts(server: Server, done: threading.Event, tally: Tally) -> None:
    """8 uploads at once every 5 s."""
    data = UPLOAD.read_bytes()

    def one() -> None:
        code, _ = server.post("/api/images?name=burst.jpg", data, "image/jpeg")
        with tally.lock:
            tally.codes[code] += 1

    while not done.wait(5.0):
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def slow_clients(port: int) -> tuple[socket.socket, socket.socket]:
    """An upload that stops after 4 bytes, and a client that reads nothing."""
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(
        b"POST /api/images?name=slow.png HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Length: 100000\r\n\r\n\x89PNG"
    )
    deaf = socket.socket()
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    deaf.connect(("127.0.0.1", port))
    deaf.sendall(b"GET /static/app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 400)
    return stalled, deaf


def window(server: Server, seconds: float, pages: int, uploads: bool, slow: bool) -> dict[str, Any]:
    """Paint one job; after its 10th step, measure ``seconds`` with ``pages`` pages polling,
    the upload bursts and the slow clients, as asked."""
    _, job = server.post("/api/jobs", json.dumps({**JOB, "iterations": 1000}).encode())
    while server.get(f"/api/jobs/{job['id']}")["step"] < 10:
        time.sleep(0.2)
    before = server.get(f"/api/jobs/{job['id']}")
    figures: dict[str, Any] = {"rss0": server.rss_mb(), "fds0": server.fds()}
    tally, done = Tally(), threading.Event()
    clients: list[threading.Thread] = [
        Page(server.port, job["id"], done, tally) for _ in range(pages)
    ]
    if uploads:
        clients.append(threading.Thread(target=bursts, args=(server, done, tally), daemon=True))
    if slow:
        stalled, deaf = slow_clients(server.port)
    for c in clients:
        c.start()
    rss_max, end = figures["rss0"], time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(1.0)
        rss_max = max(rss_max, server.rss_mb())
    after = server.get(f"/api/jobs/{job['id']}")
    done.set()
    for c in clients:
        c.join()
    if slow:
        stalled.settimeout(30)
        figures["stalled"] = stalled.recv(200).split(b"\r\n", 1)[0].decode()
        figures["deaf_dropped"] = _dropped(deaf)
        stalled.close()
        deaf.close()
    server.post(f"/api/jobs/{job['id']}/stop", b"")
    while server.get(f"/api/jobs/{job['id']}")["state"] == "running":
        time.sleep(0.2)
    time.sleep(2.0)  # let the server close what the clients closed
    figures.update(rss1=server.rss_mb(), rss_max=rss_max, fds1=server.fds(), tally=tally)
    figures["step_s"] = (after["elapsed"] - before["elapsed"]) / (after["step"] - before["step"])
    figures["steps"] = after["step"] - before["step"]
    return figures


def warm_up(server: Server) -> None:
    """Fill the app's memory as a long-running app's is: 16 uploads kept (the most it keeps),
    a job's loss curves drawn once; a later window's growth is then growth, not filling."""
    data = UPLOAD.read_bytes()
    for _ in range(16):
        server.post("/api/images?name=warm.jpg", data, "image/jpeg")
    _, job = server.post("/api/jobs", json.dumps({**JOB, "iterations": 3}).encode())
    while server.get(f"/api/jobs/{job['id']}")["state"] in ("queued", "running"):
        time.sleep(0.2)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("GET", f"/api/jobs/{job['id']}/losses.png")
    conn.getresponse().read()
    conn.close()


def _dropped(deaf: socket.socket) -> bool:
    """Whether the server gave up on the client that reads nothing (waits up to 40 s)."""
    deadline = time.monotonic() + 40
    port = deaf.getsockname()[1]
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as table:
            if not any(f"0100007F:{port:04X}" in line.split()[2:3] for line in table):
                return True
        time.sleep(0.5)
    return False


def report(name: str, f: dict[str, Any], base: float | None) -> None:
    ratio = f" = {f['step_s'] / base:.3f}× unloaded" if base else ""
    print(f"{name}: {f['steps']} steps, {f['step_s'] * 1000:.1f} ms per step{ratio}")
    print(
        f"  server VmRSS {f['rss0']:.0f} MB at the window's start, {f['rss_max']:.0f} MB at most, "
        f"{f['rss1']:.0f} MB after; open files {f['fds0']} → {f['fds1']}"
    )
    tally = f["tally"]
    if tally.codes:
        print(f"  responses by status (0: no response): {dict(sorted(tally.codes.items()))}")
    if tally.latency:
        lat = sorted(tally.latency)
        p99 = lat[int(0.99 * (len(lat) - 1))]
        print(
            f"  status polls: {len(lat)}, latency median {statistics.median(lat) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms"
        )
    if "stalled" in f:
        print(f"  stalled upload: {f['stalled']!r}; unread client dropped: {f['deaf_dropped']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=32)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--parts", action="store_true", help="also the pages and uploads alone")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"job: {JOB['size']} px, one scale; windows of {args.window:g} s after step 10")
    server = Server()
    runs: list[tuple[str, dict[str, Any]]] = []
    try:
        warm_up(server)
        alone = window(server, args.window, 0, False, False)
        if args.parts:
            runs.append(
                (f"{args.pages} pages alone", window(server, args.window, args.pages, False, False))
            )
            runs.append(("upload bursts alone", window(server, args.window, 0, True, False)))
        loaded = window(server, args.window, args.pages, True, True)
        again = window(server, args.window, 0, False, False)
    finally:
        server.stop()
    base = (alone["step_s"] + again["step_s"]) / 2
    report("unloaded (before)", alone, None)
    for name, figures in runs:
        report(name, figures, base)
    report(f"loaded ({args.pages} pages, upload bursts, 2 slow clients)", loaded, base)
    report("unloaded (after)", again, None)
    print(f"loaded / unloaded step time: {loaded['step_s'] / base:.3f}")


if __name__ == "__main__":
    main()
