"""The web app through its HTTP API (Starlette's test client; no browser), and `painterly serve`."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient

from painterly import cli, memory
from painterly.web import create_app, is_loopback, jobs
from painterly.web.jobs import PRESERVE_COLORS, JobQueue, Limits

from .conftest import CONTENT

FINISHED = ("done", "stopped", "failed", "cancelled")


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def _png(width: int = 80, height: int = 60) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def _upload(client: TestClient, path: Path) -> str:
    r = client.post(f"/api/images?name={path.name}", content=path.read_bytes())
    assert r.status_code == 201, r.text
    image_id: str = r.json()["id"]
    return image_id


def _wait(client: TestClient, job_id: str, until: tuple[str, ...] = FINISHED) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] in until:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {status['state']}")


def test_page_and_its_files_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "painterly" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    # Only the page's own files: nothing the client names is looked up on disk.
    for path in ("/static/index.html", "/static/..%2F..%2Fapi.py", "/static/%2Fetc%2Fpasswd"):
        r = client.get(path)
        assert r.status_code == 404 and r.json() == {"error": "Not found."}


def test_info_lists_limits_defaults_and_the_examples_with_credits(client: TestClient) -> None:
    info = client.get("/api/info").json()
    assert info["limits"]["size"] == [64, 1024]
    assert info["limits"]["upload_mb"] == 20
    kinds = {e["kind"] for e in info["examples"]}
    assert kinds == {"content", "style"}
    tubingen = next(e for e in info["examples"] if e["id"] == "content-tubingen")
    assert "Praefcke" in tubingen["credit"]
    preview = client.get(tubingen["preview"])
    assert preview.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(preview.content)) as im:
        assert max(im.size) <= 480


def test_without_examples_the_list_is_empty() -> None:
    with TestClient(create_app(examples=False)) as c:
        assert c.get("/api/info").json()["examples"] == []


def test_a_non_image_is_refused_in_words_whatever_its_name(client: TestClient) -> None:
    tmpdir = client.app.state.tmpdir  # type: ignore[attr-defined]
    for name, body in (("notes.txt", b"hello"), ("photo.jpg", b"%PDF-1.4 not a jpeg at all")):
        r = client.post(f"/api/images?name={name}", content=body)
        assert r.status_code == 400
        message = r.json()["error"]
        assert message == f"{name} is not an image this app can read (try a JPEG or PNG file)."
    # A truncated JPEG is named as such, and no server path leaks into any message.
    r = client.post("/api/images?name=cut.jpg", content=CONTENT.read_bytes()[:2000])
    assert r.status_code == 400 and r.json()["error"].startswith("cut.jpg")
    assert str(tmpdir) not in r.text and "upload-" not in r.text
    assert client.post("/api/images?name=empty.png", content=b"").json()["error"] == (
        "empty.png is empty."
    )
    assert list(tmpdir.iterdir()) == []  # every upload's temporary file is gone


def test_client_file_names_are_only_shown_never_used(client: TestClient) -> None:
    r = client.post("/api/images?name=../../etc/passwd", content=_png())
    assert r.status_code == 201
    assert r.json()["name"] == "passwd"
    assert list(client.app.state.tmpdir.iterdir()) == []  # type: ignore[attr-defined]


def test_oversized_uploads_are_refused() -> None:
    app = create_app(Limits(upload_bytes=4096, upload_pixels=4000), examples=False)
    with TestClient(app) as c:
        big = c.post("/api/images?name=big.jpg", content=CONTENT.read_bytes())
        assert big.status_code == 413
        size = CONTENT.stat().st_size
        assert big.json()["error"] == (
            f"The file is too large ({size / 1024:.3g} KB); the limit is 4 KB. "
            "Use a smaller picture."
        )
        many = c.post("/api/images?name=wide.png", content=_png(100, 50))
        assert many.status_code == 413
        assert many.json()["error"] == (  # both in the same unit, the limit not rounded to 0
            "wide.png is too large: 100×50 px (0.005 megapixels) is over the limit of 0.004 "
            "megapixels. Use a smaller picture."
        )
        assert c.post("/api/images?name=ok.png", content=_png(40, 30)).status_code == 201
        assert list(app.state.tmpdir.iterdir()) == []


def test_a_job_runs_to_completion_through_the_api(client: TestClient) -> None:
    content = _upload(client, CONTENT)
    body = {"content": content, "style": "style-starry_night", "size": 64, "iterations": 4}
    r = client.post("/api/jobs", json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] in ("queued", "running")
    status = _wait(client, job["id"])
    assert status["state"] == "done", status
    assert status["step"] == status["total"] == 4
    assert status["loss"] > 0 and status["frame"] >= 1 and status["has_result"]
    live = client.get(f"/api/jobs/{job['id']}/frame")
    assert live.headers["content-type"] == "image/png"
    result = client.get(f"/api/jobs/{job['id']}/result")
    assert result.headers["content-disposition"].startswith("attachment; filename=")
    with Image.open(io.BytesIO(result.content)) as im:
        assert im.format == "PNG" and max(im.size) == 64
    assert status["loss_steps"] == 4
    plot = client.get(f"/api/jobs/{job['id']}/losses.png")
    assert plot.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(plot.content)) as im:
        assert im.size[0] > 600


def test_stop_keeps_the_best_image_and_the_queue_is_visible(client: TestClient) -> None:
    body = {"content": "content-chelsea_cat", "style": "style-great_wave", "size": 64}
    first = client.post("/api/jobs", json={**body, "iterations": 1000}).json()
    second = client.post("/api/jobs", json={**body, "iterations": 3}).json()
    deadline = time.monotonic() + 60
    while client.get(f"/api/jobs/{first['id']}").json()["step"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    queue = client.get("/api/queue").json()  # what any other tab sees
    assert [(j["id"], j["state"]) for j in queue["jobs"]] == [
        (first["id"], "running"),
        (second["id"], "queued"),
    ]
    assert queue["jobs"][0]["content"] == "Chelsea cat" and queue["waiting"] == 1
    assert client.get(f"/api/jobs/{second['id']}").json()["position"] == 1
    assert client.post(f"/api/jobs/{second['id']}/stop").json()["state"] == "cancelled"
    client.post(f"/api/jobs/{first['id']}/stop")
    status = _wait(client, first["id"])
    assert status["state"] == "stopped" and status["has_result"]
    assert 2 <= status["step"] < 1000 and "kept the best image" in status["message"]
    with Image.open(io.BytesIO(client.get(f"/api/jobs/{first['id']}/result").content)) as im:
        assert max(im.size) == 64
    assert client.get("/api/queue").json() == {"jobs": [], "waiting": 0}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"size": 4096}, "The size must be between 64 and 1024, not 4096"),
        ({"size": "big"}, "The size must be a number"),
        ({"strength": 9}, "Style strength must be between 1 and 5, not 9"),
        ({"iterations": 0}, "Steps must be between 1 and 1000, not 0"),
        ({"content": "nope"}, "Choose a photo first"),
        ({"style": None}, "Choose a painting first"),
        ({"preserve_colors": "sepia"}, "Preserve colours must be off, luminance or histogram"),
    ],
)
def test_bad_job_options_are_refused_in_words(
    client: TestClient, change: dict[str, Any], words: str
) -> None:
    body = {"content": "content-tubingen", "style": "style-starry_night", "size": 64, **change}
    r = client.post("/api/jobs", json=body)
    assert r.status_code == 400 and r.json()["error"].startswith(words)


def test_malformed_requests_get_sentences(client: TestClient) -> None:
    r = client.post("/api/jobs", content=b"{not json", headers={"content-type": "text/plain"})
    assert r.json() == {"error": "The request was not understood (expected a JSON object)."}
    assert client.get("/api/jobs/unknown").status_code == 404
    assert "no such job" in client.get("/api/jobs/unknown/result").json()["error"]
    assert client.get("/api/images/unknown/preview").status_code == 404
    assert client.delete("/api/queue").json() == {"error": "That is not allowed here."}


def test_a_photo_too_thin_for_the_network_is_refused_before_it_queues(client: TestClient) -> None:
    thin = client.post("/api/images?name=strip.png", content=_png(400, 40)).json()["id"]
    body = {"content": thin, "style": "style-starry_night", "size": 64}
    r = client.post("/api/jobs", json=body)
    assert r.status_code == 400
    assert r.json()["error"].startswith("At 64 px the photo would be only 6 px on its short side")


def test_an_internal_error_is_a_sentence_and_the_trace_goes_to_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(examples=False)

    def broken(*args: object) -> None:
        raise RuntimeError("secret internals")

    app.state.store.add_upload = broken
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/api/images?name=a.png", content=_png())
    assert r.status_code == 500
    assert r.json() == {
        "error": "Something went wrong inside painterly; the server's log has the details."
    }
    assert "secret" not in r.text and "Traceback" not in r.text
    assert "secret internals" in caplog.text


def test_preserve_colours_follows_the_config() -> None:
    """Inert and hidden until Config has ``preserve_colors``; passed straight through after."""
    with TestClient(create_app()) as c:
        info = c.get("/api/info").json()
        body = {"content": "content-tubingen", "style": "style-starry_night", "size": 64}
        r = c.post("/api/jobs", json={**body, "iterations": 1, "preserve_colors": "luminance"})
        if PRESERVE_COLORS:
            assert info["preserve_colors"] == ["luminance", "histogram"]
            job = c.app.state.queue.get(r.json()["id"])  # type: ignore[attr-defined]
            assert job.config.preserve_colors == "luminance"
        else:
            assert info["preserve_colors"] is None
            assert r.status_code == 400 and "cannot preserve colours" in r.json()["error"]


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_serve_refuses_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--port", "70000"]) == cli.EXIT_USAGE
    assert "--port must be between 0 and 65535" in capsys.readouterr().err


def test_serve_prints_its_address_serves_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "painterly", "serve"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"serving on (http://127\.0\.0\.1:(\d+)/)", line)
        assert match, line
        with urllib.request.urlopen(match.group(1) + "api/info", timeout=30) as response:
            assert json.load(response)["limits"]["size"] == [64, 1024]
        # On loopback it answers to this computer's names only (no DNS rebinding).
        for host, status in (("localhost", 200), ("evil.example", 400)):
            conn = http.client.HTTPConnection("127.0.0.1", int(match.group(2)), timeout=30)
            conn.request("GET", "/", headers={"Host": f"{host}:{match.group(2)}"})
            assert conn.getresponse().status == status, host
            conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == cli.EXIT_INTERRUPTED
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_warns_beyond_loopback_and_says_when_the_port_is_taken() -> None:
    with _port_taken() as port:
        proc = subprocess.run(
            [sys.executable, "-m", "painterly", "serve", "--host", "0.0.0.0", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == cli.EXIT_USAGE
    assert "warning: listening on 0.0.0.0, beyond this computer" in proc.stderr
    assert f"cannot listen on 0.0.0.0:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


@contextlib.contextmanager
def _port_taken() -> Iterator[int]:
    """A port held by another listener on all addresses."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_an_upload_without_a_declared_length_is_cut_at_the_limit() -> None:
    app = create_app(Limits(upload_bytes=4096), examples=False)
    chunks = iter([b"x" * 3000, b"x" * 3000, b"x" * 3000])  # sent chunked, no Content-Length
    with TestClient(app) as c:
        r = c.post("/api/images?name=stream.bin", content=chunks)
        assert r.status_code == 413
        assert r.json()["error"] == (
            "The file is too large (over 4 KB); the limit is 4 KB. Use a smaller picture."
        )
        assert list(app.state.tmpdir.iterdir()) == []


