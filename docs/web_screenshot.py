"""Screenshot the web app mid-run for the README (docs/web_app.png), as a person would use it.

    python docs/web_screenshot.py [--steps 25] [--out docs/web_app.png] [--after STOPPED.png]

Starts the app, clicks the bundled Tübingen photo and The Starry Night, paints at 384 px,
takes the screenshot once ``--steps`` steps are done, then presses Stop and checks that the
best image so far is offered for download (``--after``: a screenshot of that). Needs
Debian's chromium and the test extra.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import expect, sync_playwright

from painterly.web import bind, create_app

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web_app.png")
    parser.add_argument("--after", type=Path, help="also a screenshot after Stop")
    args = parser.parse_args()

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.click("#content-picker .examples button[data-id='content-tubingen']")
        page.click("#style-picker .examples button[data-id='style-starry_night']")
        page.select_option("#size", "384")
        page.click("#start")
        page.wait_for_function(
            f"() => Number(document.getElementById('live').dataset.step) >= {args.steps}",
            timeout=300_000,
        )
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out))
        print(f"wrote {args.out}")
        page.click("#start")  # Stop
        expect(page.locator("#download")).to_be_visible(timeout=60_000)
        expect(page.locator("#status")).to_contain_text("kept the best image")
        if args.after:
            page.screenshot(path=str(args.after))
        browser.close()
    server.should_exit = True
    thread.join(30)


if __name__ == "__main__":
    main()
