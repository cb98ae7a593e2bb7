"""The web app in a real browser: Debian's Chromium, headless, driven by Playwright's client.

No browser is downloaded: Playwright launches the system's ``chromium``. Without it the test is
skipped with a reason, except under CI (env ``CI`` set), where that is a failure: ``.ci/run``
installs it. Set ``PAINTERLY_SCREENSHOTS=DIR`` to keep screenshots of the page.
"""

from __future__ import annotations

import base64
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from PIL import Image

from painterly.web import bind, create_app

from .conftest import CONTENT, STYLE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _require(what: str, ok: bool) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(
            f"{what} is missing; .ci/run must install it (the browser test never skips in CI)"
        )
    pytest.skip(f"{what} is missing (apt-get install chromium; pip install -e '.[test,web]')")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(create_app(), log_level="warning", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    srv.should_exit = True
    thread.join(30)
    sock.close()


# Pixels of the live image, read through a canvas: proof that what the page *shows* changed.
SIGNATURE = """() => {
  const img = document.getElementById('live');
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 !== 3));
}"""

# Drop a file on the painting's drop zone, as a person dragging it from their desktop would.
DROP = """([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, { type: 'image/jpeg' }));
  return dt;
}"""


def test_paint_a_picture_in_the_browser(server: str, tmp_path: Path) -> None:
    _require("Chromium (/usr/bin/chromium)", Path(CHROMIUM).exists())
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _require("Playwright's Python client", False)
        raise
    shots = os.environ.get("PAINTERLY_SCREENSHOTS")
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(
            viewport={"width": 1280, "height": 860}, accept_downloads=True
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server)
        expect(page.locator("#start")).to_be_disabled()
        expect(page.locator("#hint")).to_have_text("Choose a photo and a painting to begin.")

        # 1. The photo through the file chooser, the painting by drag and drop.
        page.set_input_files("#content-file", str(CONTENT))
        expect(page.locator("#content-picker .name")).to_contain_text("chelsea_cat.jpg")
        data = base64.b64encode(STYLE.read_bytes()).decode()
        transfer = page.evaluate_handle(DROP, [data, "starry.jpg"])
        page.dispatch_event("#style-picker .drop", "drop", {"dataTransfer": transfer})
        expect(page.locator("#style-picker .name")).to_contain_text("starry.jpg")
        expect(page.locator("#style-picker .drop img")).to_be_visible()

        # A file that is not an image is refused in words, and the choice stays.
        page.set_input_files(
            "#content-file",
            files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"no"}],
        )
        expect(page.locator("#error")).to_have_text(
            "notes.jpg is not an image this app can read (try a JPEG or PNG file)."
        )
        expect(page.locator("#content-picker .name")).to_contain_text("chelsea_cat.jpg")

        # Another tab, open before the run starts, will see it in the queue.
        other = context.new_page()
        other.goto(server)
        expect(other.locator("#queue-list")).to_have_text("Nothing is being painted.")
        page.bring_to_front()

        # 2. A short run at 64 px.
        page.select_option("#size", "64")
        page.fill("#iterations", "40")
        page.click("#start")
        expect(page.locator("#start")).to_have_text("Stop")
        live = page.locator("#live")
        expect(live).to_be_visible(timeout=30_000)
        first_step = int(live.get_attribute("data-step") or 0)
        first = page.evaluate(SIGNATURE)
        expect(page.locator("#step")).to_contain_text("/ 40")
        if shots:
            page.screenshot(path=f"{shots}/web_running.png", full_page=True)
        expect(other.locator("#queue-list")).to_contain_text(
            "painting: chelsea_cat.jpg in the style of starry.jpg, 64 px — step"
        )
        other.close()

        # 3. The live image changes as it forms; then the download appears.
        download_link = page.locator("#download")
        expect(download_link).to_be_visible(timeout=60_000)
        expect(page.locator("#status")).to_contain_text("Finished")
        page.wait_for_function(
            f"() => Number(document.getElementById('live').dataset.step) > {first_step}"
        )
        page.wait_for_function("() => document.getElementById('live').complete")
        assert page.evaluate(SIGNATURE) != first, "the live image never changed"
        expect(page.locator("#start")).to_have_text("Paint")
        # The loss curves of the whole run are drawn under the picture.
        expect(page.locator("#losses")).to_be_visible()
        page.wait_for_function(
            "() => { const i = document.getElementById('losses');"
            " return i.complete && i.naturalWidth > 600 && i.src.endsWith('v=40'); }"
        )
        if shots:
            page.screenshot(path=f"{shots}/web_done.png", full_page=True)

        # 4. Download the picture and check it decodes.
        with page.expect_download() as info:
            download_link.click()
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
        with Image.open(saved) as im:
            im.load()
            assert im.format == "PNG" and max(im.size) == 64
        assert saved.name == "painterly-chelsea_cat-64px.png"
        assert errors == []
        browser.close()
    assert time.monotonic() - started < 60