def test_two_apps_on_one_computer_paint_one_at_a_time(tmp_path: Path) -> None:
    lock = tmp_path / "locks"
    first = create_app(queue=JobQueue(machine_lock=lock), examples=True)
    second = create_app(queue=JobQueue(machine_lock=lock), examples=True)
    body = {"content": "content-chelsea_cat", "style": "style-starry_night", "size": 64}
    with TestClient(first) as a, TestClient(second) as b:
        long = a.post("/api/jobs", json={**body, "iterations": 1000}).json()
        deadline = time.monotonic() + 60
        while a.get(f"/api/jobs/{long['id']}").json()["step"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        short = b.post("/api/jobs", json={**body, "iterations": 2}).json()
        waiting = b.get(f"/api/jobs/{short['id']}").json()
        while not waiting["message"].startswith("Waiting for another painterly run"):
            assert waiting["step"] == 0 and time.monotonic() < deadline, waiting
            time.sleep(0.05)  # the second app loads its network first
            waiting = b.get(f"/api/jobs/{short['id']}").json()
        assert waiting["step"] == 0
        a.post(f"/api/jobs/{long['id']}/stop")
        assert _wait(b, short["id"])["state"] == "done"


def test_serve_without_the_web_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert cli.main(["serve"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "painterly serve needs the web extra (uvicorn is missing)" in err
    assert "pip install 'painterly[web]'" in err


def test_pages_of_other_sites_cannot_queue_jobs_or_upload(client: TestClient) -> None:
    body = {"content": "content-tubingen", "style": "style-starry_night", "size": 64}
    evil = {"Origin": "http://evil.example"}
    r = client.post("/api/jobs", json=body, headers=evil)
    assert r.status_code == 403
    assert r.json() == {"error": "Requests from other web pages are refused."}
    assert client.post("/api/images?name=a.png", content=_png(), headers=evil).status_code == 403
    assert client.get("/api/queue").json()["jobs"] == []
    same = {"Origin": "http://testserver"}  # the page itself
    assert client.post("/api/images?name=a.png", content=_png(), headers=same).status_code == 201


def test_a_run_that_would_not_fit_in_memory_is_refused_before_compute(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fp32(config: Any, precision: str, *args: Any, **kwargs: Any) -> Any:
        """float32's estimate whatever this CPU's precision (bf16's fits 1024 px in tiles)."""
        return memory.check_memory(config, "fp32", *args, **kwargs)

    monkeypatch.setattr(jobs, "check_memory", fp32)
    body = {"content": "content-tubingen", "style": "style-starry_night", "size": 1024}
    advice = {1.5: r"choose \d+ px or less\.", 0.5: r"close other programs and try again\."}
    for free in advice:
        monkeypatch.setattr(jobs, "available_memory", lambda *device, f=free: int(f * 2**30))
        status = _wait(client, client.post("/api/jobs", json=body).json()["id"])
        assert status["state"] == "failed" and status["step"] == 0
        assert re.fullmatch(
            r"Not enough memory for 1024 px on this computer \(it needs about 4\.\d GB, "
            rf"{free} GB is free\): {advice[free]}",
            status["message"],
        ), status["message"]


def test_every_response_carries_the_policy_and_refusals_are_sentences(client: TestClient) -> None:
    policy = (
        "default-src 'self'; img-src 'self' blob:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    )
    evil = {"Origin": "http://evil.example"}
    for r in (
        client.get("/"),
        client.get("/nowhere"),
        client.post("/api/jobs", json={}, headers=evil),
    ):
        assert r.headers["content-security-policy"] == policy
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert client.get("/nowhere").json() == {"error": "Not found."}
    for path in ("/api/jobs", "/api/images", "/api/jobs/x/stop"):
        r = client.get(path)
        assert r.status_code == 405 and r.json() == {"error": "That is not allowed here."}
    big = client.post("/api/jobs", content=b" " * (16 * 1024 + 1))
    assert big.status_code == 413 and big.json()["error"].startswith("The file is too large")
    preview = client.get("/api/images/content-tubingen/preview")
    assert preview.headers["cache-control"] == "max-age=3600"
    assert client.get("/api/queue").headers["cache-control"] == "no-store"


def test_allowed_hosts_turn_other_names_away_before_anything_else() -> None:
    app = create_app(examples=False, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://localhost") as c:
        assert c.get("/api/info").status_code == 200
        r = c.get("/api/info", headers={"host": "rebound.example"})
        assert r.status_code == 400 and r.text == "Invalid host header"
        assert "content-security-policy" not in r.headers  # the host check is outermost
    assert not app.state.tmpdir.exists()  # shutting down removes the uploads' folder


def test_a_queued_job_has_no_frame_steps_or_result_yet(client: TestClient) -> None:
    body = {"content": "content-chelsea_cat", "style": "style-great_wave", "size": 64}
    first = client.post("/api/jobs", json={**body, "iterations": 1000}).json()
    second = client.post("/api/jobs", json={**body, "iterations": 3}).json()
    waiting = client.get(f"/api/jobs/{second['id']}")
    assert waiting.json()["state"] == "queued"
    assert waiting.headers["cache-control"] == "no-store"
    frame = client.get(f"/api/jobs/{second['id']}/frame")
    assert frame.status_code == 404 and frame.json() == {"error": "No image yet."}
    result = client.get(f"/api/jobs/{second['id']}/result")
    assert result.status_code == 409
    assert result.json() == {"error": "This picture is not finished yet."}
    plot = client.get(f"/api/jobs/{second['id']}/losses.png")
    assert plot.status_code == 404 and plot.json() == {"error": "No steps yet."}
    deadline = time.monotonic() + 60
    while client.get(f"/api/jobs/{first['id']}").json()["frame"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    live = client.get(f"/api/jobs/{first['id']}/frame")
    assert live.status_code == 200 and live.headers["cache-control"] == "no-store"
    assert client.get(f"/api/jobs/{first['id']}/losses.png").headers["cache-control"] == "no-store"
    client.post(f"/api/jobs/{second['id']}/stop")
    client.post(f"/api/jobs/{first['id']}/stop")
    assert _wait(client, first["id"])["state"] == "stopped"


def test_a_huge_header_is_refused_with_its_real_size(tmp_path: Path) -> None:
    """A PNG whose header claims 30000 × 30000 px (Pillow's decompression-bomb guard trips
    before any size is read): the refusal names 900 megapixels, not the limit twice."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    path = tmp_path / "huge.png"
    path.write_bytes(png)
    with pytest.raises(jobs.UserError) as info:
        jobs.decode_upload(path, "huge.png")
    assert info.value.status == 413
    assert str(info.value).startswith(
        "huge.png is too large: 900 megapixels is over the limit of 40"
    )


def test_the_pages_defaults_are_the_command_lines() -> None:
    """The page's style strength and steps start where `painterly stylize` does (the default
    recipe changed under issue 12; the page had kept β = 1e3 and 150 steps)."""
    from painterly.config import Config
    from painterly.web.jobs import JobOptions

    config = JobOptions.parse({}).config()
    default = Config()
    assert config.style_weight == pytest.approx(default.style_weight)
    assert config.content_weight == default.content_weight
    assert (
        config.iterations == default.iterations
        and config.ladder == default.replace(size=config.size).ladder
    )
